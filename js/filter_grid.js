// Twin of cnnlens/widgets/filter_grid.py: learned filters; clicking one sets `neuron` on
// the referenced ActivationGrid model, so every view selects the same channel.
// With no kernel (an exported page) it follows the grid's layer from its `frames` and
// draws the weight histogram itself (the notebook's bqplot one is hidden there).

import { decodeWeights, floats } from "./lib/decode.js";
import { filterSource } from "./lib/frames.js";
import { filterBar, filterLayout, legend, paintFilterBox, paintFilters } from "./lib/filters.js";
import { barTicks, colorBarBox, drawColorBar } from "./lib/colorbar.js";
import { hitTest, sizeCanvas, tileRect } from "./lib/tiles.js";
import { Listeners, context2d, debounce, fmt, h, placeTip, refModel, showError } from "./lib/dom.js";
import { ensureStyle } from "./lib/style.js";

const SVG = "http://www.w3.org/2000/svg";

/**
 * Bars of precomputed weight counts (`{counts, centres}` float32 bytes) into `box` as SVG,
 * or hide it when there are none. data-bins / data-total say what was drawn.
 */
export function drawHistogram(box, histogram, name) {
  const counts = histogram ? floats(histogram.counts) : new Float32Array(0);
  const centres = histogram ? floats(histogram.centres) : new Float32Array(0);
  box.hidden = counts.length === 0;
  box.dataset.bins = String(counts.length);
  box.dataset.total = String(counts.reduce((a, b) => a + b, 0));
  if (box.hidden) { box.replaceChildren(); return; }
  const W = 300, H = 90, top = Math.max(...counts, 1), bw = W / counts.length;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("height", String(H));
  svg.setAttribute("preserveAspectRatio", "none");
  counts.forEach((c, i) => {
    const r = document.createElementNS(SVG, "rect");
    const hgt = (c / top) * H;
    Object.entries({ x: i * bw + 0.5, y: H - hgt, width: Math.max(bw - 1, 0.5), height: hgt, fill: "#31688e" })
      .forEach(([k, v]) => r.setAttribute(k, String(v)));
    const t = document.createElementNS(SVG, "title");
    t.textContent = `${fmt(centres[i])}: ${c}`;
    r.append(t);
    svg.append(r);
  });
  const lo = centres[0] - (centres[1] - centres[0] || 0) / 2;
  const hi = centres[centres.length - 1] + (centres[1] - centres[0] || 0) / 2;
  const base = document.createElementNS(SVG, "line");  // the x axis
  Object.entries({ x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, class: "cnnlens-dist-axis" })
    .forEach(([k, v]) => base.setAttribute(k, String(v)));
  svg.append(base);
  // x axis: the range's ends and zero, under the bars; y: the count of the highest bar
  const axis = h("div", { className: "cnnlens-hist-axis" }, barTicks(lo, hi).map((t) => h("span", {
    text: t.text, style: { left: `${(100 * t.at).toFixed(1)}%` },
    className: t.at === 0 ? "start" : t.at === 1 ? "end" : "" })));
  box.replaceChildren(
    h("div", { className: "cnnlens-dim", text: `weights of ${name}: count per bin (highest ${top})` }),
    svg, axis, h("div", { className: "cnnlens-dim cnnlens-hist-xlabel", text: "weight value" }));
}

async function render({ model, el }) {
  ensureStyle();
  const L = new Listeners();
  const grid = await refModel(model, "grid");
  const title = h("div", { className: "cnnlens-toolbar" });
  const note = h("div", { className: "cnnlens-note" });
  const bar = colorBarBox();
  const error = h("div", { className: "cnnlens-error", attrs: { role: "alert" } });
  const canvas = h("canvas", { className: "cnnlens-filter-canvas" });
  const selMark = h("div", { className: "cnnlens-mark sel", hidden: true });
  const tip = h("div", { className: "cnnlens-tip", hidden: true });
  const wrap = h("div", { className: "cnnlens-wrap" }, [canvas, selMark, tip]);
  const selCanvas = h("canvas", { className: "cnnlens-filter-selected" });
  const selBox = h("div", { hidden: true }, [h("div", { className: "cnnlens-dim", text: "selected filter" }), selCanvas]);
  const hist = h("div", { className: "cnnlens-filter-hist", hidden: true });
  const root = h("div", { className: "cnnlens-view cnnlens-filters", attrs: { "data-rendered": "0" } },
    [title, note, bar, error, wrap, selBox, hist]);
  el.append(root);
  /** @type {{w:any, lay:any}|null} */
  let shown = null;

  function placeSelection() {
    const n = grid ? grid.get("neuron") : -1;
    root.dataset.neuron = String(n);
    if (!shown || n < 0 || n >= shown.lay.n) { selMark.hidden = true; return; }
    const r = tileRect(shown.lay, n);
    const z = shown.lay.zoom;
    Object.assign(selMark.style, { left: `${r.x * z}px`, top: `${r.y * z}px`, width: `${r.w * z}px`, height: `${r.h * z}px` });
    selMark.hidden = false;
  }

  function drawSelected(src) {
    // `selected` (one filter of a norms-only layer) is computed by the kernel for its layer
    const sel = src.source === "live" ? model.get("selected") : null;
    let w = null;
    try { w = sel && sel.shape ? decodeWeights(sel) : null; } catch (e) { showError(error, String(e)); }
    paintFilterBox(selBox, selCanvas, w, 300, 160);
  }

  function draw() {
    const src = filterSource(model, grid);
    showError(error, src.error);
    const p = src.payload;
    let w = null;
    try { w = p && p.shape ? decodeWeights(p) : null; } catch (e) { showError(error, String(e)); }
    Object.assign(root.dataset, { layer: src.layer, weights: src.weights_layer, source: src.source });
    title.textContent = w ? `filters of ${src.weights_layer} ${JSON.stringify(w.sourceShape)}` : "filters";
    note.textContent = [src.note, legend(w)].filter(Boolean).join(" · ");
    drawColorBar(bar, filterBar(w));
    if (w) {
      const lay = filterLayout(w, root.clientWidth || el.clientWidth || 600);
      sizeCanvas(canvas, lay);
      paintFilters(context2d(canvas), w, lay);
      shown = { w, lay };
      root.dataset.mode = w.mode;
      root.dataset.zoom = String(lay.zoom);  // CSS px per weight
    } else {
      sizeCanvas(canvas, { width: 0, height: 0, zoom: 1 });
      shown = null;
      root.dataset.mode = "none";
    }
    drawHistogram(hist, src.histogram, src.weights_layer);
    root.dataset.rendered = "1";
    placeSelection();
    drawSelected(src);
  }

  const hit = (ev) => {
    if (!shown) return null;
    const box = canvas.getBoundingClientRect();
    return hitTest(shown.lay, ev.clientX - box.left, ev.clientY - box.top);
  };
  const hover = debounce((ev) => {
    const at = hit(ev);
    if (!at) { tip.hidden = true; return; }
    const { w } = shown;
    tip.textContent = w.mode === "norms" ? `filter ${at.slot} · norm ${fmt(w.norms[at.slot])}`
      : `filter ${at.slot} · range [${fmt(w.offset[at.slot])}, ${fmt(w.offset[at.slot] + 255 * w.scale[at.slot])}]`;
    const box = canvas.getBoundingClientRect();
    placeTip(tip, ev.clientX - box.left, ev.clientY - box.top, box.width, box.height);
  }, 30);
  L.dom(canvas, "mousemove", hover);
  L.dom(canvas, "mouseleave", () => { hover.cancel(); tip.hidden = true; });
  L.dom(canvas, "click", (ev) => {
    const at = hit(ev);
    if (!at || !grid) return;
    grid.set("neuron", at.slot);  // filter o makes channel o: the same neuron everywhere
    grid.save_changes();
  });
  for (const name of ["payload", "layer", "weights_layer", "note", "error"]) L.model(model, `change:${name}`, draw);
  for (const name of ["frames", "frame_weights"]) L.model(model, `change:${name}`, draw);
  L.model(model, "change:selected", () => drawSelected(filterSource(model, grid)));
  if (grid) {
    L.model(grid, "change:neuron", placeSelection);
    L.model(grid, "change:layer", draw);
  }
  L.width(root, draw);
  L.add(() => hover.cancel());
  draw();
  return () => { L.dispose(); root.remove(); };
}

export default { render };
