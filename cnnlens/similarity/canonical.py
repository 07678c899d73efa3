"""Canonical maps: where in an image two layers agree.

CCA pairs a weighting of layer A's channels with one of layer B's whose values
correlate at rho_i over the datapoints. With spatial positions as datapoints
(``reduce="positions"``, or ``"resize"``: the larger map area-resized to the
smaller), each weighting applied to every position's centred channel vector is a
map over the image. The statistics come from one streamed pass (:class:`Moments`,
memory independent of the number of images) plus each image's channel means
(n x C values), from which the images scoring highest on a direction are read.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .cca import check_n_gt_d
from .conv import reduce_pair
from .linalg import (
    RTOL,
    canonical_directions,
    check_keep,
    feature_basis,
    n_keep,
    svcca_directions,
    whitener,
)
from .moments import Moments
from .paired import batches_of, one_layer, stream_pair
from .stats import Pair

__all__ = ["CanonicalMaps", "canonical_maps", "maps_from_pair"]

METRICS = ("svcca", "cca", "pwcca")
#: the reductions of :data:`~cnnlens.similarity.conv.REDUCTIONS` that keep a map: positions
#: as datapoints ("mean" only for a fully connected side, which has no positions)
MAP_REDUCTIONS = ("positions", "resize", "mean")


@dataclass(frozen=True, repr=False)
class CanonicalMaps:
    """Paired canonical directions of two layers and their maps over one image.

    Attributes
    ----------
    rho : ndarray (k,)
        Canonical correlations, descending.
    maps_a, maps_b : ndarray (k, H_a, W_a), (k, H_b, W_b)
        Each position's centred channel vector projected on direction i, in
        standard deviations of the variate; (k, 1, 1) for a fully connected side.
    corr : ndarray (k,)
        Correlation of each pair of maps over the image's positions (the larger
        area-resized to the smaller); NaN for a 1 x 1 side.
    dirs_a, dirs_b, mean_a, mean_b : ndarray (C, k), (C,)
        The directions (channel weightings) and the means the maps are centred with.
    image_means_a, image_means_b : ndarray (n_images, C) or None
        Each dataset image's mean channel vector (for :meth:`top_images`).
    convention : str
        Reduction, whitening, which directions SVCCA kept, signs and units.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from cnnlens.similarity import canonical_maps
    >>> torch.manual_seed(0)                                    # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> a = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 4, 3))
    >>> b = nn.Sequential(*a, nn.Conv2d(4, 4, 1))               # an invertible channel mix
    >>> res = canonical_maps(a, b, torch.rand(20, 3, 12, 12), "2", "3", image=1, k=2,
    ...                      metric="cca")
    >>> res.maps_a.shape, bool(res.rho[0] > 0.999999), bool(res.corr[0] > 0.999)
    ((2, 8, 8), True, True)
    >>> res.top_images(0, "a", n=3).shape
    (3,)
    """

    rho: np.ndarray
    maps_a: np.ndarray
    maps_b: np.ndarray
    corr: np.ndarray
    dirs_a: np.ndarray
    dirs_b: np.ndarray
    mean_a: np.ndarray
    mean_b: np.ndarray
    image: int | None
    metric: str
    convention: str
    layer_a: str = "a"
    layer_b: str = "b"
    image_means_a: np.ndarray | None = None
    image_means_b: np.ndarray | None = None

    @property
    def k(self) -> int:
        return int(self.rho.shape[0])

    def project(self, acts_a, acts_b) -> tuple[np.ndarray, np.ndarray]:
        """Maps of another image from its activations (C_a, H, W) or (C_a,), and B's; no new CCA."""
        return (_project(acts_a, self.mean_a, self.dirs_a, "acts_a"),
                _project(acts_b, self.mean_b, self.dirs_b, "acts_b"))

    def for_image(self, acts_a, acts_b, image: int | None = None) -> CanonicalMaps:
        """The same directions with the maps (and ``corr``) of another image's activations."""
        ma, mb = self.project(acts_a, acts_b)
        return dataclasses.replace(self, maps_a=ma, maps_b=mb, corr=_map_corr(ma, mb),
                                   image=image)

    def image_scores(self, direction: int, side: str = "a") -> np.ndarray:
        """Every dataset image's mean projection on ``direction`` (= the mean of its map)."""
        if side not in ("a", "b"):
            raise ValueError(f"side must be 'a' or 'b'; got {side!r}")
        means = self.image_means_a if side == "a" else self.image_means_b
        if means is None:
            raise ValueError("no per-image statistics: this result was built without them")
        if not -self.k <= direction < self.k:
            raise IndexError(f"direction {direction} out of range: {self.k} directions")
        mean, dirs = (self.mean_a, self.dirs_a) if side == "a" else (self.mean_b, self.dirs_b)
        return (means - mean) @ dirs[:, direction]

    def top_images(self, direction: int = 0, side: str = "a", n: int = 8) -> np.ndarray:
        """Indices of the ``n`` dataset images with the highest mean projection, best first."""
        s = self.image_scores(direction, side)
        return np.argsort(-s, kind="stable")[:n]

    def __repr__(self) -> str:
        rho = np.array2string(self.rho, precision=3, separator=", ")
        return (f"CanonicalMaps({self.metric}, {self.layer_a!r} vs {self.layer_b!r}, "
                f"image={self.image}, rho={rho}, maps {self.maps_a.shape} / {self.maps_b.shape})")


def _project(acts, mean: np.ndarray, dirs: np.ndarray, name: str) -> np.ndarray:
    t = torch.as_tensor(np.asarray(acts.detach().cpu() if torch.is_tensor(acts) else acts),
                        dtype=torch.float64)
    if t.ndim == 1:
        t = t[:, None, None]
    if t.ndim != 3 or t.shape[0] != dirs.shape[0]:
        raise ValueError(f"{name} must be one image's activation ({dirs.shape[0]}, H, W) or "
                         f"({dirs.shape[0]},); got shape {tuple(t.shape)}")
    centred = t - torch.from_numpy(mean)[:, None, None]
    return torch.einsum("chw,ck->khw", centred, torch.from_numpy(dirs)).numpy()


def _map_corr(ma: np.ndarray, mb: np.ndarray) -> np.ndarray:
    """Per-direction Pearson correlation over positions (the larger map area-resized)."""
    a, b = torch.from_numpy(ma), torch.from_numpy(mb)
    if a.shape[1] * a.shape[2] == 1 or b.shape[1] * b.shape[2] == 1:
        return np.full(a.shape[0], np.nan)
    size = (min(a.shape[1], b.shape[1]), min(a.shape[2], b.shape[2]))
    a, b = (F.adaptive_avg_pool2d(t, size).flatten(1) for t in (a, b))
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).numpy()  # 0/0: NaN, no warning


def _check(metric: str, k, keep) -> None:
    if metric not in METRICS:
        raise ValueError(f"canonical maps need a CCA-family metric ({', '.join(METRICS)}); "
                         f"got {metric!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1 (directions to map); got {k!r}")
    if metric == "svcca":
        check_keep(keep)


def _some_variance(p: Pair, rank_a: int, rank_b: int) -> None:
    if min(rank_a, rank_b) == 0:
        side = "A" if rank_a == 0 else "B"
        raise ValueError(f"no canonical direction: every channel of {side} is constant over "
                         f"the {p.n} datapoints (dead layer?)")


def maps_from_pair(p: Pair, acts_a, acts_b, k: int = 4, metric: str = "svcca", keep=0.99,
                   rtol: float = RTOL, reduction: str = "", image: int | None = None,
                   layer_a: str = "a", layer_b: str = "b", image_means=(None, None)):
    """:class:`CanonicalMaps` from moments already accumulated (no pass over the data).

    ``p``: the pair's centred moments over the maps' datapoints (positions);
    ``acts_a``, ``acts_b``: the image's activations; ``reduction``: how the
    datapoints were formed (for the convention); ``image_means``: (n, C) per side
    or None. A ``MatrixResult`` holding the pair's moments can call this.
    """
    _check(metric, k, keep)
    if metric == "svcca":
        bx, by = feature_basis(p.x.S, rtol), feature_basis(p.y.S, rtol)
        kx, ky = n_keep(bx, keep), n_keep(by, keep)
        _some_variance(p, kx, ky)
        A, B, rho = svcca_directions(bx, kx, by, ky, p.M)
        top = (f"explaining {keep:.4g} of the variance" if isinstance(keep, float)
               else f"(keep={keep})")
        what = (f"SVCCA: per side the top principal directions {top}, kept {kx} of {p.x.d} "
                f"(A) and {ky} of {p.y.d} (B), whitened by their variances, then CCA in "
                "those subspaces")
    else:
        wx, wy = (whitener(s.S, s.mean, p.n, rtol) for s in (p.x, p.y))
        check_n_gt_d(metric.upper(), p.n, wx.d - wx.dropped, wy.d - wy.dropped)
        _some_variance(p, wx.rank, wy.rank)
        A, B, rho = canonical_directions(wx, wy, p.M)
        what = (f"plain CCA directions (rank-revealing whitening through each side's "
                f"correlation matrix: effective ranks {wx.rank} (A), {wy.rank} (B); constant "
                f"channels dropped: {wx.dropped} (A), {wy.dropped} (B))"
                + ("; PWCCA's weights only average the rho, the maps are CCA's"
                   if metric == "pwcca" else ""))
    c = min(k, int(rho.shape[0]))
    A, B, rho = A[:, :c], B[:, :c], rho[:c]
    # one sign per pair (CCA fixes only the product): the variate rises with the channel of
    # A it loads on most, so "high" on both maps means "that channel is high"
    load = (p.x.S @ A) / p.x.S.diagonal().clamp_min(1e-300).sqrt()[:, None]
    flip = torch.where(load.gather(0, load.abs().argmax(0, keepdim=True))[0] < 0, -1.0, 1.0)
    root_n = math.sqrt(p.n)  # A^T Sxx A = I (a scatter): unit variance over datapoints
    A, B = A * flip * root_n, B * flip * root_n
    dirs_a, dirs_b = A.numpy(), B.numpy()
    mean_a, mean_b = p.x.mean.numpy(), p.y.mean.numpy()
    ma = _project(acts_a, mean_a, dirs_a, "acts_a")
    mb = _project(acts_b, mean_b, dirs_b, "acts_b")
    conv = (f"{what}; datapoints: {reduction or 'as given'} (n={p.n}); maps: each position's "
            f"channel vector minus the dataset mean, projected on direction i (units: std of "
            f"the canonical variate over the datapoints); signs: paired variates correlate "
            f"at +rho_i over the dataset, and each pair is signed so that it loads positively "
            f"on A's most correlated channel; {c} directions"
            + ("" if k <= c else f" (k={k} asked; only {c} exist)"))
    return CanonicalMaps(rho.numpy(), ma, mb, _map_corr(ma, mb), dirs_a, dirs_b, mean_a,
                         mean_b, image, metric, conv, layer_a, layer_b, *image_means)


def _mode(xa: torch.Tensor, xb: torch.Tensor, reduce: str | None) -> tuple[str, str]:
    """The reduction for this pair, and the text saying what the datapoints are."""
    for t, w in ((xa, "a"), (xb, "b")):
        if t.ndim not in (2, 4):
            raise ValueError(f"layer_{w} gives outputs of shape {tuple(t.shape)}; canonical "
                             "maps need (N, C, H, W) (conv) or (N, C) (fully connected)")
    fc = [w for t, w in ((xa, "A"), (xb, "B")) if t.ndim == 2]
    if not fc and reduce in (None, "positions", "resize"):
        h, w = min(xa.shape[2], xb.shape[2]), min(xa.shape[3], xb.shape[3])
        if reduce == "resize" or (reduce is None and xa.shape[2:] != xb.shape[2:]):
            return "resize", (f"reduce='resize': the larger map area-resized to {h}x{w}, every "
                              "position a datapoint (maps at each layer's own resolution)")
        return "positions", f"reduce='positions': every one of the {h}x{w} positions"
    if fc and reduce in ("positions", "resize"):
        raise ValueError(f"reduce={reduce!r} needs two conv layers; a fully connected side has "
                         "one datapoint per image: use reduce='mean' (or None)")
    return "mean", ("reduce='mean': one datapoint per image" + (
        f"; {' and '.join(fc)} fully connected: one value per direction, maps (k, 1, 1)"
        if fc else " (positions averaged)"))


def canonical_maps(model_a, model_b, data, layer_a, layer_b, image: int = 0, k: int = 4,
                   metric: str = "svcca", reduce: str | None = None, keep=0.99,
                   batch_size: int = 64, device=None, rtol: float = RTOL) -> CanonicalMaps:
    """Where two layers agree on an image: the top-k canonical directions as maps.

    One pass over ``data`` through both models accumulates the pair's moments
    (memory independent of the number of images) and each image's mean channel
    vector; CCA directions come from the moments, and the selected image's
    activations are projected on them.

    Parameters
    ----------
    model_a, model_b : nn.Module
        May be the same object (one forward per batch then).
    data : images or batches
        Anything :func:`cnnlens.inputs.iter_batches` takes, a DataLoader or an
        iterator of batches.
    layer_a, layer_b : str or selector
        Exactly one layer each (dotted name).
    image : int
        Index of the image in ``data`` whose maps are returned.
    k : int
        Number of directions (fewer if fewer exist).
    metric : {"svcca", "cca", "pwcca"}
        "svcca": CCA within each side's top principal directions explaining
        ``keep`` of the variance; "cca"/"pwcca": plain CCA directions.
    reduce : {None, "positions", "resize", "mean"}
        Datapoints of the CCA. None: "positions" for two conv layers of one
        spatial size, "resize" (the larger area-resized to the smaller) for two
        sizes, "mean" (one per image) when a side is fully connected.
    keep, batch_size, device, rtol
        SVCCA's ``keep``, forward batch size, device of the forwards, rank cut.

    Returns
    -------
    CanonicalMaps
        With ``.for_image()`` (another image, no new CCA) and ``.top_images()``.

    Raises
    ------
    LayerNotFound
        An unknown layer name (the message lists close names).
    IndexError
        ``image`` outside the data.
    ValueError
        A bad metric, ``k``, ``reduce`` or output shape; CCA with fewer datapoints
        than channels.

    Notes
    -----
    Memory: the moments, O(C_a^2 + C_b^2 + C_a C_b), plus n_images x (C_a + C_b)
    float64 image means for :meth:`CanonicalMaps.top_images` (ranked by the mean
    of each image's map, which is exactly its mean channel vector projected).

    Examples
    --------
    >>> import cnnlens as cl                                     # doctest: +SKIP
    >>> nets, digits = cl.demo.models(), cl.demo.data()          # doctest: +SKIP
    >>> res = cl.canonical_maps(nets["real"], nets["real_seed1"], digits.test.images,
    ...                         "conv2", "conv2", image=0, k=4)   # doctest: +SKIP
    >>> res.rho, res.maps_a.shape, res.top_images(0, "b")        # doctest: +SKIP
    """
    _check(metric, k, keep)
    if reduce is not None and reduce not in MAP_REDUCTIONS:
        raise ValueError(f"reduce must be None or one of {', '.join(MAP_REDUCTIONS)}; got {reduce!r}")
    if isinstance(image, bool) or not isinstance(image, (int, np.integer)) or image < 0:
        raise IndexError(f"image must be an index >= 0 into data; got {image!r}")
    la, lb = one_layer(model_a, layer_a, "a"), one_layer(model_b, layer_b, "b")
    batches, n_images = batches_of(data, batch_size)
    if n_images is not None and image >= n_images:
        raise IndexError(f"image={image} out of range: data holds {n_images} images")
    m, means, start, acts, mode = Moments(higher=False), ([], []), 0, None, None
    with contextlib.closing(stream_pair(model_a, model_b, la, lb, batches, device)) as pairs:
        for xa, xb in pairs:
            if mode is None:
                mode, text = _mode(xa, xb, reduce)
            # each image's mean channel vector (n x C in all): top images once directions exist
            ma, mb = (t.mean((2, 3), dtype=torch.float64) if t.ndim == 4 else t.double()
                      for t in (xa, xb))
            means[0].append(ma)
            means[1].append(mb)
            m.update(*((ma, mb) if mode == "mean" else
                       reduce_pair(xa, xb, mode, dtype=torch.float64)))
            if start <= image < start + len(xa):
                acts = (xa[image - start].clone(), xb[image - start].clone())
            start += len(xa)
    if acts is None:
        raise IndexError(f"image={image} out of range: data held {start} images")
    return maps_from_pair(m.pair(), *acts, k=k, metric=metric, keep=keep, rtol=rtol,
                          reduction=text, image=image, layer_a=la.name, layer_b=lb.name,
                          image_means=tuple(torch.cat(x).numpy() for x in means))
