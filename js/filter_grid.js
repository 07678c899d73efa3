// Twin of cnnlens/widgets/filter_grid.py: learned filters; clicking one sets `neuron` on
// the referenced ActivationGrid model, so every view selects the same channel.

import { decodeWeights } from "./lib/decode.js";
import { filterLayout, legend, paintFilters } from "./lib/filters.js";
import { hitTest, sizeCanvas, tileRect } from "./lib/tiles.js";
import { Listeners, context2d, debounce, fmt, h, placeTip, refModel, showError } from "./lib/dom.js";
import { ensureStyle } from "./lib/style.js";

async function render({ model, el }) {
  ensureStyle();
  const L = new Listeners();
  const grid = await refModel(model, "grid");
  const title = h("div", { className: "cnnlens-toolbar" });
  const note = h("div", { className: "cnnlens-note" });
  const error = h("div", { className: "cnnlens-error", attrs: { role: "alert" } });
  const canvas = h("canvas", { className: "cnnlens-filter-canvas" });
  const selMark = h("div", { className: "cnnlens-mark sel", hidden: true });
  const tip = h("div", { className: "cnnlens-tip", hidden: true });
  const wrap = h("div", { className: "cnnlens-wrap" }, [canvas, selMark, tip]);
  const selCanvas = h("canvas", { className: "cnnlens-filter-selected" });
  const selBox = h("div", { hidden: true }, [h("div", { className: "cnnlens-dim", text: "selected filter" }), selCanvas]);
  const root = h("div", { className: "cnnlens-view cnnlens-filters", attrs: { "data-rendered": "0" } },
    [title, note, error, wrap, selBox]);
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

  function drawSelected() {
    const sel = model.get("selected");
    let w = null;
    try { w = sel && sel.shape ? decodeWeights(sel) : null; } catch (e) { showError(error, String(e)); }
    selBox.hidden = !w;
    if (w) {
      const lay = filterLayout(w, 300, 160);
      sizeCanvas(selCanvas, lay);
      paintFilters(context2d(selCanvas), w, lay);
    }
  }

  function draw() {
    showError(error, model.get("error"));
    const p = model.get("payload");
    let w = null;
    try { w = p && p.shape ? decodeWeights(p) : null; } catch (e) { showError(error, String(e)); }
    root.dataset.layer = model.get("layer");
    root.dataset.weights = model.get("weights_layer");
    title.textContent = w ? `filters of ${model.get("weights_layer")} ${JSON.stringify(w.sourceShape)}` : "filters";
    note.textContent = [model.get("note"), legend(w)].filter(Boolean).join(" · ");
    if (w) {
      const lay = filterLayout(w, root.clientWidth || el.clientWidth || 600);
      sizeCanvas(canvas, lay);
      paintFilters(context2d(canvas), w, lay);
      shown = { w, lay };
      root.dataset.mode = w.mode;
    } else {
      sizeCanvas(canvas, { width: 0, height: 0, zoom: 1 });
      shown = null;
      root.dataset.mode = "none";
    }
    root.dataset.rendered = "1";
    placeSelection();
    drawSelected();
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
  L.model(model, "change:selected", drawSelected);
  if (grid) L.model(grid, "change:neuron", placeSelection);
  if (typeof ResizeObserver !== "undefined") {  // filters reflow to the width they are given
    let width = root.clientWidth;
    const ro = new ResizeObserver(() => {
      const w = root.clientWidth;
      if (w && Math.abs(w - width) > 8) { width = w; draw(); }
    });
    ro.observe(root);
    L.add(() => ro.disconnect());
  }
  L.add(() => hover.cancel());
  draw();
  return () => { L.dispose(); root.remove(); };
}

export default { render };
