"""Inspector: a model plus a set of images, with cached activations (no widgets).

>>> import torch
>>> from torch import nn
>>> import cnnlens as cl
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
>>> ins = cl.Inspector(net, torch.rand(10, 3, 8, 8))
>>> ins.activations("0").shape, ins.forward_calls       # the dry run + one capture
(torch.Size([10, 4, 6, 6]), 2)
>>> ins.activations("0", images=[0, 2]).shape, ins.forward_calls   # from the cache
(torch.Size([2, 4, 6, 6]), 2)
>>> sorted(ins.activations(["0", "3"], images=0))      # "3" for image 0: one more forward
['0', '3']
"""
from __future__ import annotations

import operator
import threading
from collections import OrderedDict

import torch
from torch import nn

from cnnlens.capture import stream
from cnnlens.inputs import check_input, expected_size, first_conv, to_batch
from cnnlens.probe import Layer, layer_tree

__all__ = ["Inspector"]

MiB = 1 << 20


class Inspector:
    """Activations, weights and top images of one model on one image set.

    >>> ins = Inspector(model, images)                      # doctest: +SKIP
    >>> ins.activations("features.0", images=0).shape        # doctest: +SKIP
    torch.Size([1, 64, 32, 32])
    >>> ins.top_images("features.0", channel=5, k=4)         # doctest: +SKIP

    Activations are cached per ``(image index, layer)`` in a byte-bounded LRU, so
    a request only runs the forward pass for images not already cached, and
    all layers asked for together share one forward. The cache is dropped when
    the model's parameters/buffers or the images are changed in place.

    Parameters
    ----------
    model : nn.Module
    images : Tensor, PIL images, paths or Dataset
        Anything :func:`cnnlens.inputs.to_batch` accepts; loaded once into
        :attr:`images`. Without ``transform``, PIL images are resized to the
        model's declared input size if any (see :func:`cnnlens.inputs.expected_size`).
    batch_size : int
        Images per forward pass.
    cache_bytes : int
        Upper bound of the activation cache (default 256 MiB; 0 disables it).
    transform : callable, optional
        Per-image transform for PIL inputs (e.g. :func:`cnnlens.inputs.imagenet_transform`).
    pick : int, str, callable or dict, optional
        Tensor choice for tuple/dict outputs, see :func:`cnnlens.capture.pick_tensor`.

    Attributes
    ----------
    model : nn.Module
    images : Tensor
        float32 CPU (N, C, H, W); treat as read-only (use :meth:`add_image`).
    layers : LayerTree
        From one dry run on the first image.
    forward_calls : int
        Forward passes run so far (the dry run included).
    """

    def __init__(self, model: nn.Module, images, *, batch_size: int = 64,
                 cache_bytes: int = 256 * MiB, transform=None, pick=None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        conv = first_conv(model)
        self._channels = conv[1].in_channels if conv else None
        self.model = model
        self.transform = transform
        self.pick = pick
        self.batch_size = int(batch_size)
        self.cache_bytes = int(cache_bytes)
        self.images = to_batch(images, transform, size=expected_size(model),
                               channels=self._channels)
        if len(self.images) == 0:
            raise ValueError("no images given")
        check_input(model, self.images)  # a clear message now rather than at first click
        self.forward_calls = 0
        self._lock = threading.RLock()  # widgets may ask from a background thread
        self._cache: OrderedDict[tuple[int, str], torch.Tensor] = OrderedDict()
        self._cached_bytes = 0
        self._scores: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._stamp = self._state_stamp()
        self.layers = layer_tree(model, self.images[:1], pick=pick if not isinstance(pick, dict)
                                 else None)
        self.forward_calls += 1

    def __repr__(self):
        return (f"Inspector({type(self.model).__name__}, {len(self.images)} images "
                f"{tuple(self.images.shape[1:])}, {len(self.layers)} layers)")

    # -- cache -----------------------------------------------------------------
    def _state_stamp(self):
        # In-place updates (optimizer steps, load_state_dict, edits to images) bump
        # a tensor's _version and replaced modules bring new tensors: either way
        # the stamp moves, which detects stale activations cheaply.
        tensors = (*self.model.parameters(), *self.model.buffers())
        return (id(self.images), self.images._version,
                hash(tuple((id(t), t._version) for t in tensors)))

    def _check_stale(self):
        stamp = self._state_stamp()
        if stamp != self._stamp:
            self.clear_cache()
            self._stamp = stamp

    def clear_cache(self) -> None:
        """Forget every cached activation and top-image score."""
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0
            self._scores.clear()

    @property
    def cached_bytes(self) -> int:
        """Bytes currently held by the activation cache."""
        return self._cached_bytes

    def _put(self, key, t: torch.Tensor) -> None:
        size = t.numel() * t.element_size()
        if size > self.cache_bytes:
            return
        old = self._cache.pop(key, None)
        if old is not None:
            self._cached_bytes -= old.numel() * old.element_size()
        self._cache[key] = t
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes:
            _, dropped = self._cache.popitem(last=False)  # least recently used
            self._cached_bytes -= dropped.numel() * dropped.element_size()

    # -- selection helpers -------------------------------------------------------
    def _layers(self, layer) -> list[Layer]:
        return self.layers.select(layer)

    def _one(self, layer, what: str) -> Layer:
        chosen = self.layers.select(layer)
        if len(chosen) != 1:
            raise ValueError(f"{what}() takes one layer; the selector picked {len(chosen)}: "
                             f"{[x.name for x in chosen[:5]]}")
        return chosen[0]

    def _indices(self, images) -> list[int]:
        n = len(self.images)
        if images is None:
            return list(range(n))
        try:  # ints of any flavour (Python, numpy, 0-d tensor) mean one image
            idx = [operator.index(images)]
        except TypeError:
            idx = [operator.index(i) for i in images]
        bad = [i for i in idx if not -n <= i < n]
        if bad or not idx:
            raise IndexError(f"image index {bad[0]} out of range for {n} images" if bad
                             else "no image index given (images=[])")
        return [i % n for i in idx]

    def _run(self, layers: list[Layer], indices: list[int], images=None):
        """Yield (index chunk, {name: tensor}) per forward over ``indices`` of ``images``."""
        images = self.images if images is None else images
        chunks = [indices[i:i + self.batch_size]
                  for i in range(0, len(indices), self.batch_size)]
        batches = (images[chunk] for chunk in chunks)
        for chunk, out in zip(chunks, stream(self.model, batches, layers, pick=self.pick)):
            with self._lock:  # passes may run on two threads at once (see channel_scores)
                self.forward_calls += 1
            yield chunk, out

    def _gather(self, chosen: list[Layer], idx: list[int]) -> dict[str, dict[int, torch.Tensor]]:
        """{layer name: {image index: (1, ...) tensor}}: cache first, one forward for the rest."""
        have: dict[str, dict[int, torch.Tensor]] = {x.name: {} for x in chosen}
        for x in chosen:
            for i in idx:
                t = self._cache.get((i, x.name))
                if t is not None:
                    self._cache.move_to_end((i, x.name))
                    have[x.name][i] = t
        todo = [i for i in dict.fromkeys(idx) if any(i not in have[x.name] for x in chosen)]
        missing = [x for x in chosen if any(i not in have[x.name] for i in todo)]
        if todo:
            for chunk, out in self._run(missing, todo):
                for name, t in out.items():
                    for j, i in enumerate(chunk):
                        # clone: a view would keep the whole batch alive in the cache
                        piece = t[j:j + 1].clone()
                        have[name][i] = piece
                        self._put((i, name), piece)
        return have

    # -- public API ------------------------------------------------------------
    def prefetch(self, layers, images=None) -> None:
        """Capture ``layers`` for ``images`` into the cache, all layers in one forward."""
        with self._lock:
            self._check_stale()
            self._gather(self._layers(layers), self._indices(images))

    def activations(self, layer, images=None):
        """Activations of ``layer`` for ``images``.

        Parameters
        ----------
        layer : str, nn.Module, Layer, or a list of those
            A list (or predicate) captures all its layers in one forward and
            returns a dict ``{name: tensor}``.
        images : None, int or list of int
            None: all images; an int: that image (batch of one); a list: those.

        Returns
        -------
        Tensor or dict of Tensor
            float32 CPU, (n, C, H, W) for conv-like layers, (n, D) for linear ones.
        """
        with self._lock:
            self._check_stale()
            chosen = self._layers(layer)
            idx = self._indices(images)
            have = self._gather(chosen, idx)
            out = {x.name: torch.cat([have[x.name][i] for i in idx]) for x in chosen}
            if isinstance(layer, (str, nn.Module, Layer)):
                return out[chosen[0].name]
            return out

    def _weight(self, layer, what: str) -> torch.Tensor | None:
        x = self._one(layer, what)
        # by name, not x.module: the model may have had that module replaced since
        w = getattr(self.model.get_submodule(x.module_name), "weight", None)
        return w if x.kind in ("conv", "linear") and isinstance(w, torch.Tensor) else None

    def weight_param(self, layer) -> torch.Tensor | None:
        """The live weight tensor of a conv/linear layer (no copy), or None like :meth:`weights`.

        For its shape, device or ``_version`` without copying it; do not write to it.
        """
        return self._weight(layer, "weight_param")

    def weights(self, layer, filters=None) -> torch.Tensor | None:
        """Weights of a conv ``(out, in/groups, kh, kw)`` or linear ``(out, in)`` layer.

        Parameters
        ----------
        layer : selector of one layer
        filters : int or slice, optional
            Copy only these output filters (an int keeps the dim: ``(1, in, ...)``);
            default: all of them.

        Returns
        -------
        Tensor or None
            A CPU float32 copy; None for other kinds (or a conv/linear without a weight).
        """
        w = self._weight(layer, "weights")
        if w is None:
            return None
        if isinstance(filters, slice):
            w = w[filters]
        elif filters is not None:
            n, out = operator.index(filters), w.shape[0]
            if not -out <= n < out:
                raise IndexError(f"filter {n} out of range: layer {layer!r} has {out} filters")
            w = w[n % out:n % out + 1]
        return w.detach().to(device="cpu", dtype=torch.float32, copy=True)

    def channel_scores(self, layer, by: str = "mean") -> torch.Tensor:
        """(N, C) score of every image for every channel: spatial ``mean`` or ``max``.

        Computed in one streamed pass (memory O(N*C), not O(N*C*H*W)) and cached.
        """
        if by not in ("mean", "max"):
            raise ValueError(f"by must be 'mean' or 'max', got {by!r}")
        with self._lock:
            self._check_stale()
            x = self._one(layer, "channel_scores")
            have, stamp, images = self._scores.get(x.name), self._stamp, self.images
        done = 0 if have is None else len(have[0])
        if done < len(images):  # new images since last time: score only those
            # The pass runs outside the lock: a ranking on a worker thread (the Lens's)
            # must not hold up activations() on the kernel thread for seconds. capture
            # keeps the two threads' hooks apart; `images` is this call's snapshot.
            means, maxes = ([have[0]], [have[1]]) if have is not None else ([], [])
            for _, out in self._run([x], list(range(done, len(images))), images):
                t = out[x.name]
                flat = t.reshape(len(t), t.shape[1] if t.ndim > 1 else 1, -1)
                means.append(flat.mean(-1))
                maxes.append(flat.amax(-1))
            have = (torch.cat(means), torch.cat(maxes))
            with self._lock:  # keep it unless the state moved meanwhile or a longer one landed
                old = self._scores.get(x.name)
                if self._stamp == stamp and (old is None or len(old[0]) < len(have[0])):
                    self._scores[x.name] = have
        return have[0 if by == "mean" else 1]

    def has_scores(self, layer) -> bool:
        """True when :meth:`channel_scores`/:meth:`top_images` of ``layer`` need no forward.

        That is, every image is scored and the model and images are unchanged since.
        """
        with self._lock:
            self._check_stale()
            have = self._scores.get(self._one(layer, "has_scores").name)
            return have is not None and len(have[0]) == len(self.images)

    def top_images(self, layer, channel: int, k: int = 8, by: str = "mean"):
        """Indices and scores of the ``k`` images that excite ``channel`` of ``layer`` most.

        Returns
        -------
        (LongTensor, Tensor)
            Image indices and their scores, highest first.
        """
        scores = self.channel_scores(layer, by)
        c = scores.shape[1]
        if not -c <= channel < c:
            raise IndexError(f"channel {channel} out of range: layer {layer!r} has {c} channels")
        values, indices = torch.topk(scores[:, channel], min(int(k), len(scores)))
        return indices, values

    def add_image(self, image) -> int:
        """Append an image (tensor, PIL, path or bytes); return its index.

        It is resized to the size of the images already loaded. Several images may
        be given at once; the index of the first is returned.
        """
        batch = to_batch(image, self.transform, size=tuple(self.images.shape[-2:]),
                         channels=self._channels)
        check_input(self.model, batch)
        with self._lock:
            index = len(self.images)
            self.images = torch.cat([self.images, batch])
            # Same images keep their indices and cache entries; only the stamp moves.
            self._stamp = self._state_stamp()
            return index
