"""Pen-stroke skeletons of the ten digits, with handwriting-like variation.

A skeleton is a list of strokes; a stroke is a list of ``(x, y)`` points in a
unit box (x to the right, y downwards). Common variants of each digit (a "1"
with or without a flag, a crossed "7", an open "4") are picked at random, then a
smooth random warp moves every point so that no two samples share a shape.
"""
from __future__ import annotations

import numpy as np


def arc(cx, cy, rx, ry, a0, a1, n=16):
    """Points on an ellipse from angle ``a0`` to ``a1`` (degrees; y down, so clockwise)."""
    t = np.radians(np.linspace(a0, a1, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


def _zero(r):
    return [arc(0.5, 0.5, r.uniform(0.25, 0.38), 0.46, 0, 360, 24)]


def _one(r):
    s = [[(0.55, 0.03), (0.5, 0.97)]]
    if r.random() < 0.7:
        s.append([(0.28, 0.28), (0.55, 0.03)])
    if r.random() < 0.5:
        s.append([(0.28, 0.97), (0.75, 0.97)])
    return s


def _two(r):
    top = arc(0.5, 0.3, 0.32, 0.26, 195, 375)
    end = top[-1]
    if r.random() < 0.5:  # plain diagonal neck
        neck = [end, (0.15, 0.95)]
    else:  # curved neck
        neck = [end, *arc(0.75, 0.95, 0.6, 0.45, 295, 180, 12)[1:]]
    return [top + neck[1:], [(0.15, 0.95), (0.88, 0.93)]]


def _three(r):
    upper = arc(0.48, 0.28, 0.3, 0.24, 200, 450)
    lower = arc(0.48, 0.73, 0.34, 0.24, 270, 520)
    if r.random() < 0.5:
        return [upper + lower]
    return [upper, lower]  # lifted pen at the waist


def _four(r):
    x = r.uniform(0.58, 0.7)
    if r.random() < 0.6:  # closed: down-stroke, diagonal, bar
        return [[(x, 0.97), (x, 0.03), (0.12, 0.66), (0.88, 0.66)]]
    return [[(0.25, 0.03), (0.15, 0.62), (0.88, 0.62)], [(x, 0.25), (x, 0.97)]]  # open top


def _five(r):
    bowl = arc(0.47, 0.67, 0.33, 0.28, 225, 510)
    return [[(0.27, 0.45), (0.3, 0.05)] + [bowl[0]] + bowl[1:], [(0.3, 0.05), (0.82, 0.05)]]


def _six(r):
    stem = arc(0.62, 0.62, 0.42, 0.58, 285, 180, 16)
    loop = arc(0.5, 0.72, 0.3, 0.24, 180, 540, 20)
    return [stem + loop]


def _seven(r):
    foot = (r.uniform(0.3, 0.5), 0.97)
    s = [[(0.12, 0.05), (0.88, 0.05), foot]]
    if r.random() < 0.5:
        s.append([(0.38, 0.5), (0.8, 0.5)])
    return s


def _eight(r):
    return [arc(0.5, 0.27, 0.26, 0.23, 90, 450, 20), arc(0.5, 0.72, 0.32, 0.25, 270, 630, 20)]


def _nine(r):
    loop = arc(0.5, 0.3, 0.3, 0.26, 0, 360, 20)
    if r.random() < 0.5:
        stem = [(0.8, 0.3), (0.72, 0.97)]
    else:
        stem = arc(0.38, 0.3, 0.42, 0.67, 0, 110, 12)
    return [loop, stem]


_DIGITS = (_zero, _one, _two, _three, _four, _five, _six, _seven, _eight, _nine)


def skeleton(digit: int, rng: np.random.Generator, wobble: float = 0.05) -> list:
    """Strokes of ``digit`` with a smooth random warp of amplitude ``wobble``.

    Parameters
    ----------
    digit : int
        0..9.
    rng : numpy.random.Generator
        Source of all randomness (variant and warp).
    wobble : float
        Displacement amplitude as a fraction of the box (0 = the clean template).

    Returns
    -------
    list of list of (float, float)
    """
    strokes = _DIGITS[digit](rng)
    # A low-frequency sine warp bends strokes the way a hand does, without
    # the jagged look that independent per-point noise would give.
    f = rng.uniform(0.5, 1.5, size=4)
    p = rng.uniform(0, 2 * np.pi, size=4)
    amp = rng.uniform(0, wobble, size=4)
    out = []
    for pts in strokes:
        a = np.asarray(pts, dtype=np.float64)
        x, y = a[:, 0], a[:, 1]
        dx = amp[0] * np.sin(2 * np.pi * f[0] * y + p[0]) + amp[1] * np.sin(
            2 * np.pi * f[1] * x + p[1])
        dy = amp[2] * np.sin(2 * np.pi * f[2] * x + p[2]) + amp[3] * np.sin(
            2 * np.pi * f[3] * y + p[3])
        out.append(list(zip(np.clip(x + dx, 0, 1), np.clip(y + dy, 0, 1))))
    return out
