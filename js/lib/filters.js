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
export function filterLayout(w, cssWidth = 600, target = 48) {
  if (w.mode === "norms") {
    const zoom = Math.max(4, Math.min(16, Math.floor(cssWidth / Math.ceil(Math.sqrt(w.out)))));
    return layout(w.out, 1, 1, { gap: 0, zoom, cssWidth });
  }
  if (w.mode === "kernels") {
    const { kc, kr } = kernelGrid(w.cin);
    const th = kr * (w.kh + 1) - 1;
    const tw = kc * (w.kw + 1) - 1;
    return layout(w.out, th, tw, { gap: 2, zoom: zoomFor(Math.max(th, tw), target), cssWidth });
  }
  return layout(w.out, w.kh, w.kw, { gap: 1, zoom: zoomFor(Math.max(w.kh, w.kw), target), cssWidth });
}

/** LUT index of a weight on a symmetric (zero = middle) scale of half-width m. */
function diverging(v, m) {
  return m > 0 ? Math.max(0, Math.min(255, Math.round((v / m + 1) * 127.5))) : 128;
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
    const grey = lut("gray");
    const div = lut("rdbu");
    const { kc } = kernelGrid(cin);
    for (let o = 0; o < out; o++) {
      const { x, y } = tileRect(L, o);
      const lo = w.offset[o];
      const sc = w.scale[o];
      const m = Math.max(Math.abs(lo), Math.abs(lo + 255 * sc));
      for (let c = 0; c < (w.mode === "kernels" ? cin : 1); c++) {
        const ox = w.mode === "kernels" ? (c % kc) * (kw + 1) : 0;
        const oy = w.mode === "kernels" ? Math.floor(c / kc) * (kh + 1) : 0;
        for (let r = 0; r < kh; r++) {
          for (let s = 0; s < kw; s++) {
            const at = (ch) => data[o * per + ch * kh * kw + r * kw + s];
            if (w.mode === "rgb") {
              put(x + s, y + r, at(0), at(1), at(2));
            } else if (w.mode === "grey") {
              const j = 4 * at(0);
              put(x + s, y + r, grey[j], grey[j + 1], grey[j + 2]);
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
  if (w.mode === "rgb") return "each filter's RGB kernel, stretched to its own range";
  if (w.mode === "grey") return "each filter, stretched to its own range";
  if (w.mode === "kernels") {
    return `each tile: one output filter, its ${w.cin} input kernels; blue < 0 < red (scaled per filter)`;
  }
  return "L2 norm per filter (viridis, max = brightest)";
}

/** Shows `box` with filter weights `w` painted on `canvas` within cssWidth x target, or hides it. */
export function paintFilterBox(box, canvas, w, cssWidth, target) {
  box.hidden = !w;
  if (!w) return;
  const L = filterLayout(w, cssWidth, target);
  sizeCanvas(canvas, L);
  paintFilters(context2d(canvas), w, L);
}
