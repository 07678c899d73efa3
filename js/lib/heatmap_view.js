// What makes the bqplot similarity heatmap readable (issue 11): values printed in small
// matrices, long layer names cut (whole in the hover tip), a fast hover tip, arrow keys.
// bqplot draws the cells; these helpers only add to its SVG, idempotently (they run from a
// MutationObserver, so a second pass must write nothing).

const SVG = "http://www.w3.org/2000/svg";

/** Up to this many rows and columns the values are printed (mirror of heatmap.VALUES_UP_TO). */
export const VALUES_UP_TO = 12;
/** Tick labels longer than this are cut (mirror of heatmap.LABEL_CHARS). */
export const LABEL_CHARS = 18;

/** "layer4.1.downsample.0" -> "layer4.1.downsam…" (n chars at most); short names as they are. */
export function shorten(name, n = LABEL_CHARS) {
  const s = String(name);
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
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
  const l = [m[1], m[2], m[3]].map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
}

/** Luminance of what shows behind `el`: the first ancestor with an opaque background (white if none). */
export function backgroundLuminance(el) {
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
    const bg = getComputedStyle(n).backgroundColor || "";
    const m = /rgba?\(([^)]*)\)/.exec(bg);
    const alpha = m ? Number((m[1].split(",")[3] ?? "1").trim()) : 0;
    if (alpha > 0.5) return luminance(bg);
  }
  return 1;
}

function translateY(el) {
  const m = /translate\(\s*[-\d.e]+[ ,]+([-\d.e]+)/.exec(el?.getAttribute?.("transform") || "");
  return m ? Number(m[1]) : 0;
}

/**
 * Print each cell's value (2 decimals) at its centre when the matrix is at most
 * VALUES_UP_TO on a side; remove them otherwise. The text is black or white, whichever
 * reads on the cell's colour (a data colour, the same in every theme).
 * @param {Element[]} cells rect.heatmapcell with bqplot's datum in __data__
 * @returns {number} writes made
 */
export function paintValues(cells, la, lb, fillOf = (c) => getComputedStyle(c).fill, bgLum = 1) {
  const g = cells[0]?.parentNode?.parentNode;
  if (!g) return 0;
  // plain child walks, no selectors: cheap, and the same in every DOM
  let layer = Array.from(g.children).find((c) => c.getAttribute("class") === "cnnlens-cell-values");
  const show = la <= VALUES_UP_TO && lb <= VALUES_UP_TO;
  if (!show) { if (layer) { layer.remove(); return 1; } return 0; }
  let writes = 0;
  if (!layer) {
    layer = g.ownerDocument.createElementNS(SVG, "g");
    layer.setAttribute("class", "cnnlens-cell-values");
    layer.setAttribute("style", "pointer-events:none");
    g.appendChild(layer);
    writes++;
  }
  const seen = new Set();
  const byKey = new Map(Array.from(layer.children, (t) => [t.getAttribute("data-cell"), t]));
  for (const cell of cells) {
    const d = cell.__data__;
    if (!d) continue;
    const key = `${d.rowNum},${d.columnNum}`;
    seen.add(key);
    let t = byKey.get(key);
    if (!t) {
      t = g.ownerDocument.createElementNS(SVG, "text");
      t.setAttribute("data-cell", key);
      t.setAttribute("text-anchor", "middle");
      t.setAttribute("dominant-baseline", "central");
      t.setAttribute("class", "cnnlens-cell-value");
      layer.appendChild(t);
      writes++;
    }
    const v = d.color == null ? NaN : Number(d.color);
    const text = Number.isFinite(v) ? v.toFixed(2) : "";
    const x = (Number(cell.getAttribute("x")) || 0) + (Number(cell.getAttribute("width")) || 0) / 2;
    const y = translateY(cell.parentNode) + (Number(cell.getAttribute("y")) || 0)
      + (Number(cell.getAttribute("height")) || 0) / 2;
    // a dimmed cell (trust_link.js sets its opacity) shows the background through it
    const alpha = Number(cell.style?.opacity || 1);
    const own = luminance(fillOf(cell));
    const lum = own == null ? null : alpha * own + (1 - alpha) * bgLum;
    const fill = lum == null ? "none" : lum > 0.35 ? "#000" : "#fff";
    const size = Math.max(8, Math.min(13, (Number(cell.getAttribute("height")) || 20) / 3));
    for (const [k, val] of [["x", x.toFixed(1)], ["y", y.toFixed(1)], ["fill", fill],
      ["font-size", `${size.toFixed(0)}px`]]) {
      if (t.getAttribute(k) !== val) { t.setAttribute(k, val); writes++; }
    }
    if (t.textContent !== text) { t.textContent = text; writes++; }
  }
  for (const t of Array.from(layer.children)) {
    if (!seen.has(t.getAttribute("data-cell"))) { t.remove(); writes++; }
  }
  return writes;
}

/**
 * Cut long tick labels of the row and column axes to LABEL_CHARS (the full name stays in
 * data-full and a <title>). bqplot redraws ticks on resize: idempotent.
 * @param {Element} fig the heatmap figure's element
 * @param {Set<string>} names the layer names (only those ticks are touched, not numbers)
 */
export function shortenTicks(fig, names) {
  let writes = 0;
  for (const t of fig.querySelectorAll(".axis .tick text")) {
    const full = t.getAttribute("data-full") ?? t.textContent;
    if (!names.has(full)) continue;
    const short = shorten(full);
    if (t.getAttribute("data-full") !== full) { t.setAttribute("data-full", full); writes++; }
    // textContent would drop the <title> child: set the text node alone
    const node = Array.from(t.childNodes).find((n) => n.nodeType === 3);
    if (!node) { t.prepend(t.ownerDocument.createTextNode(short)); writes++; } else if (node.data !== short) { node.data = short; writes++; }
    if (short !== full && !t.querySelector("title")) {
      const title = t.ownerDocument.createElementNS(SVG, "title");
      title.textContent = full;
      t.appendChild(title);
      writes++;
    }
  }
  return writes;
}

/**
 * The heatmap figure's own controls: a fast hover tip with the cell outlined, and arrow
 * keys that move the selected cell. `wire(fig)` attaches them to the figure's element once
 * it exists (idempotent); `unwire()` removes every listener and element it added.
 * @param {{rows: () => number, cols: () => number, selected: () => (number[]|null),
 *   select: (pair: number[]) => void}} sel the selection, read and written through the model
 */
export function heatmapControls(sel) {
  const doc = document;
  const tip = doc.createElement("div");
  tip.className = "cnnlens-tip cnnlens-heatmap-tip";
  tip.hidden = true;
  const outline = doc.createElementNS(SVG, "rect");
  outline.setAttribute("class", "cnnlens-hover-cell");
  outline.setAttribute("style", "fill:none;stroke:#fff;stroke-width:2px;pointer-events:none;outline:1px solid #000");
  outline.setAttribute("visibility", "hidden");
  let fig = null;
  const onMove = (ev) => {
    const cell = ev.target.closest?.("rect.heatmapcell") || null;
    const g = cell?.parentNode?.parentNode;
    if (g && outline.parentNode !== g) g.appendChild(outline);
    hoverTip(fig, tip, outline, cell, ev);
  };
  const onLeave = () => { tip.hidden = true; outline.setAttribute("visibility", "hidden"); };
  const onKey = (ev) => {
    const next = moveSelection(sel.selected(), ev.key, sel.rows(), sel.cols());
    if (!next) return;
    ev.preventDefault();  // arrows must not scroll the notebook
    sel.select(next);
  };
  return {
    wired: () => fig !== null,
    wire(el) {
      if (!el || el === fig) return;
      fig = el;
      if (getComputedStyle(el).position === "static") el.style.position = "relative";
      el.append(tip);
      el.tabIndex = 0;
      el.setAttribute("role", "grid");
      el.setAttribute("aria-label", "similarity heatmap: arrow keys move the selected cell");
      el.addEventListener("mousemove", onMove);
      el.addEventListener("mouseleave", onLeave);
      el.addEventListener("keydown", onKey);
    },
    unwire() {
      if (!fig) return;
      fig.removeEventListener("mousemove", onMove);
      fig.removeEventListener("mouseleave", onLeave);
      fig.removeEventListener("keydown", onKey);
      tip.remove();
      outline.remove();
    },
  };
}

/**
 * Show the tip for `cell` next to the pointer, inside `box` (the figure element), and
 * outline the cell. `tip` is an HTML element absolutely positioned in `box`.
 */
export function hoverTip(box, tip, outline, cell, ev) {
  if (!cell) { tip.hidden = true; outline.setAttribute("visibility", "hidden"); return; }
  tip.textContent = cell.getAttribute("aria-label") || "";
  tip.hidden = false;
  const b = box.getBoundingClientRect();
  const x = ev.clientX - b.left, y = ev.clientY - b.top;
  const w = tip.offsetWidth || 0, h = tip.offsetHeight || 0;
  tip.style.left = `${x + 14 + w > b.width ? Math.max(0, x - 14 - w) : x + 14}px`;
  tip.style.top = `${y + 14 + h > b.height ? Math.max(0, y - 14 - h) : y + 14}px`;
  const ty = translateY(cell.parentNode);
  for (const k of ["x", "width", "height"]) outline.setAttribute(k, cell.getAttribute(k) || "0");
  outline.setAttribute("y", String(ty + (Number(cell.getAttribute("y")) || 0)));
  outline.setAttribute("visibility", "visible");
  box.dataset.hoverCell = `${cell.__data__?.rowNum},${cell.__data__?.columnNum}`;
}
