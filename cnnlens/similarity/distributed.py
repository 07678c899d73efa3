"""Merging a pass's statistics across the ranks of a ``torch.distributed`` process group.

Each rank streams its own shard of the data; these collectives then make every
rank hold the statistics of the union, so every rank computes the same result:

- centred moments (:class:`~cnnlens.similarity.joint.Joint`) are merged exactly
  (Chan et al.): every rank moves its scatters, cross-moments and fourth-order
  sums to the global mean, then one sum;
- kept activations are gathered in rank order (the concatenated data);
- minibatch HSIC sums are summed (the same estimator over the union of batches).

Tensors travel on the device the statistics live on (CPU with gloo, CUDA with nccl).
"""
from __future__ import annotations

import torch

__all__ = ["active", "gather_rows", "merge_joint", "merge_minibatch", "min_int", "sum_int"]


def active() -> bool:
    """True inside an initialised process group with more than one rank."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _device_for(t: torch.Tensor | None = None) -> torch.device:
    import torch.distributed as dist

    if t is not None:
        return t.device
    return torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")


def _reduce(values, op: str, dtype=torch.float64, device=None) -> torch.Tensor:
    import torch.distributed as dist

    t = torch.tensor(values, dtype=dtype, device=device or _device_for())
    dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN,
                           "max": dist.ReduceOp.MAX}[op])
    return t


def sum_int(n: int) -> int:
    return int(_reduce([n], "sum", torch.int64)[0])


def min_int(n: int) -> int:
    return int(_reduce([n], "min", torch.int64)[0])


def _sum_(tensors) -> None:
    """All-reduce (sum) a list of tensors in place, as one flat buffer per dtype."""
    import torch.distributed as dist

    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    k = 0
    for t in tensors:
        t.copy_(flat[k:k + t.numel()].view_as(t))
        k += t.numel()


def merge_joint(j) -> None:
    """Make ``j`` (this rank's :class:`Joint`) the exact moments of every rank's data."""
    if j.n == 0:
        raise ValueError("a rank saw no data: give every rank a non-empty shard")
    j._mirror()
    dev = j.mx.device
    n_all = _reduce([float(j.n)], "sum", device=dev)[0]
    sums = [j.n * j.mx, j.n * j.my]
    _sum_(sums)
    mu_x, mu_y = sums[0] / n_all, sums[1] / n_all
    if j.higher:  # fourth-order sums moved to the global mean (exact shift identities)
        tx, Hx, ty, Hy, AX, AY, G = j._reref(mu_x - j.rx, mu_y - j.ry)
        j.tx, j.Hx, j.ty, j.Hy, j.AX, j.AY, j.G = tx, Hx, ty, Hy, AX, AY, G
    dx, dy = j.mx - mu_x, j.my - mu_y
    for S, grp, d in ((j.Sx, j.gx, dx), (j.Sy, j.gy, dy)):
        for g in range(grp.L):
            S[g].addr_(d[grp.sl(g)], d[grp.sl(g)], alpha=float(j.n))
    j.M.addr_(dx, dy, alpha=float(j.n))
    extras = [j.tx, j.Hx, j.ty, j.Hy, j.AX, j.AY, j.G] if j.higher else []
    for part in (j.Sx, j.Sy, [j.M], extras):
        _sum_(part)
    j.n = int(n_all)
    j.mx, j.my = mu_x, mu_y
    if j.higher:
        j.rx, j.ry = mu_x.clone(), mu_y.clone()
    j._final, j._mirrored = None, True


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of ``x``, concatenated in rank order."""
    import torch.distributed as dist

    counts = [0] * dist.get_world_size()
    n = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
    sizes = [torch.zeros_like(n) for _ in counts]
    dist.all_gather(sizes, n)
    counts = [int(s) for s in sizes]
    padded = torch.zeros(max(counts), *x.shape[1:], dtype=x.dtype, device=x.device)
    padded[:x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])


def merge_minibatch(mb) -> None:
    """Sum every rank's HSIC terms and batch counts (the union of the batches)."""
    for kind in mb.kinds:
        if kind not in mb.sums:  # a rank whose batches all fell below 4 images
            raise ValueError("a rank accumulated no minibatch terms: give every rank at least "
                             "one batch of 4 or more images")
        _sum_(list(mb.sums[kind]))
    counts = _reduce([*mb.per_group.tolist(), mb.batches, mb.skipped], "sum",
                     device=_device_for(mb.sums[mb.kinds[0]][0]))
    mb.per_group = counts[:mb.G].cpu()
    mb.batches, mb.skipped = int(counts[mb.G]), int(counts[mb.G + 1])
