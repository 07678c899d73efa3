// The similarity heatmap's readable layer (issue 11), drawn by cnnlens over bqplot's
// GridHeatMap in an SVG of its own: values printed in small matrices, undefined and
// not-above-chance cells hatched, the highlighted row and column, the hover outline and
// tip, arrow keys. Its positions come from public information only: the figure model's
// `fig_margin` (and aspect-ratio limits), the heatmap's row and column counts, its row
// scale's `reverse` and the figure element's box. bqplot's own SVG is never read or written.
import { lut } from "./colormap.js";
import { setIfChanged } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

/** Up to this many rows and columns the values are printed. */
export const VALUES_UP_TO = 12;
export const HATCH_ID = "cnnlens-hatch";
export const CHANCE_HATCH_ID = "cnnlens-chance-hatch";

/** "layer4.1.downsample.0" -> "layer4.1.downsam…" (n chars at most); short names as they are. */
export function shorten(name, n = 18) {
  const s = String(name);
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** Tooltip text of one cell; cnnlens.widgets.heatmap.cell_text on the same inputs (js/tests/twins.test.js). */
export function cellTitle(row, column, metric, value, reason, names = ["A", "B"], note = null) {
  const head = `${names[0]}: ${row}\n${names[1]}: ${column}\n`;
  if (value != null && Number.isFinite(value)) return head + `${metric} = ${value.toFixed(3)}` + (note ? `\n${note}` : "");
  if (reason) return head + `${metric} undefined: ${reason}`;
  return head + `${metric}: pending`;
}

/**
 * Last selected cell of a bqplot GridHeatMap `selected` value, as [i, j] or null.
 * Accepts a click's plain [[i, j], ...], bqplot's deserialized rows of typed arrays,
 * or a flat typed array of pairs.
 */
export function lastPair(selected) {
  if (selected == null || selected.length === 0) return null;
  if (ArrayBuffer.isView(selected)) {
    const n = selected.length;
    return n >= 2 ? [Number(selected[n - 2]), Number(selected[n - 1])] : null;
  }
  const last = selected[selected.length - 1];
  if (last == null || last.length < 2) return null;
  const pair = [Number(last[0]), Number(last[1])];
  return pair.every(Number.isInteger) ? pair : null;
}

/** The pair after an arrow key (rows top to bottom, columns left to right), clamped; null otherwise. */
export function moveSelection(pair, key, la, lb) {
  const [i, j] = pair || [0, 0];
  const step = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1],
    Home: [-la, -lb], End: [la, lb] }[key];
  if (!step || !la || !lb) return null;
  if (!pair) return [0, 0];
  return [Math.max(0, Math.min(la - 1, i + step[0])), Math.max(0, Math.min(lb - 1, j + step[1]))];
}

/** Relative luminance of "rgb(r, g, b)" (null when the fill is no plain colour, e.g. a hatch). */
export function luminance(fill) {
  const m = /rgba?\(\s*([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)/.exec(fill || "");
  if (!m) return null;
  return rgbLuminance(Number(m[1]), Number(m[2]), Number(m[3]));
}

function rgbLuminance(r, g, b) {
  const l = [r, g, b].map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
}

/**
 * Luminance of the colour bqplot gives `value` on a ColorScale {min, max, scheme}: the
 * scheme's colours are d3's, sampled in lib/colormap.js (viridis; RdBu runs red -> blue).
 * Null for a value without colour (NaN).
 */
export function valueLuminance(value, scale) {
  if (value == null || !Number.isFinite(value)) return null;
  const lo = Number(scale?.min ?? 0), hi = Number(scale?.max ?? 1);
  let t = hi > lo ? (value - lo) / (hi - lo) : 0.5;
  t = Math.max(0, Math.min(1, t));
  const scheme = String(scale?.scheme || "viridis");
  if (scheme === "RdBu") t = 1 - t;  // colormap.js's rdbu runs blue -> red
  const table = lut(scheme.toLowerCase() === "rdbu" ? "rdbu" : scheme.toLowerCase());
  const k = 4 * Math.round(t * 255);
  return rgbLuminance(table[k], table[k + 1], table[k + 2]);
}

/**
 * The plot area inside a bqplot figure whose element is `width` x `height` CSS px, as bqplot
 * lays it out without auto_layout: the box clamped to the aspect-ratio limits, less fig_margin.
 */
export function plotArea(width, height, margin, minAspect = 0.01, maxAspect = 100) {
  let w = width, h = height;
  const ratio = h > 0 ? w / h : 1;
  if (ratio < minAspect) h = w / minAspect;
  else if (ratio > maxAspect) w = h * maxAspect;
  const m = { top: 0, bottom: 0, left: 0, right: 0, ...(margin || {}) };
  return { x: m.left, y: m.top, width: Math.max(0, w - m.left - m.right), height: Math.max(0, h - m.top - m.bottom) };
}

/** Box {x, y, width, height} of cell (i, j) in a plot area `width` x `height` (row 0 on top when rowsDown). */
export function cellBox(width, height, la, lb, i, j, rowsDown = true) {
  const cw = width / lb, ch = height / la;
  return { x: j * cw, y: (rowsDown ? i : la - 1 - i) * ch, width: cw, height: ch };
}

/** The cell [i, j] at (x, y) px in the plot area, or null outside it. */
export function cellAt(width, height, la, lb, x, y, rowsDown = true) {
  if (!la || !lb || x < 0 || y < 0 || x >= width || y >= height) return null;
  const r = Math.floor((y / height) * la), j = Math.floor((x / width) * lb);
  return [rowsDown ? r : la - 1 - r, j];
}

/**
 * The whole name of a cut tick label at (x, y) px of the plot area's frame, or null: left of
 * the plot a row's label, below it a column's (`s.cut` = the axes' tick_labels: {rows, cols}).
 */
export function cutLabel(s, width, height, x, y) {
  const la = s.rows.length, lb = s.cols.length;
  let name = null;
  if (x < 0 && y >= 0 && y < height) {
    const [i] = cellAt(width, height, la, lb, 0, y, s.rowsDown) || [];
    name = s.rows[i];
    return name != null && s.cut?.rows?.[name] != null ? `${s.names?.[0] ?? "A"}: ${name}` : null;
  }
  if (y >= height && x >= 0 && x < width + height) {
    // column labels run down-left at 45 degrees from under their column
    const [, j] = cellAt(width, height, la, lb, Math.min(width - 0.01, x + (y - height)), 0, s.rowsDown) || [];
    name = s.cols[j];
    return name != null && s.cut?.cols?.[name] != null ? `${s.names?.[1] ?? "B"}: ${name}` : null;
  }
  return null;
}

/** One shared pair of hatch patterns per document (url(#id) resolves page-wide for inline SVG). */
export function ensureHatches(doc = document) {
  if (doc.getElementById(HATCH_ID)) return;
  const svg = doc.createElementNS(SVG, "svg");
  svg.setAttribute("width", "0"); svg.setAttribute("height", "0");
  svg.setAttribute("style", "position:absolute;width:0;height:0");
  svg.setAttribute("aria-hidden", "true");
  // undefined: red lines on light grey, instead of the cell's colour; not above chance:
  // thin light and dark diagonals over the cell's colour, seen on any of them
  svg.innerHTML = `<defs><pattern id="${HATCH_ID}" patternUnits="userSpaceOnUse" width="6" `
    + `height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f6f6f6"/>`
    + `<line x1="0" y1="0" x2="0" y2="6" stroke="#b0413e" stroke-width="2"/></pattern>`
    + `<pattern id="${CHANCE_HATCH_ID}" patternUnits="userSpaceOnUse" width="7" `
    + `height="7" patternTransform="rotate(-45)"><line x1="0" y1="0" x2="0" y2="7" `
    + `stroke="rgba(255,255,255,0.7)" stroke-width="1.6"/><line x1="2" y1="0" x2="2" y2="7" `
    + `stroke="rgba(0,0,0,0.35)" stroke-width="1"/></pattern></defs>`;
  doc.body.appendChild(svg);
}

/** Parts of the overlay set by js/trust_link.js (cells not above chance), per heatmap model.
 * Kept under a registered symbol on the model object: compare_link.js and trust_link.js are
 * separate bundles, each with its own copy of this module, and both must find the same state. */
const SHARED = Symbol.for("cnnlens.heatmap-overlay");

/** The state one heatmap model's overlays share: {faint: {"i,j": reason}}, with change listeners. */
export function overlayState(hm) {
  if (!hm[SHARED]) {
    const listeners = new Set();
    Object.defineProperty(hm, SHARED, { enumerable: false, value: {
      faint: {},
      set(faint) {
        faint = faint || {};
        if (JSON.stringify(faint) === JSON.stringify(this.faint)) return;  // nothing to redraw
        this.faint = faint;
        for (const fn of [...listeners]) fn();
      },
      on(fn) { listeners.add(fn); return () => listeners.delete(fn); },
    } });
  }
  return hm[SHARED];
}

function svgEl(doc, tag, attrs) {
  const n = doc.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}

/**
 * The overlay over one heatmap figure element. Everything it draws comes from `read()`:
 * {rows, cols, values (rows of numbers), reasons, notes, faint, metric (as people name it),
 * names, highlight: {row, column}, scale: {min, max, scheme}, margin, minAspect, maxAspect,
 * rowsDown, cut: {rows, cols} (the axes' tick_labels: names they cut)}. `draw()` is idempotent; `dispose()` removes every element and listener.
 * `select(pair)` is called with the cell an arrow key moves to.
 */
export class HeatmapOverlay {
  constructor(fig, read, { selected, select }) {
    const doc = fig.ownerDocument;
    this.fig = fig;
    this.read = read;
    ensureHatches(doc);
    if (getComputedStyle(fig).position === "static") fig.style.position = "relative";
    this.svg = svgEl(doc, "svg", { class: "cnnlens-heatmap-overlay" });
    this.svg.setAttribute("style", "position:absolute;overflow:visible;pointer-events:none;z-index:1");
    this.cells = svgEl(doc, "g", { class: "cnnlens-cells" });
    this.values = svgEl(doc, "g", { class: "cnnlens-cell-values" });
    this.hl = ["row", "column"].map((axis) => svgEl(doc, "rect", {
      class: `cnnlens-hl-${axis}`, style: "fill:none;stroke:#ff9900;stroke-width:2.5px", visibility: "hidden" }));
    this.outline = svgEl(doc, "rect", { class: "cnnlens-hover-cell", visibility: "hidden",
      style: "fill:none;stroke:#fff;stroke-width:2px;outline:1px solid #000" });
    this.svg.append(this.cells, this.values, ...this.hl, this.outline);
    this.tip = doc.createElement("div");
    this.tip.className = "cnnlens-tip cnnlens-heatmap-tip";
    this.tip.hidden = true;
    fig.append(this.svg, this.tip);
    fig.tabIndex = 0;
    fig.setAttribute("role", "grid");
    fig.setAttribute("aria-label", "similarity heatmap: arrow keys move the selected cell");
    const onMove = (ev) => this.hover(ev.clientX, ev.clientY);
    const onLeave = () => this.hover(null);
    const onKey = (ev) => {
      const s = this.read();
      const next = moveSelection(selected(), ev.key, s.rows.length, s.cols.length);
      if (!next) return;
      ev.preventDefault();  // arrows must not scroll the notebook
      select(next);
    };
    fig.addEventListener("mousemove", onMove);
    fig.addEventListener("mouseleave", onLeave);
    fig.addEventListener("keydown", onKey);
    // bqplot lays the figure out again when its element resizes: so do we
    const ro = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => this.draw());
    ro?.observe(fig);
    this.undo = () => {
      ro?.disconnect();
      fig.removeEventListener("mousemove", onMove);
      fig.removeEventListener("mouseleave", onLeave);
      fig.removeEventListener("keydown", onKey);
      this.svg.remove();
      this.tip.remove();
    };
    this.draw();
  }

  /** Plot area in the figure element's CSS px. */
  area(s) {
    const b = this.fig.getBoundingClientRect();
    return plotArea(b.width, b.height, s.margin, s.minAspect, s.maxAspect);
  }

  /** Redraw everything from `read()`; returns the number of cells drawn. */
  draw() {
    const s = this.read();
    const la = s.rows.length, lb = s.cols.length;
    const a = this.area(s);
    Object.assign(this.svg.style, { left: `${a.x}px`, top: `${a.y}px`, width: `${a.width}px`, height: `${a.height}px` });
    setIfChanged(this.svg, "width", a.width);
    setIfChanged(this.svg, "height", a.height);
    const doc = this.fig.ownerDocument;
    const n = la * lb;
    const cells = this.cells.children;
    while (cells.length > n) cells[cells.length - 1].remove();
    while (cells.length < n) this.cells.append(svgEl(doc, "rect", { class: "cnnlens-cell", fill: "none" }));
    const show = la <= VALUES_UP_TO && lb <= VALUES_UP_TO;
    const texts = this.values.children;
    const nt = show ? n : 0;
    while (texts.length > nt) texts[texts.length - 1].remove();
    while (texts.length < nt) {
      this.values.append(svgEl(doc, "text", { class: "cnnlens-cell-value", "text-anchor": "middle", "dominant-baseline": "central" }));
    }
    const faint = s.faint || {}, reasons = s.reasons || {}, notes = s.notes || {};
    for (let i = 0; i < la; i++) {
      const row = s.values?.[i];
      for (let j = 0; j < lb; j++) {
        const k = i * lb + j, key = `${i},${j}`;
        const v = row == null || row[j] == null ? NaN : Number(row[j]);
        const box = cellBox(a.width, a.height, la, lb, i, j, s.rowsDown);
        const reason = reasons[key] || null;
        const state = Number.isFinite(v) ? null : reason ? "undefined" : "pending";
        const below = Object.prototype.hasOwnProperty.call(faint, key);
        const c = cells[k];
        setIfChanged(c, "data-row", i);
        setIfChanged(c, "data-col", j);
        setIfChanged(c, "data-state", state);
        setIfChanged(c, "data-chance", below ? "below" : null);
        setIfChanged(c, "aria-label", cellTitle(s.rows[i], s.cols[j], s.metric, v, reason, s.names, notes[key] || null));
        // pending cells keep bqplot's null_color (heatmap.PENDING_FILL)
        setIfChanged(c, "fill", state === "undefined" ? `url(#${HATCH_ID})` : below ? `url(#${CHANCE_HATCH_ID})` : "none");
        for (const [attr, val] of Object.entries(box)) setIfChanged(c, attr, val.toFixed(2));
        if (!show) continue;
        const t = texts[k];
        const lum = valueLuminance(v, s.scale);
        setIfChanged(t, "data-cell", key);
        setIfChanged(t, "x", (box.x + box.width / 2).toFixed(1));
        setIfChanged(t, "y", (box.y + box.height / 2).toFixed(1));
        // black or white, whichever reads on the cell's colour (a data colour, the same in every theme)
        setIfChanged(t, "fill", lum == null ? "none" : lum > 0.35 ? "#000" : "#fff");
        setIfChanged(t, "font-size", `${Math.max(8, Math.min(13, box.height / 3)).toFixed(0)}px`);
        const text = Number.isFinite(v) ? v.toFixed(2) : "";
        if (t.textContent !== text) t.textContent = text;
      }
    }
    const hl = s.highlight || {};
    [["row", hl.row], ["column", hl.column]].forEach(([axis, index], q) => {
      const r = this.hl[q];
      const ok = index != null && index >= 0 && (axis === "row" ? index < la : index < lb);
      setIfChanged(r, "visibility", ok ? "visible" : "hidden");
      if (!ok) return;
      const box = axis === "row"
        ? { ...cellBox(a.width, a.height, la, lb, index, 0, s.rowsDown), x: 0, width: a.width }
        : { ...cellBox(a.width, a.height, la, lb, 0, index, s.rowsDown), y: 0, height: a.height };
      for (const [attr, val] of Object.entries(box)) setIfChanged(r, attr, val.toFixed(2));
    });
    if (this.hovered) this.hover(...this.hovered);
    return n;
  }

  /** The tip and outline for the pointer at (clientX, clientY); hidden for null. */
  hover(clientX, clientY) {
    const s = this.read();
    const la = s.rows.length, lb = s.cols.length;
    const b = this.svg.getBoundingClientRect();
    const pair = clientX == null ? null : cellAt(b.width, b.height, la, lb, clientX - b.left, clientY - b.top, s.rowsDown);
    this.hovered = pair ? [clientX, clientY] : null;
    this.outline.setAttribute("visibility", "hidden");
    delete this.fig.dataset.hoverCell;
    // a tick label the axis cut (its `tick_labels`): the whole name
    const name = pair || clientX == null ? null : cutLabel(s, b.width, b.height, clientX - b.left, clientY - b.top);
    if (!pair && !name) { this.tip.hidden = true; return; }
    this.tip.textContent = name || this.cells.children[pair[0] * lb + pair[1]]?.getAttribute("aria-label") || "";
    this.tip.hidden = false;
    this.place(clientX, clientY);
    if (!pair) return;
    const [i, j] = pair;
    for (const [attr, val] of Object.entries(cellBox(b.width, b.height, la, lb, i, j, s.rowsDown))) {
      this.outline.setAttribute(attr, val.toFixed(2));
    }
    this.outline.setAttribute("visibility", "visible");
    this.fig.dataset.hoverCell = `${i},${j}`;
  }

  /** The tip next to the pointer, inside the figure (flipped near its edges). */
  place(clientX, clientY) {
    const f = this.fig.getBoundingClientRect();
    const x = clientX - f.left, y = clientY - f.top;
    const w = this.tip.offsetWidth || 0, h = this.tip.offsetHeight || 0;
    this.tip.style.left = `${x + 14 + w > f.width ? Math.max(0, x - 14 - w) : x + 14}px`;
    this.tip.style.top = `${y + 14 + h > f.height ? Math.max(0, y - 14 - h) : y + 14}px`;
  }

  dispose() { this.undo(); }
}

/**
 * Calls `onFigure(figureElement)` once the heatmap figure of `el`'s Compare is in the page,
 * and again if it is replaced. Our element is attached after render and the figure may come
 * later: a ResizeObserver on our element (it gets a size once attached) and on the Compare
 * (it grows when the figure arrives) say when to look. Every observer goes into `L`.
 * @param {HTMLElement} el @param {import("./dom.js").Listeners} L
 */
export function watchHeatmap(el, L, onFigure, onRoot = () => {}) {
  let fig = null, root = null;
  let ro = null;
  const look = () => {
    const r = el.closest(".cnnlens-compare");
    if (r && r !== root) { root = r; ro?.observe(r); }
    if (root) onRoot(root);
    const f = root?.querySelector(".cnnlens-heatmap") || null;
    if (f && f !== fig) { fig = f; onFigure(f); }
  };
  if (typeof ResizeObserver !== "undefined") {
    ro = new ResizeObserver(look);
    ro.observe(el);
    L.add(() => ro.disconnect());
  }
  look();
}
