// A unit's values over the image set as a small SVG histogram, with the current image's value
// marked: what a linear unit shows instead of a spatial map (issue 11: a stale conv map stood
// in for it). Pure helpers first (unit-tested), then the DOM painter.

import { fmt, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

/**
 * Equal-width bins over the finite values.
 * @param {ArrayLike<number>} values
 * @param {number} count
 * @returns {{counts: number[], lo: number, hi: number, n: number}}
 */
export function binValues(values, count = 20) {
  const finite = Array.from(values).filter(Number.isFinite);
  if (!finite.length) return { counts: [], lo: 0, hi: 0, n: 0 };
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (hi === lo) { lo -= 0.5; hi += 0.5; }
  const counts = new Array(count).fill(0);
  for (const v of finite) counts[Math.min(count - 1, Math.floor(((v - lo) / (hi - lo)) * count))]++;
  return { counts, lo, hi, n: finite.length };
}

/** x position (0..width) of value v on the bins' range, clamped. */
export function xOf(bins, v, width) {
  return Math.max(0, Math.min(width, ((v - bins.lo) / (bins.hi - bins.lo)) * width));
}

/**
 * Draw `values` (one per image) into `box`, the value `current` marked; hide `box` when
 * there are no values. data-count / data-marker say what was drawn.
 */
export function drawDistribution(box, values, current, what = "images") {
  const bins = binValues(values || []);
  box.hidden = bins.n === 0;
  box.dataset.count = String(bins.n);
  if (box.hidden) { box.replaceChildren(); return; }
  const W = 240, H = 56, top = Math.max(...bins.counts, 1), bw = W / bins.counts.length;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", String(W));
  svg.setAttribute("height", String(H));
  svg.setAttribute("role", "img");
  const add = (tag, attrs) => {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.append(el);
    return el;
  };
  bins.counts.forEach((c, i) => {
    const hgt = (c / top) * (H - 4);
    add("rect", { x: i * bw + 0.5, y: H - hgt, width: Math.max(bw - 1, 0.5), height: hgt,
      class: "cnnlens-dist-bar" });
  });
  add("line", { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, class: "cnnlens-dist-axis" });
  if (Number.isFinite(current)) {
    const x = xOf(bins, current, W);
    add("line", { x1: x, x2: x, y1: 0, y2: H, class: "cnnlens-dist-mark" });
    box.dataset.marker = String(Math.round(x));
  }
  svg.setAttribute("aria-label", `distribution over ${bins.n} ${what}`);
  box.replaceChildren(
    h("div", { className: "cnnlens-dim", text: `over ${bins.n} ${what} (line: this image)` }), svg,
    h("div", { className: "cnnlens-dim cnnlens-dist-range", text: `${fmt(bins.lo)} … ${fmt(bins.hi)}` }));
}
