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
from PIL import Image, ImageDraw, ImageFilter, ImageFont

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
    img = Image.new("L", (HIRES, HIRES), 0)
    draw = ImageDraw.Draw(img)
    draw.text((HIRES / 2, HIRES / 2), str(digit), fill=255, font=_font(fi, 48), anchor="mm")
    # Pens are thicker than most typefaces: thicken by a random amount.
    grow = int(rng.integers(0, 1 + round(4 * realism)))
    if grow:
        img = img.filter(ImageFilter.MaxFilter(2 * grow + 1))
    return img


def _stroke_glyph(digit: int, rng: np.random.Generator, realism: float) -> Image.Image:
    """A pen-drawn digit, white on black, on a HIRES canvas."""
    strokes = skeleton(digit, rng, wobble=0.06 * realism)
    width = float(rng.uniform(5.0, 5.0 + 7.0 * realism)) if realism > 0 else 6.0
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
    angle = float(rng.uniform(-15, 15)) * realism
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
    height = SCAN * float(rng.uniform(1.0 - 0.25 * realism, 1.0)) * (0.85 if realism == 0 else 1)
    aspect = float(np.exp(rng.uniform(-0.25, 0.25) * realism))
    scale = height / h
    nw = max(1, min(SCAN, round(w * scale * aspect)))
    nh = max(1, min(SCAN, round(h * scale)))
    glyph = glyph.resize((nw, nh), Image.BILINEAR)
    out = Image.new("L", (SCAN, SCAN), 0)
    dx = (SCAN - nw) / 2 + rng.uniform(-3, 3) * realism
    dy = (SCAN - nh) / 2 + rng.uniform(-2, 2) * realism
    dx = int(round(min(max(dx, 0), SCAN - nw)))
    dy = int(round(min(max(dy, 0), SCAN - nh)))
    out.paste(glyph, (dx, dy))
    return out


def _scan(bitmap: np.ndarray, rng: np.random.Generator, realism: float) -> np.ndarray:
    """32x32 grey glyph (0..1) -> 8x8 ink counts (0..16), like the optdigits scanner."""
    if rng.random() < realism:
        binary = (bitmap > rng.uniform(0.35, 0.65)).astype(np.float32)
        counts = binary.reshape(8, 4, 8, 4).sum(axis=(1, 3))
    else:  # the "clean" path: anti-aliased reduction, no binarisation
        counts = bitmap.reshape(8, 4, 8, 4).mean(axis=(1, 3)) * 16.0
    if rng.random() < 0.3 * realism:  # mild optical blur
        k = np.array([0.25, 0.5, 0.25], dtype=np.float32)
        counts = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 0, counts)
        counts = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, counts)
        counts *= 16.0 / max(float(counts.max()), 1e-6)
    counts = counts + rng.normal(0.0, 0.8 * realism, counts.shape)
    return np.clip(counts, 0.0, 16.0)


def render(digit: int, rng: np.random.Generator, realism: float = 1.0) -> np.ndarray:
    """One synthetic digit as 8x8 ink counts in ``[0, 16]`` (float32)."""
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    use_strokes = rng.random() < 0.6 * realism
    glyph = (_stroke_glyph if use_strokes else _font_glyph)(digit, rng, realism)
    bitmap = np.asarray(_pose(glyph, rng, realism), dtype=np.float32) / 255.0
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
