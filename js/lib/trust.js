// Pure helpers of js/trust_link.js (unit-tested in tests/trust.test.js): which heatmap cell a
// gap-chart point stands for and back, the difference mode's colour range, chance dimming.

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

/** Title of the gap chart (the y axis names the metric); mirror of gap_chart.gap_title. */
export function gapTitle(names) {
  const [a, b, c] = names.map((n) => (n.length <= 14 ? n : `${n.slice(0, 13)}…`));
  return `similarity to ${a} by depth: ${b} vs ${c}`;
}

/** Title of the heatmap in the difference mode. */
export function differenceTitle(names, label) {
  return `${label}: ${names[1]} − ${names[2]}`;
}

const SVG = "http://www.w3.org/2000/svg";
export const CHANCE_HATCH_ID = "cnnlens-chance-hatch";

/** One shared pattern per document: thin light and dark diagonals, seen on any cell colour. */
export function ensureChanceHatch(doc = document) {
  if (doc.getElementById(CHANCE_HATCH_ID)) return;
  const svg = doc.createElementNS(SVG, "svg");
  svg.setAttribute("width", "0"); svg.setAttribute("height", "0");
  svg.setAttribute("style", "position:absolute;width:0;height:0");
  svg.innerHTML = `<defs><pattern id="${CHANCE_HATCH_ID}" patternUnits="userSpaceOnUse" width="7" `
    + `height="7" patternTransform="rotate(-45)"><line x1="0" y1="0" x2="0" y2="7" `
    + `stroke="rgba(255,255,255,0.7)" stroke-width="1.6"/><line x1="2" y1="0" x2="2" y2="7" `
    + `stroke="rgba(0,0,0,0.35)" stroke-width="1"/></pattern></defs>`;
  doc.body.appendChild(svg);
}

function translateY(el) {
  const m = /translate\(\s*[-\d.e]+[ ,]+([-\d.e]+)/.exec(el?.getAttribute?.("transform") || "");
  return m ? Number(m[1]) : 0;
}

/**
 * Hatch the cells not above chance (`faint`: {"i,j": reason}) with an overlay under the
 * printed values (the cell keeps its colour, so the values keep their contrast) and mark
 * them data-chance="below"; undo it on the others. Idempotent (runs from a
 * MutationObserver): returns writes made.
 */
export function dimCells(cells, faint) {
  let writes = 0;
  const g = cells[0]?.parentNode?.parentNode;
  const child = (cls) => Array.from(g?.children || []).find((c) => c.classList?.contains(cls)) || null;
  let layer = child("cnnlens-chance-marks");
  const want = new Map();
  for (const cell of cells) {
    const d = cell.__data__;
    if (!d) continue;
    const key = `${d.rowNum},${d.columnNum}`;
    const below = Object.prototype.hasOwnProperty.call(faint || {}, key);
    if (below && cell.getAttribute("data-chance") !== "below") { cell.setAttribute("data-chance", "below"); writes++; }
    if (!below && cell.hasAttribute("data-chance")) { cell.removeAttribute("data-chance"); writes++; }
    if (below) want.set(key, cell);
  }
  if (!g || (!layer && want.size === 0)) return writes;
  if (!layer) {
    layer = g.ownerDocument.createElementNS(SVG, "g");
    layer.setAttribute("class", "cnnlens-chance-marks");
    layer.setAttribute("style", "pointer-events:none");
    // under the printed values (heatmap_view.paintValues' layer), over the cells
    g.insertBefore(layer, child("cnnlens-cell-values"));
    writes++;
  }
  for (const r of Array.from(layer.children)) {
    if (!want.has(r.getAttribute("data-cell"))) { r.remove(); writes++; }
  }
  for (const [key, cell] of want) {
    let r = layer.querySelector(`rect[data-cell="${key}"]`);
    if (!r) {
      r = g.ownerDocument.createElementNS(SVG, "rect");
      r.setAttribute("data-cell", key);
      r.setAttribute("fill", `url(#${CHANCE_HATCH_ID})`);
      layer.appendChild(r);
      writes++;
    }
    const box = { x: cell.getAttribute("x") || "0", width: cell.getAttribute("width") || "0",
      height: cell.getAttribute("height") || "0",
      y: String(translateY(cell.parentNode) + (Number(cell.getAttribute("y")) || 0)) };
    for (const [k, v] of Object.entries(box)) if (r.getAttribute(k) !== v) { r.setAttribute(k, v); writes++; }
  }
  return writes;
}
