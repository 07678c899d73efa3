// Twin of cnnlens/widgets/activation_grid.py: every channel of one layer as canvas tiles.
// This model is also the pane's selection (layer, neuron, image_index); other views
// listen to it directly, so links work without a kernel.

import { decodeMaps, rangeOf, tileStats, valueAt } from "./lib/decode.js";
import { lut, remapTables } from "./lib/colormap.js";
import { colorBarBox, drawColorBar, isDiverging, isSigned, resolveColormap } from "./lib/colorbar.js";
import { hitTest, layout, paintTiles, sizeCanvas, slotOf, sortOrder, tileRect, zoomFor } from "./lib/tiles.js";
import { Listeners, context2d, debounce, fmt, h, hasKernel, placeTip, select, showError } from "./lib/dom.js";
import { ensureStyle } from "./lib/style.js";
import { NOT_EXPORTED, currentPayload, frameCoverage } from "./lib/frames.js";

export { currentPayload };

// "auto": diverging and centred on zero for a signed layer, viridis otherwise
const COLORMAPS = [["auto", "auto colours"], "viridis", "magma", "gray", "rdbu"];
const HOVER_MS = 30;
const BUSY_MS = 500;  // a wait longer than this shows a progress bar (issue 11: 3 s of nothing)

/**
 * Layout for a decoded payload in a box cssWidth wide: tiles reflow to the width, and a
 * tile is never drawn wider than the box (the zoom drops to fit; 1 is the floor).
 */
export function gridLayout(dec, cssWidth, compact = false) {
  if (dec.kind === "vector") {
    const zoom = Math.max(4, Math.min(24, Math.floor(cssWidth / Math.ceil(Math.sqrt(dec.n)))));
    return layout(dec.n, 1, 1, { gap: 0, zoom, cssWidth });
  }
  // CSS px a tile: many channels, smaller tiles; a compact Compare pane shares the screen
  const target = compact ? Math.min(36, dec.n > 256 ? 24 : 36) : dec.n > 256 ? 32 : dec.n > 32 ? 48 : 64;
  const zoom = Math.min(zoomFor(Math.max(dec.h, dec.w), target), zoomFor(dec.w, cssWidth));
  return layout(dec.n, dec.h, dec.w, { gap: 1, zoom, cssWidth });
}

/**
 * Whether the selected neuron stays on a newly painted layer: both maps or both vectors,
 * and it exists there. Mirror of cnnlens.views.tree.keeps_neuron (the kernel's rule;
 * this one serves pages without a kernel).
 * @param {{kind:string}|null} prev the decoded payload painted before (null: first paint)
 * @param {{kind:string, total:number}} dec the new one
 */
export function keepsNeuron(prev, dec, neuron) {
  if (neuron < 0 || !prev) return true;
  return neuron < dec.total && prev.kind === dec.kind;
}

/**
 * How a payload is coloured: the map, whether it is centred on zero, and its colour bar.
 * @param {any} dec decoded maps
 * @param {"channel"|"layer"} normalize
 * @param {string} colormap the model's choice ("auto" resolves on the layer's sign)
 */
export function gridScale(dec, normalize, colormap) {
  const probe = remapTables(dec, "layer");
  const cmap = resolveColormap(colormap, isSigned(probe.gmin, probe.gmax));
  const centre = isDiverging(cmap);
  const shared = normalize === "layer" || dec.kind === "vector";  // vectors share one scale
  const { remap, gmin, gmax } = remapTables(dec, shared ? "layer" : "channel", centre);
  const bar = shared
    ? { colormap: cmap, lo: gmin, hi: gmax, label: `activation of ${dec.layer}, one scale for the layer` }
    : { colormap: cmap, relative: true,
      label: "activation, each tile on its own scale: not comparable" };
  return { cmap, centre, remap, bar };
}

/** The sentence under the toolbar: what is shown, and whether it is downsampled or paged. */
export function describePayload(dec, normalize) {
  if (dec.kind === "vector") {
    const pages = dec.pages > 1 ? ` · page ${dec.page + 1}/${dec.pages}` : "";
    return `${dec.total} units (one shared scale)${pages}`;
  }
  const [, H, W] = dec.sourceShape;
  let s = `${dec.total} channels of ${H}×${W}`;
  if (dec.downsample > 1) s += ` · downsampled ${dec.downsample}× to ${dec.h}×${dec.w} for display`;
  if (dec.pages > 1) {
    s += ` · page ${dec.page + 1}/${dec.pages} (${dec.n} of ${dec.total} channels)`;
  }
  return `${s} · colour per ${normalize === "layer" ? "layer" : "channel"}`;
}

async function render({ model, el }) {
  ensureStyle();
  const L = new Listeners();
  const save = (patch) => { for (const [k, v] of Object.entries(patch)) model.set(k, v); model.save_changes(); };

  const layerSel = select(model.get("layers") || [], model.get("layer"), "cnnlens-layer-select");
  const normSel = select([["channel", "per channel"], ["layer", "per layer"]], model.get("normalize"));
  const sortSel = select([["index", "by index"], ["mean", "by mean"], ["max", "by max"]], model.get("sort"));
  const cmapSel = select(COLORMAPS, model.get("colormap"));
  // what each control does, on hover (issue 11)
  sortSel.classList.add("cnnlens-sort");  // a compact Compare pane leaves these to the full Lens
  cmapSel.classList.add("cnnlens-cmap");
  layerSel.title = "the layer whose channels are shown";
  normSel.title = "colour scale: each channel to its own range, or one range for the whole layer";
  sortSel.title = "tile order: channel index, or strongest mean / max activation first";
  cmapSel.title = "colour map; auto: blue-white-red centred on zero when the layer has negative values";
  const prev = h("button", { text: "‹", title: "previous page" });
  const next = h("button", { text: "›", title: "next page" });
  const pageLabel = h("span", { className: "cnnlens-dim" });
  // pages beyond the first are computed by the kernel (exported frames hold the first page only)
  const pager = h("span", { className: "cnnlens-pager cnnlens-needs-kernel" }, [prev, pageLabel, next]);
  const live = hasKernel(model);
  const badge = live ? null : h("span", { className: "cnnlens-static-badge", text: "static page",
    title: "An exported page without a kernel: the views switch among the precomputed layers " +
      "and images; uploads, recomputation and Run need the live notebook." });
  const note = h("div", { className: "cnnlens-note" });
  const bar = colorBarBox();
  const busy = h("progress", { className: "cnnlens-busy", hidden: true, attrs: { "aria-label": "computing" } });
  let busyTimer = null;
  const setBusy = (on) => {
    if (!on) {
      if (busyTimer !== null) clearTimeout(busyTimer);
      busyTimer = null;
      busy.hidden = true;
      root.dataset.busy = "0";
    } else if (busyTimer === null && busy.hidden) {
      busyTimer = setTimeout(() => { busyTimer = null; busy.hidden = false; root.dataset.busy = "1"; }, BUSY_MS);
    }
  };
  const error = h("div", { className: "cnnlens-error", attrs: { role: "alert" } });
  const canvas = h("canvas", { className: "cnnlens-canvas", tabIndex: 0 });
  const selMark = h("div", { className: "cnnlens-mark sel", hidden: true });
  const hoverMark = h("div", { className: "cnnlens-mark hover", hidden: true });
  const tip = h("div", { className: "cnnlens-tip", hidden: true });
  const wrap = h("div", { className: "cnnlens-wrap" }, [canvas, selMark, hoverMark, tip]);
  const root = h("div", { className: `cnnlens-view cnnlens-grid${live ? "" : " cnnlens-static"}`,
    attrs: { "data-rendered": "0" } }, [
    h("div", { className: "cnnlens-toolbar" }, [layerSel, normSel, sortSel, cmapSel, pager, badge]),
    note, busy, bar, error, wrap,
  ]);
  el.append(root);

  /** @type {{p:any, dec:any, stats:any, order:Int32Array, lay:any}|null} */
  let shown = null;

  function place(mark, slot) {
    if (!shown || slot < 0) { mark.hidden = true; return; }
    const r = tileRect(shown.lay, slot);
    const z = shown.lay.zoom;
    Object.assign(mark.style, { left: `${r.x * z}px`, top: `${r.y * z}px`, width: `${r.w * z}px`, height: `${r.h * z}px` });
    mark.hidden = false;
  }

  function placeSelection() {
    const n = model.get("neuron");
    root.dataset.neuron = String(n);
    place(selMark, shown && n >= 0 ? slotOf(shown.dec.channels, shown.order, n) : -1);
  }

  function paint() {
    root.dataset.image = String(model.get("image_index"));
    showError(error, model.get("error"));
    const p = currentPayload(model);
    if (!p) {
      root.dataset.rendered = "0";
      // no kernel: nothing will come; say so rather than wait forever
      note.textContent = live ? `computing ${model.get("layer")}…` : `${model.get("layer")}: ${NOT_EXPORTED}`;
      setBusy(live);
      return;
    }
    setBusy(false);
    if (!p.data) {  // the kernel could not compute this selection; the error says why
      shown = null;
      sizeCanvas(canvas, { width: 0, height: 0, zoom: 1 });
      note.textContent = "";
      drawColorBar(bar, null);
      pager.hidden = true;
      root.dataset.layer = p.layer ?? model.get("layer");
      root.dataset.rendered = "1";
      placeSelection();
      return;
    }
    let dec;
    let stats;
    if (shown && shown.p === p) {
      ({ dec, stats } = shown);
    } else {
      try {
        dec = decodeMaps(p);
      } catch (e) {
        showError(error, String(e));
        return;
      }
      stats = tileStats(dec);
    }
    if (!live && shown && shown.dec.layer !== dec.layer && !keepsNeuron(shown.dec, dec, model.get("neuron"))) {
      model.set("neuron", -1);  // no kernel to apply the rule: a unit is not a channel
    }
    const order = sortOrder(dec.channels, model.get("sort"), stats);
    const lay = gridLayout(dec, root.clientWidth || el.clientWidth || 640, !!root.closest?.(".cnnlens-compact"));
    sizeCanvas(canvas, lay);
    const scale = gridScale(dec, model.get("normalize"), model.get("colormap"));
    paintTiles(context2d(canvas), dec, order, lay, lut(scale.cmap), scale.remap);
    drawColorBar(bar, scale.bar);
    shown = { p, dec, stats, order, lay };
    note.textContent = describePayload(dec, model.get("normalize"));
    pager.hidden = dec.pages <= 1;
    pageLabel.textContent = ` ${dec.page + 1}/${dec.pages} `;
    prev.disabled = dec.page <= 0;
    next.disabled = dec.page >= dec.pages - 1;
    Object.assign(root.dataset, { layer: dec.layer, rendered: "1", downsample: String(dec.downsample),
      page: String(dec.page), pages: String(dec.pages), tiles: String(dec.n) });
    layerSel.value = model.get("layer");
    placeSelection();
  }

  function hit(ev) {
    if (!shown) return null;
    const box = canvas.getBoundingClientRect();
    const at = hitTest(shown.lay, ev.clientX - box.left, ev.clientY - box.top);
    if (!at) return null;
    const i = shown.order[at.slot];
    return { ...at, i, channel: shown.dec.channels[i] };
  }

  const hover = debounce((ev) => {
    const at = hit(ev);
    if (!at) { tip.hidden = true; hoverMark.hidden = true; return; }
    const { dec } = shown;
    const [lo, hi] = rangeOf(dec, at.i);
    const q = dec.data[at.i * dec.h * dec.w + at.py * dec.w + at.px];
    const what = dec.kind === "vector" ? `unit ${at.channel}` : `ch ${at.channel}`;
    tip.textContent = dec.kind === "vector"
      ? `${what} · ${fmt(valueAt(dec, at.i, q))}`
      : `${what} · range [${fmt(lo)}, ${fmt(hi)}] · here ${fmt(valueAt(dec, at.i, q))}`;
    const box = canvas.getBoundingClientRect();
    placeTip(tip, ev.clientX - box.left, ev.clientY - box.top, box.width, box.height);
    root.dataset.hover = String(at.channel);
    place(hoverMark, at.slot);
  }, HOVER_MS);

  L.dom(canvas, "mousemove", hover);
  L.dom(canvas, "mouseleave", () => { hover.cancel(); tip.hidden = true; hoverMark.hidden = true; });
  L.dom(canvas, "click", (ev) => {
    const at = hit(ev);
    if (at) save({ neuron: at.channel });  // clicks go to Python at once
  });
  L.dom(canvas, "keydown", (ev) => {
    if (!shown || !["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(ev.key)) return;
    ev.preventDefault();
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -shown.lay.cols, ArrowDown: shown.lay.cols }[ev.key];
    const cur = slotOf(shown.dec.channels, shown.order, model.get("neuron"));
    const slot = Math.max(0, Math.min(shown.order.length - 1, cur < 0 ? 0 : cur + step));
    save({ neuron: shown.dec.channels[shown.order[slot]] });
  });
  L.dom(layerSel, "change", () => save({ layer: layerSel.value }));
  L.dom(normSel, "change", () => save({ normalize: normSel.value }));
  L.dom(sortSel, "change", () => save({ sort: sortSel.value }));
  L.dom(cmapSel, "change", () => save({ colormap: cmapSel.value }));
  L.dom(prev, "click", () => save({ page: Math.max(0, (model.get("page") ?? 0) - 1) }));
  L.dom(next, "click", () => save({ page: (model.get("page") ?? 0) + 1 }));

  for (const name of ["payload", "frames", "layer", "image_index", "page", "normalize", "sort", "colormap", "error"]) {
    L.model(model, `change:${name}`, paint);
  }
  L.model(model, "change:neuron", placeSelection);
  L.model(model, "change:normalize", () => { normSel.value = model.get("normalize"); });
  L.model(model, "change:sort", () => { sortSel.value = model.get("sort"); });
  L.model(model, "change:colormap", () => { cmapSel.value = model.get("colormap"); });
  function fillLayers() {
    const cov = frameCoverage(model, live);  // a static page offers what it holds
    layerSel.replaceChildren(...(model.get("layers") || []).map((n) => h("option", {
      value: n, text: n, disabled: !!cov && !cov.layers.has(n), title: cov && !cov.layers.has(n) ? NOT_EXPORTED : null })));
    layerSel.value = model.get("layer");
  }
  L.model(model, "change:layers", fillLayers);
  L.model(model, "change:frames", fillLayers);
  fillLayers();
  L.width(root, paint);
  L.add(() => hover.cancel());
  L.add(() => setBusy(false));

  paint();
  return () => {
    L.dispose();
    root.remove();
  };
}

export default { render };
