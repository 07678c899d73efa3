"""Synthetic digits drawn procedurally, offline and deterministic by seed.

Each sample is a glyph, either drawn as pen strokes along a wobbly skeleton
(handwriting-like) or typeset with a TrueType font (Pillow's bundled font,
plus common system fonts when installed). The glyph is jittered (rotation,
shear, stroke thickness, aspect, scale, translation), then "scanned" the way the
real set was: binarised on a 32x32 grid and reduced to 8x8 counts of inked
pixels, optionally blurred and noised, and upsampled by the same function as the
real digits (:func:`cnnlens.demo.digits.upsample`).

``realism`` in ``[0, 1]`` scales all of that: 0 gives clean, centred font glyphs
resized straight to 8x8; 1 gives the full pen-stroke + scan simulation.

Examples
--------
>>> from cnnlens.demo.synth import synthetic_digits
>>> ds = synthetic_digits(20, seed=3)
>>> ds.images.shape, float(ds.images.min()) >= 0.0, float(ds.images.max()) <= 1.0
(torch.Size([20, 1, 16, 16]), True, True)
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .digits import SIZE, Digits, upsample
from .strokes import skeleton

HIRES = 64
"""Canvas side on which a glyph is drawn before it is fitted into the 32x32 scan."""

SCAN = 32
"""Side of the binary bitmap that is block-counted into 8x8, as in the real set."""

# Fonts looked for by file name, so the list (and the cache key built from it)
# does not depend on the order fontconfig returns them in.
SYSTEM_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansCondensed.ttf", "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
    "LiberationSerif-Regular.ttf", "LiberationMono-Regular.ttf",
    "LiberationSansNarrow-Regular.ttf",
)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts",
             "C:/Windows/Fonts", os.path.expanduser("~/.fonts"))


@functools.lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """System fonts found by name (may be empty); Pillow's own font is always used too."""
    found = {}
    for root in FONT_DIRS:
        if not os.path.isdir(root):
            continue
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f in SYSTEM_FONTS and f not in found:
                    found[f] = os.path.join(dirpath, f)
    return tuple(found[f] for f in SYSTEM_FONTS if f in found)


def font_names() -> tuple[str, ...]:
    """Names of every font the generator draws from (part of the demo's cache key)."""
    return ("pillow-default", *(os.path.basename(f) for f in font_files()))


@functools.lru_cache(maxsize=32)
def _font(index: int, size: int):
    if index == 0:
        return ImageFont.load_default(size=size)  # bundled with Pillow (needs FreeType)
    return ImageFont.truetype(font_files()[index - 1], size=size)


def _font_glyph(digit: int, rng: np.random.Generator, realism: float) -> Image.Image:
    """A typeset digit, white on black, on a HIRES canvas (not yet cropped)."""
    fi = int(rng.integers(len(font_names())))
    # Pens are thicker than most typefaces: outline the glyph by a random width.
    grow = int(rng.integers(0, 1 + round(1 * realism)))
    img = Image.new("L", (HIRES, HIRES), 0)
    ImageDraw.Draw(img).text((HIRES / 2, HIRES / 2), str(digit), fill=255, font=_font(fi, 44),
                             anchor="mm", stroke_width=grow, stroke_fill=255)
    return img


def _stroke_glyph(digit: int, rng: np.random.Generator, realism: float) -> Image.Image:
    """A pen-drawn digit, white on black, on a HIRES canvas."""
    strokes = skeleton(digit, rng, wobble=0.06 * realism)
    width = float(rng.uniform(4.0, 4.0 + 4.0 * realism)) if realism > 0 else 6.0
    img = Image.new("L", (HIRES, HIRES), 0)
    draw = ImageDraw.Draw(img)
    r = width / 2
    for pts in strokes:
        # Skeletons live in a unit box; leave a margin so thick strokes are not clipped.
        xy = [(8 + 48 * x, 8 + 48 * y) for x, y in pts]
        draw.line(xy, fill=255, width=max(1, round(width)), joint="curve")
        for x, y in (xy[0], xy[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return img


def _pose(img: Image.Image, rng: np.random.Generator, realism: float) -> Image.Image:
    """Rotate/shear, crop to the ink, fit into the SCAN box with jittered size and offset."""
    angle = float(rng.uniform(-10, 10)) * realism
    shear = float(rng.uniform(-0.3, 0.3)) * realism
    c = HIRES / 2
    a, s = math.radians(angle), shear
    # Inverse affine map (output -> input) about the centre: rotation then x-shear.
    m = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) @ np.array(
        [[1.0, s], [0.0, 1.0]])
    inv = np.linalg.inv(m)
    off = np.array([c, c]) - inv @ np.array([c, c])
    img = img.transform(img.size, Image.AFFINE, (*inv[0], off[0], *inv[1], off[1]),
                        resample=Image.BILINEAR)
    box = img.getbbox()
    if box is None:  # cannot happen with the glyphs above; keep the canvas rather than fail
        return img.resize((SCAN, SCAN), Image.BILINEAR)
    glyph = img.crop(box)
    w, h = glyph.size
    # The real scans are size-normalised: tall digits fill most of the 32 px height.
    height = SCAN * float(rng.uniform(1.0 - 0.15 * realism, 1.0)) * (0.85 if realism == 0 else 1)
    nh = max(1, min(SCAN, round(height)))
    nw = w * nh / h
    if realism > 0:
        # The real writers drew tall, narrow digits (width about half the height):
        # squeeze wide glyphs towards that, leave narrow ones (a "1") alone.
        nw = min(nw, nh * float(rng.uniform(0.7 - 0.25 * realism, 0.75)))
    nw = max(1, min(SCAN * 7 // 8, round(nw)))
    glyph = glyph.resize((nw, nh), Image.BILINEAR)
    out = Image.new("L", (SCAN, SCAN), 0)
    dx = (SCAN - nw) / 2 + rng.uniform(-2, 2) * realism
    dy = (SCAN - nh) / 2 + rng.uniform(-2, 2) * realism
    dx = round(min(max(dx, 0), SCAN - nw))
    dy = round(min(max(dy, 0), SCAN - nh))
    out.paste(glyph, (dx, dy))
    return out


ELASTIC = 2.0
_GRID = np.mgrid[0:SCAN, 0:SCAN].astype(np.float64)
"""Typical displacement, in 32x32 pixels, of the elastic bend at ``realism=1``."""


@functools.lru_cache(maxsize=1)
def _upsampler() -> np.ndarray:
    """(SCAN, 4) matrix that smoothly interpolates 4 coarse values to SCAN pixels."""
    from scipy.ndimage import zoom

    return np.stack([zoom(e, SCAN / 4, order=3, mode="nearest") for e in np.eye(4)], axis=1)


def _elastic(bitmap: np.ndarray, rng: np.random.Generator, alpha: float) -> np.ndarray:
    """Bend the 32x32 glyph by a smooth random field of about ``alpha`` pixels."""
    from scipy.ndimage import map_coordinates

    up = _upsampler()
    coarse = rng.normal(0.0, alpha, (2, 4, 4))  # random shifts on a 4x4 grid ...
    field = up @ coarse @ up.T  # ... interpolated (separably) to every pixel
    return map_coordinates(bitmap, _GRID + field, order=1, mode="constant")


def _scan(bitmap: np.ndarray, rng: np.random.Generator, realism: float) -> np.ndarray:
    """32x32 grey glyph (0..1) -> 8x8 ink counts (0..16), like the optdigits scanner."""
    if rng.random() < realism:
        binary = (bitmap > rng.uniform(0.35, 0.65)).astype(np.float32)
        counts = binary.reshape(8, 4, 8, 4).sum(axis=(1, 3))
    else:  # the "clean" path: anti-aliased reduction, no binarisation
        counts = bitmap.reshape(8, 4, 8, 4).mean(axis=(1, 3)) * 16.0
    if rng.random() < 0.15 * realism:  # mild optical blur, peak ink kept
        p = np.pad(counts, 1)
        counts = (2 * p[1:-1] + p[:-2] + p[2:]) / 4
        counts = (2 * counts[:, 1:-1] + counts[:, :-2] + counts[:, 2:]) / 4
        counts *= 16.0 / max(float(counts.max()), 1e-6)
    if rng.random() < 0.5 * realism:  # sensor noise on the ink only: the scans' background is 0
        counts = counts + rng.normal(0.0, 1.0, counts.shape) * (counts > 0)
    return np.clip(counts, 0.0, 16.0)


def render(digit: int, rng: np.random.Generator, realism: float = 1.0) -> np.ndarray:
    """One synthetic digit as 8x8 ink counts in ``[0, 16]`` (float32)."""
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    use_strokes = rng.random() < 0.6 * realism
    glyph = (_stroke_glyph if use_strokes else _font_glyph)(digit, rng, realism)
    bitmap = np.asarray(_pose(glyph, rng, realism), dtype=np.float32) / 255.0
    if realism > 0:
        bitmap = _elastic(bitmap, rng, alpha=ELASTIC * realism)
    return _scan(bitmap, rng, realism).astype(np.float32)


def synthetic_digits(n: int, seed: int = 0, realism: float = 1.0, size: int = SIZE) -> Digits:
    """Generate ``n`` labelled synthetic digits, balanced over the ten classes.

    Parameters
    ----------
    n : int
        Number of images; labels cycle 0..9 so every class gets n/10 of them.
    seed : int
        Same seed, same images. Sample ``i`` depends only on ``(seed, i)``, so a
        smaller ``n`` gives a prefix of a larger one.
    realism : float
        0 = clean centred font glyphs; 1 = pen strokes, jitter and scan simulation.
    size : int
        Output side, as for the real digits.

    Returns
    -------
    Digits
        ``images`` float32 ``(n, 1, size, size)`` in ``[0, 1]``, ``labels`` int64.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if not 0.0 <= realism <= 1.0:
        raise ValueError(f"realism must be within [0, 1], got {realism}")
    labels = np.arange(n) % 10
    counts = np.empty((n, 8, 8), dtype=np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        counts[i] = render(int(labels[i]), rng, realism)
    return Digits(upsample(counts, size), torch.as_tensor(labels, dtype=torch.int64),
                  f"synthetic(seed={seed}, realism={realism:g})")
