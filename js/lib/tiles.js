// Tile layout, hit testing, ordering and painting for canvas tile views.
// The canvas holds tiles at their native resolution (1 px gaps) and is scaled up by
// an integer CSS factor with `image-rendering: pixelated`: one putImageData per
// paint, no per-tile drawImage, and hit testing is plain integer arithmetic.

import { colorize } from "./colormap.js";

/**
 * @typedef {{n:number, th:number, tw:number, gap:number, cols:number, rows:number,
 *   width:number, height:number, zoom:number}} Layout
 */

/**
 * Integer zoom so a tile of `side` native pixels shows at about `target` CSS pixels.
 * @param {number} side
 * @param {number} target
 */
export function zoomFor(side, target) {
  return Math.max(1, Math.floor(target / Math.max(1, side)));
}

/**
 * Lay out n tiles of th x tw native pixels, gap native px apart, in a box cssWidth wide.
 * @param {number} n
 * @param {number} th
 * @param {number} tw
 * @param {{gap?:number, zoom?:number, cssWidth?:number}} [opts]
 * @returns {Layout}
 */
export function layout(n, th, tw, { gap = 1, zoom = 1, cssWidth = 720 } = {}) {
  const perRow = Math.floor((cssWidth / zoom + gap) / (tw + gap));
  const cols = Math.max(1, Math.min(n, perRow));
  const rows = Math.max(1, Math.ceil(n / cols));
  return {
    n, th, tw, gap, cols, rows, zoom,
    width: cols * (tw + gap) - gap,
    height: rows * (th + gap) - gap,
  };
}

/** Native-pixel rectangle of display slot s. */
export function tileRect(L, s) {
  const c = s % L.cols;
  const r = Math.floor(s / L.cols);
  return { x: c * (L.tw + L.gap), y: r * (L.th + L.gap), w: L.tw, h: L.th };
}

/**
 * Which slot and pixel is under CSS point (x, y)? null in a gap or outside.
 * @param {Layout} L
 * @param {number} x CSS px from the canvas' left edge
 * @param {number} y CSS px from the canvas' top edge
 * @returns {{slot:number, px:number, py:number}|null}
 */
export function hitTest(L, x, y) {
  const nx = Math.floor(x / L.zoom);
  const ny = Math.floor(y / L.zoom);
  if (nx < 0 || ny < 0 || nx >= L.width || ny >= L.height) return null;
  const c = Math.floor(nx / (L.tw + L.gap));
  const r = Math.floor(ny / (L.th + L.gap));
  const px = nx - c * (L.tw + L.gap);
  const py = ny - r * (L.th + L.gap);
  if (px >= L.tw || py >= L.th) return null;
  const slot = r * L.cols + c;
  return slot < L.n ? { slot, px, py } : null;
}

/**
 * Display order of tiles: slot -> tile index. "index" keeps channel order; "mean"/"max" sort
 * descending by the given statistic (ties by channel, so the order is stable).
 * @param {Int32Array} channels
 * @param {"index"|"mean"|"max"} by
 * @param {{mean:Float32Array, max:Float32Array}|null} stats
 * @returns {Int32Array}
 */
export function sortOrder(channels, by, stats) {
  const idx = Array.from(channels, (_, i) => i);
  if (by === "mean" || by === "max") {
    const s = stats[by];
    idx.sort((a, b) => s[b] - s[a] || channels[a] - channels[b]);
  } else {
    idx.sort((a, b) => channels[a] - channels[b]);
  }
  return Int32Array.from(idx);
}

/** Slot showing channel `ch`, or -1 if it is not on this page. */
export function slotOf(channels, order, ch) {
  for (let s = 0; s < order.length; s++) if (channels[order[s]] === ch) return s;
  return -1;
}

/**
 * Paint every tile into ctx (native pixels) through a LUT.
 * @param {CanvasRenderingContext2D|null} ctx null-safe: returns false when there is no context
 * @param {{data:Uint8Array, h:number, w:number}} dec
 * @param {Int32Array} order
 * @param {Layout} L
 * @param {Uint8ClampedArray} table
 * @param {(Uint8Array|null)[]} remap per tile
 * @returns {boolean} whether anything was painted
 */
export function paintTiles(ctx, dec, order, L, table, remap) {
  if (!ctx) return false;
  const img = ctx.createImageData(L.width, L.height);
  const px = dec.h * dec.w;
  for (let s = 0; s < order.length; s++) {
    const i = order[s];
    const { x, y } = tileRect(L, s);
    for (let r = 0; r < dec.h; r++) {
      colorize(img.data, dec.data, i * px + r * dec.w, dec.w, table, remap[i], (y + r) * L.width + x);
    }
  }
  ctx.putImageData(img, 0, 0);
  return true;
}

/** Size a canvas to a layout: native backing store, CSS size zoomed. */
export function sizeCanvas(canvas, L) {
  canvas.width = L.width;
  canvas.height = L.height;
  canvas.style.width = `${L.width * L.zoom}px`;
  canvas.style.height = `${L.height * L.zoom}px`;
}

/**
 * Paint image k of a decodeImages() result (n, h, w, c; c = 1 or 3) into ctx at (0, 0).
 * @returns {boolean} whether anything was painted
 */
export function paintImage(ctx, imgs, k) {
  if (!ctx || !imgs) return false;
  const { h: H, w: W, c: C, data } = imgs;
  const img = ctx.createImageData(W, H);
  const base = k * H * W * C;
  for (let j = 0; j < H * W; j++) {
    const s = base + j * C;
    img.data[4 * j] = data[s];
    img.data[4 * j + 1] = data[s + (C === 3 ? 1 : 0)];
    img.data[4 * j + 2] = data[s + (C === 3 ? 2 : 0)];
    img.data[4 * j + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return true;
}
