// Colour scales the views share: which map a view uses for signed data (a diverging map
// centred on zero), and the labelled colour bar drawn beside every colour-coded view
// (issue 11: no view said what its colours meant). Pure helpers first (unit-tested).

import { cssColor, lut } from "./colormap.js";
import { fmt, h } from "./dom.js";

/** Whether [lo, hi] straddles zero by more than a rounding error of its span. */
export function isSigned(lo, hi) {
  const tol = 1e-3 * Math.max(Math.abs(lo), Math.abs(hi));
  return lo < -tol && hi > tol;
}

/**
 * The colour map to paint with: "auto" is the diverging "rdbu" for signed data (zero in the
 * middle, white), "viridis" otherwise; any other name is used as is.
 */
export function resolveColormap(name, signed) {
  if (name !== "auto") return name;
  return signed ? "rdbu" : "viridis";
}

/** Whether a map is diverging: its middle means zero, so values are scaled symmetrically. */
export function isDiverging(name) {
  return name === "rdbu";
}

/**
 * Ticks of a bar over [lo, hi]: the ends, and zero when it lies inside.
 * @returns {{at:number, text:string}[]} at: 0..1 from the left
 */
export function barTicks(lo, hi) {
  const ticks = [{ at: 0, text: fmt(lo) }, { at: 1, text: fmt(hi) }];
  if (hi > lo && lo < 0 && hi > 0) ticks.splice(1, 0, { at: -lo / (hi - lo), text: "0" });
  return ticks;
}

/**
 * Paint a labelled colour bar into `box` (a .cnnlens-colorbar element).
 * @param {HTMLElement} box
 * @param {{colormap:string, lo?:number, hi?:number, label:string, relative?:boolean}} spec
 *   relative: each tile has its own scale; the ends read "min"/"max" of that tile
 */
export function drawColorBar(box, spec) {
  if (!spec) { box.hidden = true; return; }
  box.hidden = false;
  const table = lut(spec.colormap);
  // a CSS gradient, not a canvas: the views' canvases are their data (tests, hit testing)
  const stops = Array.from({ length: 17 }, (_, k) => `${cssColor(table, k * 16)} ${(k * 100 / 16).toFixed(1)}%`);
  const bar = h("div", { className: "cnnlens-colorbar-ramp",
    style: { background: `linear-gradient(to right, ${stops.join(", ")})` } });
  const ticks = spec.ticks ? spec.ticks : spec.relative
    ? (isDiverging(spec.colormap)
      ? [{ at: 0, text: "−max|v|" }, { at: 0.5, text: "0" }, { at: 1, text: "+max|v|" }]
      : [{ at: 0, text: "min" }, { at: 1, text: "max" }])
    : barTicks(spec.lo, spec.hi);
  const scale = h("div", { className: "cnnlens-colorbar-ticks" }, ticks.map((t) => h("span", {
    text: t.text, style: { left: `${(100 * t.at).toFixed(1)}%` },
    className: t.at === 0 ? "start" : t.at === 1 ? "end" : "" })));
  box.replaceChildren(h("div", { className: "cnnlens-colorbar-label", text: spec.label, title: spec.label }),
    h("div", { className: "cnnlens-colorbar-body" }, [bar, scale]));
  Object.assign(box.dataset, { colormap: spec.colormap, label: spec.label,
    relative: spec.relative ? "1" : "0" });
  if (spec.relative) { delete box.dataset.lo; delete box.dataset.hi; } else {
    box.dataset.lo = String(spec.lo);
    box.dataset.hi = String(spec.hi);
  }
}

/** An empty colour bar element for a view to fill with drawColorBar. */
export function colorBarBox() {
  return h("div", { className: "cnnlens-colorbar", hidden: true, attrs: { role: "img" } });
}
