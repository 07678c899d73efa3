// Pure helpers of js/trust_link.js (unit-tested in tests/trust.test.js): which heatmap cell a
// gap-chart point stands for and back, the difference mode's colour range (the chance
// hatching is drawn by the heatmap's overlay, lib/heatmap_view.js).

/** Slab of metric `m` out of stacked (M, La, Lb) float32 matrices, as La rows; or null. */
export function slab(stack, names, shape, m) {
  const at = (names || []).indexOf(m);
  if (at < 0 || !stack || !shape || shape.length !== 2) return null;
  const [la, lb] = shape;
  const base = at * la * lb;
  if (stack.length < base + la * lb) return null;
  return Array.from({ length: la }, (_, i) => stack.slice(base + i * lb, base + (i + 1) * lb));
}

/** Symmetric colour range of a difference matrix: its largest |value|, rounded up (>= 0.02). */
export function diffRange(rows) {
  let top = 0;
  for (const r of rows || []) for (const v of r) if (Number.isFinite(v)) top = Math.max(top, Math.abs(v));
  const step = top > 0.2 ? 0.1 : 0.01;
  return Math.max(0.02, Math.ceil(top / step - 1e-9) * step);
}

/** The heatmap cell [row, column] of gap-chart point k, or null (no matching column). */
export function pairOfPoint(series, k) {
  if (!series || k == null || k < 0 || k >= (series.row || []).length) return null;
  const col = series.column[k];
  return col >= 0 ? [series.row[k], col] : null;
}

/** The gap-chart point of heatmap cell `pair` (the row's matched column), or -1. */
export function pointOfPair(series, pair) {
  if (!series || !pair) return -1;
  const rows = series.row || [];
  for (let k = 0; k < rows.length; k++) if (rows[k] === pair[0] && series.column[k] === pair[1]) return k;
  return -1;
}

/** First index of a bqplot Scatter `selected` value (array, typed array or null), or null. */
export function firstIndex(selected) {
  if (selected == null || selected.length === 0) return null;
  const k = Number(selected[0]);
  return Number.isInteger(k) ? k : null;
}

/** Title of the gap chart (the y axis names the metric); gap_chart.gap_title on the same inputs: tests/twins.test.js. */
export function gapTitle(names) {
  const [a, b, c] = names.map((n) => (n.length <= 14 ? n : `${n.slice(0, 13)}…`));
  return `similarity to ${a} by depth: ${b} vs ${c}`;
}

/** Title of the heatmap in the difference mode. */
export function differenceTitle(names, label) {
  return `${label}: ${names[1]} − ${names[2]}`;
}
