"""Feature visualisations as a Lens shows them: its settings, payloads and page frames.

The optimisation lives in :mod:`cnnlens.featvis`; the neuron pane's worker that runs it
off the kernel thread is :class:`~cnnlens.widgets.featvis_job.FeatvisJob`.
"""

from __future__ import annotations

import time

import torch

from .. import featvis
from ..encode import encode_ids, encode_unit_images, encode_vector
from ..layers import Layer
from .errors import describe

__all__ = ["SIDE", "lens_featvis", "vis_frames", "vis_payload"]

SIDE = 128  # longest side of a shown/exported visualisation (px); the stage stretches it


def vis_payload(vis: featvis.Visualization) -> dict:
    """``vis`` trait value: the image (``encode_images`` layout) and what produced it."""
    img = torch.tensor(vis.image).permute(2, 0, 1)
    return {
        "layer": vis.layer, "neuron": vis.channel, "activation": vis.activation,
        "steps": vis.settings["steps"], "seed": vis.settings["seed"],
        "size": list(vis.settings["size"]), "seconds": round(vis.seconds, 3),
        "image": encode_unit_images(img[None], size=SIDE),
    }  # fmt: skip


def lens_featvis(inspector, layer, channel, size=None, steps=256, seed=0, **kwargs):
    """:func:`cnnlens.featvis.visualize` with the settings a Lens's images imply.

    Size: the images' size (unless given); normalisation: :func:`featvis.normalization`
    of the image set; ``pick``: the Inspector's.
    """
    args, kw = featvis_args(inspector, layer, channel, steps, seed, size)
    return featvis.visualize(*args, **{**kw, **kwargs})


_NORM: list = [None, None, None]  # the last image set, its _version, its normalization


def featvis_args(inspector, layer, channel, steps, seed, size=None) -> tuple[tuple, dict]:
    """``(args, kwargs)`` of :func:`cnnlens.featvis.visualize` (and ``cached``) for a Lens."""
    if not isinstance(layer, Layer):  # the Inspector's tree knows "name:1" and skips a rebuild
        chosen = inspector.layers.select(layer)
        if len(chosen) != 1:
            raise ValueError(f"visualize() takes one layer; the selector picked {len(chosen)}")
        layer = chosen[0]
    images = inspector.images
    last, version, norm = _NORM  # one read: another thread may replace the list's items
    if last is not images or version != images._version:  # a full scan, so only once a set
        norm = featvis.normalization(images)
        _NORM[:] = [images, images._version, norm]
    size = tuple(images.shape[-2:]) if size is None else size
    pick = inspector.pick.get(layer.name) if isinstance(inspector.pick, dict) else inspector.pick
    return ((inspector.model, layer, channel, size, steps, seed),
            {"normalize": norm, "pick": pick})


def vis_frames(inspector, layers, *, steps=256, seed=0, seconds=60.0,
               max_bytes=None) -> tuple[dict, list[str]]:
    """Visualisations of every channel of ``layers`` for a page with no kernel.

    Cached ones cost nothing; new ones are computed in layer order until ``seconds``
    (None: no limit; 0: cached ones only) or ``max_bytes`` of images is spent. Returns ``(frames, left_out)``:
    ``frames[layer] = {"channels": int32 bytes, "activations": float32 bytes,
    "image": encode_images (n, h, w, C), "total": channel count, "steps", "seed"}`` and a
    line per layer that is not complete (``"conv3: 40 of 64 channels (time budget)"``).
    """
    frames, left, t0, used = {}, [], time.perf_counter(), 0
    for layer in layers:
        x = inspector.layers[layer]  # a Layer from here on: no tree is rebuilt per channel
        total = x.shape[0] if x.shape else 0
        done, why = [], ""
        for c in range(total):
            args, kw = featvis_args(inspector, x, c, steps, seed)
            if featvis.cached(*args, **kw) is None:
                if seconds is not None and time.perf_counter() - t0 > seconds:
                    why = why or ("not computed" if seconds == 0 else "time budget")
                    continue
                if max_bytes is not None and used > max_bytes:
                    why = why or "page budget"
                    continue
            try:
                vis = lens_featvis(inspector, x, c, steps=steps, seed=seed)
            except Exception as exc:  # noqa: BLE001 - one failing layer must not sink the page
                why = f"error: {describe(exc)}"
                break
            done.append(vis)
            used += vis.image.size
        if done:
            img = torch.stack([torch.tensor(v.image).permute(2, 0, 1) for v in done])
            frames[layer] = {
                "channels": encode_ids([v.channel for v in done]),
                "activations": encode_vector(torch.tensor([v.activation for v in done])),
                "image": encode_unit_images(img, size=SIDE), "total": total, "steps": steps,
                "seed": seed,
            }  # fmt: skip
        if len(done) < total:
            left.append(f"{layer}: {len(done)} of {total} channels ({why or 'not visualised'})")
    return frames, left
