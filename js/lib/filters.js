// Layout and painting of weight filters (decodeWeights results) for the filter view.

import { lut } from "./colormap.js";
import { context2d } from "./dom.js";
import { layout, sizeCanvas, tileRect, zoomFor } from "./tiles.js";

/** Grid of input kernels inside one filter tile: kc columns x kr rows. */
export function kernelGrid(cin) {
  const kc = Math.ceil(Math.sqrt(cin));
  return { kc, kr: Math.ceil(cin / kc) };
}

/**
 * Tile layout for a decoded weights payload.
 * rgb/grey: one kh x kw tile per filter; kernels: one tile per filter holding its input
 * kernels (1 px apart); norms: one cell per filter.
 */
/** CSS px a weight gets at least (3x3 kernels of a few px each were unreadable), as long as
 * a tile stays within MAX_TILE CSS px. */
const MIN_WEIGHT_PX = 6;
const MAX_TILE = 128;

/** Integer zoom of a tile `side` native px: about `target` CSS px, weights at least MIN_WEIGHT_PX. */
export function filterZoom(side, target) {
  return Math.max(zoomFor(side, target), Math.min(MIN_WEIGHT_PX, Math.floor(MAX_TILE / Math.max(1, side))), 1);
}

export function filterLayout(w, cssWidth = 600, target = 48) {
  if (w.mode === "norms") {
    const zoom = Math.max(4, Math.min(16, Math.floor(cssWidth / Math.ceil(Math.sqrt(w.out)))));
    return layout(w.out, 1, 1, { gap: 0, zoom, cssWidth });
  }
  if (w.mode === "kernels") {
    const { kc, kr } = kernelGrid(w.cin);
    const th = kr * (w.kh + 1) - 1;
    const tw = kc * (w.kw + 1) - 1;
    return layout(w.out, th, tw, { gap: 2, zoom: filterZoom(Math.max(th, tw), target), cssWidth });
  }
  return layout(w.out, w.kh, w.kw, { gap: 1, zoom: filterZoom(Math.max(w.kh, w.kw), target), cssWidth });
}

/** LUT index of a weight on a symmetric (zero = middle) scale of half-width m. */
function diverging(v, m) {
  return m > 0 ? Math.max(0, Math.min(255, Math.round((v / m + 1) * 127.5))) : 128;
}

/** Largest |weight| of filter o, or of all filters (o < 0): the half-width of a centred scale. */
export function maxAbs(w, o = -1) {
  let m = 0;
  for (let i = o < 0 ? 0 : o; i < (o < 0 ? w.out : o + 1); i++) {
    m = Math.max(m, Math.abs(w.offset[i]), Math.abs(w.offset[i] + 255 * w.scale[i]));
  }
  return m;
}

/**
 * Paint filters into ctx (native pixels). Null-context safe.
 * @returns {boolean}
 */
export function paintFilters(ctx, w, L) {
  if (!ctx) return false;
  const img = ctx.createImageData(L.width, L.height);
  const d = img.data;
  const put = (x, y, r, g, b) => {
    const j = 4 * (y * L.width + x);
    d[j] = r; d[j + 1] = g; d[j + 2] = b; d[j + 3] = 255;
  };
  if (w.mode === "norms") {
    const table = lut("viridis");
    let top = 0;
    for (const v of w.norms) top = Math.max(top, v);
    for (let o = 0; o < w.out; o++) {
      const { x, y } = tileRect(L, o);
      const j = 4 * Math.round(top > 0 ? (255 * w.norms[o]) / top : 0);
      put(x, y, table[j], table[j + 1], table[j + 2]);
    }
  } else {
    const { out, cin, kh, kw, data } = w;
    const per = cin * kh * kw;
    const div = lut("rdbu");
    const { kc } = kernelGrid(cin);
    // single-channel and per-input kernels: one scale for the layer, centred on zero, so
    // filters compare and white means 0 (the lesson says "red = positive")
    const layerM = maxAbs(w);
    for (let o = 0; o < out; o++) {
      const { x, y } = tileRect(L, o);
      const lo = w.offset[o];
      const sc = w.scale[o];
      const m = w.mode === "rgb" ? maxAbs(w, o) : layerM;
      const grey = (v) => Math.max(0, Math.min(255, Math.round(127.5 + (m > 0 ? (127.5 * v) / m : 0))));
      for (let c = 0; c < (w.mode === "kernels" ? cin : 1); c++) {
        const ox = w.mode === "kernels" ? (c % kc) * (kw + 1) : 0;
        const oy = w.mode === "kernels" ? Math.floor(c / kc) * (kh + 1) : 0;
        for (let r = 0; r < kh; r++) {
          for (let s = 0; s < kw; s++) {
            const at = (ch) => data[o * per + ch * kh * kw + r * kw + s];
            if (w.mode === "rgb") {  // each filter on its own centred scale: mid-grey is 0
              put(x + s, y + r, grey(lo + sc * at(0)), grey(lo + sc * at(1)), grey(lo + sc * at(2)));
            } else if (w.mode === "grey") {
              const j = 4 * diverging(lo + sc * at(0), m);
              put(x + s, y + r, div[j], div[j + 1], div[j + 2]);
            } else {
              const j = 4 * diverging(lo + sc * at(c), m);
              put(x + ox + s, y + oy + r, div[j], div[j + 1], div[j + 2]);
            }
          }
        }
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  return true;
}

/** Legend text for a mode. */
export function legend(w) {
  if (!w) return "";
  if (w.mode === "rgb") return "each filter's RGB kernel; mid-grey = 0, each filter scaled to its own largest |weight|";
  if (w.mode === "grey") return "each filter's kernel; blue < 0 (white) < red, one scale for the layer";
  if (w.mode === "kernels") {
    return `each tile: one output filter, its ${w.cin} input kernels; blue < 0 (white) < red, one scale for the layer`;
  }
  return "L2 norm per filter (viridis, max = brightest)";
}

/** The colour bar of a decoded weights payload (lib/colorbar.js drawColorBar spec), or null. */
export function filterBar(w) {
  if (!w) return null;
  if (w.mode === "norms") {
    let top = 0;
    for (const v of w.norms) top = Math.max(top, v);
    return { colormap: "viridis", lo: 0, hi: top, label: "L2 norm of each filter's weights" };
  }
  if (w.mode === "rgb") {
    return { colormap: "gray", relative: true, label: "weight per colour channel, each filter to its own scale",
      ticks: [{ at: 0, text: "−max|w|" }, { at: 0.5, text: "0" }, { at: 1, text: "+max|w|" }] };
  }
  const m = maxAbs(w);
  return { colormap: "rdbu", lo: -m, hi: m, label: "weight (one scale for the layer; white = 0)" };
}

/** Shows `box` with filter weights `w` painted on `canvas` within cssWidth x target, or hides it. */
export function paintFilterBox(box, canvas, w, cssWidth, target) {
  box.hidden = !w;
  if (!w) return;
  const L = filterLayout(w, cssWidth, target);
  sizeCanvas(canvas, L);
  paintFilters(context2d(canvas), w, L);
}
