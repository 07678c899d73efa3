"""Grouped streaming moments: the accumulator behind :class:`~cnnlens.similarity.Moments`.

Numerics. Second-order moments are merged batch by batch as centred moments
(Chan, Golub & LeVeque 1979): each batch is centred at its own mean and the
merge adds ``n_a n_b / n  delta delta^T`` -- raw sums with offsets like 1e4 would
lose ~8 digits. The fourth-order sums that only debiased CKA needs are kept
about a fixed reference (the first batch's mean, so they are near-centred) and
moved exactly to the final mean once, with the shift identities in
:meth:`Joint._reref`; that keeps the per-batch cost at a few GEMMs.

:class:`Joint` holds several layers ("groups") per side at once, so the
all-pairs engine gets every cross-moment of a batch from one GEMM.
"""
from __future__ import annotations

import torch

from .stats import Pair, Side

__all__ = ["Joint", "pair_from_data"]

_F64 = torch.float64


class _Groups:
    """Column layout of one side: consecutive blocks of sizes ``sizes``."""

    def __init__(self, sizes):
        self.sizes = [int(s) for s in sizes]
        self.L, self.D = len(self.sizes), sum(self.sizes)
        self.starts = [sum(self.sizes[:g]) for g in range(self.L)]
        self.gidx = torch.repeat_interleave(torch.arange(self.L), torch.tensor(self.sizes))
        self.P = torch.zeros(self.D, self.L, dtype=_F64)
        self.P[torch.arange(self.D), self.gidx] = 1.0

    def to(self, device) -> None:
        """Move the layout's index tensors next to the data (a GPU pass keeps them there)."""
        self.gidx, self.P = self.gidx.to(device), self.P.to(device)

    def sl(self, g: int) -> slice:
        return slice(self.starts[g], self.starts[g] + self.sizes[g])

    def seg(self, v: torch.Tensor) -> torch.Tensor:
        """Per-group sums of a (D,) vector."""
        return torch.zeros(self.L, dtype=_F64, device=v.device).index_add_(0, self.gidx, v)


_SYRK_BLOCKS = 4   # lower block triangle: 10 of 16 block products (8: smaller, slower GEMMs)
_SYRK_MIN_D = 256  # below this, one full product is faster than 36 small ones


def _syrk(S: torch.Tensor | None, E: torch.Tensor) -> torch.Tensor:
    """S += E^T E (S = E^T E if None), valid on the lower triangle only.

    torch has no symmetric rank-k update; products on the lower block triangle
    do ~56 % of the flops of ``E.mT @ E``. The upper triangle is stale until
    :meth:`Joint._mirror` copies it over, before any read.
    """
    d = E.shape[1]
    if d < _SYRK_MIN_D:
        return E.mT @ E if S is None else S.addmm_(E.mT, E)
    if S is None:
        S = torch.zeros(d, d, dtype=E.dtype, device=E.device)
    step = -(-d // _SYRK_BLOCKS)
    for i in range(0, d, step):
        b = min(step, d - i)
        S[i:i + b, :i + b].addmm_(E[:, i:i + b].mT, E[:, :i + b])
    return S


class Joint:
    """Centred moments of two sides of grouped features seen on the same datapoints.

    Parameters
    ----------
    sizes_x, sizes_y : list of int
        Feature count of every group (layer) on each side.
    higher : bool
        Also keep the fourth-order sums needed by debiased CKA.
    """

    def __init__(self, sizes_x, sizes_y, higher: bool = True):
        self.gx, self.gy = _Groups(sizes_x), _Groups(sizes_y)
        self.higher = higher
        self.n = 0
        self._final, self._mirrored = None, True

    def _cat(self, parts, grp: _Groups, name: str, owned: bool) -> torch.Tensor:
        """One float64 (b, D) tensor that this accumulator owns (it is centred in place)."""
        if len(parts) != grp.L:
            raise ValueError(f"{name}: expected {grp.L} groups, got {len(parts)}")
        for g, p in enumerate(parts):
            if p.ndim != 2 or p.shape[1] != grp.sizes[g]:
                raise ValueError(f"{name} group {g}: expected (b, {grp.sizes[g]}), got "
                                 f"{tuple(p.shape)}")
        if grp.L == 1:
            return parts[0].to(_F64, copy=not owned)
        return torch.cat([p.to(_F64) for p in parts], 1)

    def update(self, xs, ys, owned=(False, False)) -> None:
        """Add one batch: ``xs``/``ys`` are lists of (b, d_g) tensors (any float dtype).

        ``owned``: (x, y) flags saying a single float64 group tensor may be centred in
        place (the caller made it and does not reuse it); otherwise it is copied.
        """
        Ex, Ey = self._cat(xs, self.gx, "x", owned[0]), self._cat(ys, self.gy, "y", owned[1])
        self._update(Ex, Ey)

    def _update(self, Ex: torch.Tensor, Ey: torch.Tensor) -> None:
        if Ex.shape[0] != Ey.shape[0]:
            raise ValueError(f"batch has {Ex.shape[0]} rows on x but {Ey.shape[0]} on y")
        b = Ex.shape[0]
        if b == 0:
            return
        mbx, mby = Ex.mean(0), Ey.mean(0)
        Ex.sub_(mbx)
        Ey.sub_(mby)
        if self.n == 0:
            self.gx.to(Ex.device)
            self.gy.to(Ey.device)
            self.mx, self.my = mbx.clone(), mby.clone()
            self.rx, self.ry = mbx.clone(), mby.clone()
            self.Sx = [_syrk(None, Ex[:, self.gx.sl(g)]) for g in range(self.gx.L)]
            self.Sy = [_syrk(None, Ey[:, self.gy.sl(g)]) for g in range(self.gy.L)]
            self.M = Ex.mT @ Ey
            if self.higher:
                self._zero_extras()
        else:
            n2 = self.n + b
            c = self.n * b / n2
            dx, dy = mbx - self.mx, mby - self.my
            for S, grp, E, d in ((self.Sx, self.gx, Ex, dx), (self.Sy, self.gy, Ey, dy)):
                for g in range(grp.L):
                    _syrk(S[g], E[:, grp.sl(g)]).addr_(d[grp.sl(g)], d[grp.sl(g)], alpha=c)
            self.M.addmm_(Ex.mT, Ey).addr_(dx, dy, alpha=c)
            self.mx += dx * (b / n2)
            self.my += dy * (b / n2)
        if self.higher:
            self._add_extras(Ex, Ey, mbx - self.rx, mby - self.ry)
        self.n += b
        self._final, self._mirrored = None, False

    def to(self, device) -> None:
        """Move every accumulated tensor to ``device`` (a GPU pass hands its moments to the host)."""
        for k, v in vars(self).items():
            if torch.is_tensor(v):
                setattr(self, k, v.to(device))
            elif isinstance(v, list) and v and torch.is_tensor(v[0]):
                setattr(self, k, [t.to(device) for t in v])
        self.gx.to(device)
        self.gy.to(device)

    def _mirror(self) -> None:
        """Complete the scatters from their lower triangles (see :func:`_syrk`)."""
        if not self._mirrored:
            for S in self.Sx + self.Sy:
                S.copy_(torch.tril(S) + torch.tril(S, -1).mT)
            self._mirrored = True

    def _zero_extras(self):
        gx, gy = self.gx, self.gy

        def z(*shape):
            return torch.zeros(*shape, dtype=_F64, device=self.mx.device)
        self.tx, self.Hx, self.ty, self.Hy = z(gx.D), z(gx.L), z(gy.D), z(gy.L)
        self.AX, self.AY, self.G = z(gx.L, gy.D), z(gx.D, gy.L), z(gx.L, gy.L)

    @staticmethod
    def _q(E, d, grp: _Groups):
        """|x - ref|^2 per row and group from batch-centred E and d = batch mean - ref."""
        cols = []
        for g in range(grp.L):
            e, dg = E[:, grp.sl(g)], d[grp.sl(g)]
            cols.append(torch.linalg.vector_norm(e, dim=1).square_() + 2 * (e @ dg) + dg @ dg)
        return torch.stack(cols, 1)

    def _add_extras(self, Ex, Ey, dx, dy):
        """Fourth-order sums about the reference, without materialising x - ref."""
        qx, qy = self._q(Ex, dx, self.gx), self._q(Ey, dy, self.gy)
        sqx, sqy = qx.sum(0), qy.sum(0)
        for t, grp, E, q, d, sq in ((self.tx, self.gx, Ex, qx, dx, sqx),
                                    (self.ty, self.gy, Ey, qy, dy, sqy)):
            for g in range(grp.L):
                t[grp.sl(g)] += E[:, grp.sl(g)].mT @ q[:, g] + d[grp.sl(g)] * sq[g]
        self.Hx += (qx * qx).sum(0)
        self.Hy += (qy * qy).sum(0)
        self.AX.addmm_(qx.mT, Ey).add_(torch.outer(sqx, dy))
        self.AY.addmm_(Ex.mT, qy).add_(torch.outer(dx, sqy))
        self.G.addmm_(qx.mT, qy)

    def _reref(self, Dx, Dy):
        """Fourth-order sums about ``ref + D`` (data centred at mu, not at ref; exact).

        With e = x - ref, s = sum e = n (mu - ref) and e' = e - D:
        sum|e'|^2 e'   = t - Q D - 2 S D + 2 (s.D) D + |D|^2 s - n |D|^2 D,
        sum|e'|^2 f'   = a - Q_u D_v - 2 M^T D_u + 2 (s_u.D_u) D_v + |D_u|^2 s_v - n |D_u|^2 D_v,
        sum|e'|^2|f'|^2 = G - 2 a_uv.D_v - 2 a_vu.D_u + 4 D_u^T M D_v + |D_v|^2 Q_u + |D_u|^2 Q_v
                          - 2 |D_v|^2 (s_u.D_u) - 2 |D_u|^2 (s_v.D_v) + n |D_u|^2 |D_v|^2,
        where S, M, Q are the scatter about ref (= centred + n w w^T, w = mu - ref).
        """
        self._mirror()
        n, out = self.n, {}
        for key, grp, S, mu, ref, t, H, D in (
                ("x", self.gx, self.Sx, self.mx, self.rx, self.tx, self.Hx, Dx),
                ("y", self.gy, self.Sy, self.my, self.ry, self.ty, self.Hy, Dy)):
            w = mu - ref
            dd, sD = grp.seg(D * D), n * grp.seg(w * D)
            q_ref = torch.stack([s.diagonal().sum() for s in S]) + n * grp.seg(w * w)
            SD = torch.cat([S[g] @ D[grp.sl(g)] for g in range(grp.L)]) + w * sD[grp.gidx]
            gi = grp.gidx
            t2 = t - q_ref[gi] * D - 2 * SD + 2 * sD[gi] * D + dd[gi] * n * w - n * dd[gi] * D
            H2 = H - 4 * grp.seg(t * D) + 4 * grp.seg(D * SD) + 2 * dd * q_ref - 4 * dd * sD \
                + n * dd * dd
            out[key] = (w, dd, sD, q_ref, t2, H2)
        (wx, ddx, sDx, qx, tx, Hx), (wy, ddy, sDy, qy, ty, Hy) = out["x"], out["y"]
        Px, Py = self.gx.P, self.gy.P
        MtDx = Px.mT @ (Dx[:, None] * self.M) + n * torch.outer(self.gx.seg(Dx * wx), wy)
        MDy = (self.M * Dy[None, :]) @ Py + n * torch.outer(wx, self.gy.seg(wy * Dy))
        DMD = Px.mT @ (Dx[:, None] * MDy)
        AX = (self.AX - torch.outer(qx, Dy) - 2 * MtDx + 2 * torch.outer(sDx, Dy)
              + n * torch.outer(ddx, wy) - n * torch.outer(ddx, Dy))
        AY = (self.AY - torch.outer(Dx, qy) - 2 * MDy + 2 * torch.outer(Dx, sDy)
              + n * torch.outer(wx, ddy) - n * torch.outer(Dx, ddy))
        G = (self.G - 2 * ((self.AX * Dy[None, :]) @ Py) - 2 * (Px.mT @ (self.AY * Dx[:, None]))
             + 4 * DMD + torch.outer(qx, ddy) + torch.outer(ddx, qy) - 2 * torch.outer(sDx, ddy)
             - 2 * torch.outer(ddx, sDy) + n * torch.outer(ddx, ddy))
        return tx, Hx, ty, Hy, AX, AY, G

    def merge(self, other: Joint) -> None:
        """Add another accumulator over other datapoints (same layout), exactly."""
        if (self.gx.sizes, self.gy.sizes) != (other.gx.sizes, other.gy.sizes):
            raise ValueError("cannot merge accumulators of different layouts")
        if other.n == 0:
            return
        if self.n == 0:
            self.__dict__.update({k: (v.clone() if torch.is_tensor(v) else v)
                                  for k, v in other.__dict__.items()})
            self.Sx, self.Sy = [s.clone() for s in other.Sx], [s.clone() for s in other.Sy]
            return
        if self.higher:
            if not other.higher:
                raise ValueError("cannot merge: the other accumulator has no higher moments")
            ext = other._reref(self.rx - other.rx, self.ry - other.ry)
            for name, v in zip(("tx", "Hx", "ty", "Hy", "AX", "AY", "G"), ext, strict=True):
                getattr(self, name).add_(v)
        n2 = self.n + other.n
        c = self.n * other.n / n2
        dx, dy = other.mx - self.mx, other.my - self.my
        for S, So, grp, d in ((self.Sx, other.Sx, self.gx, dx), (self.Sy, other.Sy, self.gy, dy)):
            for g in range(grp.L):
                S[g].add_(So[g]).addr_(d[grp.sl(g)], d[grp.sl(g)], alpha=c)
        self.M.add_(other.M).addr_(dx, dy, alpha=c)
        self.mx += dx * (other.n / n2)
        self.my += dy * (other.n / n2)
        self.n = n2
        self._final, self._mirrored = None, False

    def side(self, which: str, g: int) -> Side:
        self._mirror()
        grp, S, mu = (self.gx, self.Sx, self.mx) if which == "x" else (self.gy, self.Sy, self.my)
        H = None
        if self.higher:
            H = float(self._centred()[1 if which == "x" else 3][g])
        return Side(self.n, mu[grp.sl(g)], S[g], H)

    def pair(self, gx: int = 0, gy: int = 0) -> Pair:
        """Centred statistics of group gx of x with group gy of y."""
        if self.n == 0:
            raise ValueError("no datapoints accumulated yet")
        G = float(self._centred()[6][gx, gy]) if self.higher else None
        return Pair(self.side("x", gx), self.side("y", gy),
                    self.M[self.gx.sl(gx), self.gy.sl(gy)], G)

    def _centred(self):
        if self._final is None:
            self._final = self._reref(self.mx - self.rx, self.my - self.ry)
        return self._final


def pair_from_data(X: torch.Tensor, Y: torch.Tensor, higher: bool = True) -> Pair:
    """Moments of two in-memory arrays (any float dtype) with the same rows.

    Computed by the streaming accumulator over row chunks of about 2^20 values:
    the float64 copy of each chunk stays in cache, which makes one in-memory pass
    faster than centring the whole array at once, and the result equal to a
    streamed one.
    """
    j = Joint([X.shape[1]], [Y.shape[1]], higher)
    step = max(64, 2 ** 20 // max(X.shape[1], Y.shape[1]))
    for i in range(0, X.shape[0], step):
        j.update([X[i:i + step]], [Y[i:i + step]])
    return j.pair()
