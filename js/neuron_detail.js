// Twin of cnnlens/widgets/neuron_detail.py: the selected channel enlarged over the input
// image (opacity control), its value range, its filter and its top-k images.
// It follows the referenced ActivationGrid model in JS; until the kernel's full-resolution
// payload arrives (or with no kernel at all) it draws the channel from the grid's tiles.
// The kernel ranks top images off its main thread: data-topk says where that stands.
// With no kernel (an exported page) the top images come from the model's `frames` and the
// filter is cut from the filter view's frames, for every exported layer.

import { decodeImages, decodeMaps, decodeWeights, floats, ints, rangeOf, valueAt } from "./lib/decode.js";
import { lut, remapTables } from "./lib/colormap.js";
import { colorBarBox, drawColorBar, isDiverging, isSigned, resolveColormap } from "./lib/colorbar.js";
import { channelOf, currentPayload, filterOf, filterSource, frameTop } from "./lib/frames.js";
import { paintFilterBox } from "./lib/filters.js";
import { layout, paintImage, paintTiles, sizeCanvas } from "./lib/tiles.js";
import { Listeners, context2d, debounce, fmt, h, hasKernel, refModel, select, showError } from "./lib/dom.js";
import { ensureStyle } from "./lib/style.js";
import { featvisPanel } from "./lib/featvis.js";
import { drawDistribution } from "./lib/distribution.js";

const STAGE = 224;  // CSS px of the longer side of the enlarged channel
const SLIDER_MS = 150;

/** Whether the detail model's payloads describe the grid's current selection. */
export function isCurrent(model, grid) {
  return model.get("layer") === grid.get("layer") && model.get("neuron") === grid.get("neuron") &&
    model.get("image_index") === grid.get("image_index");
}

/**
 * State of the top images for the grid's selection (the root's data-topk): "none" (no
 * neuron), "pending" (the kernel has not answered this selection yet, or is ranking),
 * "ready" or "error". State saved before top_status existed counts as ready if it has images.
 */
export function topStatus(model, grid) {
  return topSource(model, grid).status;
}

/**
 * Top images for the grid's selection: the kernel's `top` when it is current and ready,
 * else the exported frame's row, else nothing (with the live status).
 * @returns {{status:string, source:string, top:null|{indices:Int32Array, scores:Float32Array,
 *   by:string, images:any, ids:Int32Array|null}}}
 */
export function topSource(model, grid) {
  if (grid.get("neuron") < 0) return { status: "none", source: "none", top: null };
  const current = isCurrent(model, grid);
  const status = !current ? "pending" : model.get("top_status") ?? (model.get("top")?.images ? "ready" : "none");
  const t = model.get("top");
  if (current && status === "ready" && t) {
    return { status, source: "live", top: { indices: ints(t.indices), scores: floats(t.scores), by: t.by,
      images: t.images, ids: null, values: t.values ? floats(t.values) : null } };
  }
  const f = frameTop(model, grid);
  if (f) {
    const thumbs = model.get("frame_images") || {};
    return { status: "ready", source: "frame", top: { ...f, images: thumbs.images, ids: ints(thumbs.ids) } };
  }
  return { status, source: "none", top: null };
}

/** The filter of the grid's neuron: the kernel's `kernels` when current, else cut from the filter view. */
export function kernelSource(model, grid, filters) {
  const k = isCurrent(model, grid) ? model.get("kernels") : null;
  if (k && k.shape) return decodeWeights(k);
  if (!filters || grid.get("neuron") < 0) return null;
  const src = filterSource(filters, grid);
  if (src.layer !== grid.get("layer") || !src.payload?.shape) return null;
  return filterOf(decodeWeights(src.payload), grid.get("neuron"));
}

/** The channel to enlarge: own full-resolution payload if current, else the grid's tile. */
export function channelSource(model, grid) {
  const n = grid.get("neuron");
  if (n < 0) return null;
  if (isCurrent(model, grid) && model.get("channel")?.data) {
    return { dec: decodeMaps(model.get("channel")), source: "live" };
  }
  const p = currentPayload(grid);
  const one = p && p.data ? channelOf(decodeMaps(p), n) : null;
  return one ? { dec: one, source: "grid" } : null;
}

async function render({ model, el }) {
  ensureStyle();
  const L = new Listeners();
  // Standalone (no grid reference), the detail's own layer/neuron/image_index stand in.
  const grid = (await refModel(model, "grid")) ?? model;
  const filters = await refModel(model, "filters");
  const head = h("div", { className: "cnnlens-toolbar" });
  const range = h("div", { className: "cnnlens-note" });
  const error = h("div", { className: "cnnlens-error", attrs: { role: "alert" } });
  const base = h("canvas", { className: "cnnlens-detail-image" });
  const overlay = h("canvas", { className: "cnnlens-detail-channel" });
  const stage = h("div", { className: "cnnlens-detail-stage" }, [base, overlay]);
  const slider = h("input", { type: "range", min: 0, max: 1, step: 0.05, value: model.get("opacity"), title: "overlay opacity" });
  const bySel = select([["mean", "top by mean"], ["max", "top by max"]], model.get("by"), "cnnlens-needs-kernel");
  const opacityRow = h("div", { className: "cnnlens-row" }, [h("span", { className: "cnnlens-dim", text: "overlay" }), slider]);
  const dist = h("div", { className: "cnnlens-dist", hidden: true });
  const stageBar = colorBarBox();
  const filt = h("canvas", { className: "cnnlens-detail-filter" });
  const filtBox = h("div", { className: "cnnlens-detail-filterbox" }, [h("div", { className: "cnnlens-dim", text: "filter" }), filt]);
  const top = h("div", { className: "cnnlens-thumbs cnnlens-top" });
  const topNote = h("div", { className: "cnnlens-dim cnnlens-top-status", attrs: { role: "status" } });
  const root = h("div", { className: "cnnlens-view cnnlens-detail", attrs: { "data-rendered": "0" } }, [
    head, range, error, stage, stageBar, opacityRow, dist,
    filtBox, h("div", { className: "cnnlens-row" }, [bySel]), topNote, top,
  ]);
  el.append(root);
  const featvis = featvisPanel(model, grid, L);  // beside the top images: the same question
  root.append(featvis.el);

  function drawStage(src) {
    const img = isCurrent(model, grid) || model.get("image_index") === grid.get("image_index")
      ? decodeImages(model.get("image")) : null;
    const vector = !src || src.dec.kind === "vector";
    // a linear unit has no spatial map: no stage at all (its value and distribution say it)
    stage.hidden = !!src && src.dec.kind === "vector";
    opacityRow.hidden = vector;
    root.dataset.stage = stage.hidden ? "none" : vector ? "image" : "map";
    const [ih, iw] = img ? [img.h, img.w] : src && !vector ? [src.dec.h, src.dec.w] : [0, 0];
    const z = ih && iw ? STAGE / Math.max(ih, iw) : 1;
    const css = { width: `${Math.round(iw * z)}px`, height: `${Math.round(ih * z)}px` };
    stage.style.height = css.height;
    stage.style.width = css.width;
    base.hidden = !img;
    if (img) {
      base.width = img.w;
      base.height = img.h;
      Object.assign(base.style, css);
      paintImage(context2d(base), img, 0);
    }
    overlay.hidden = vector;
    if (!vector) {
      const d = src.dec;
      const lay = layout(1, d.h, d.w, { gap: 0, zoom: 1, cssWidth: d.w });
      sizeCanvas(overlay, lay);
      Object.assign(overlay.style, css);  // stretched over the image: the map's receptive grid
      overlay.style.opacity = img ? String(model.get("opacity")) : "1";
      // the grid's colours for this channel: "auto" is diverging, centred on zero, when signed
      const [lo, hi] = rangeOf(d, 0);
      const cmap = resolveColormap(grid.get("colormap"), isSigned(lo, hi));
      const { remap, gmin, gmax } = remapTables(d, "channel", isDiverging(cmap));
      paintTiles(context2d(overlay), d, Int32Array.of(0), lay, lut(cmap), remap);
      drawColorBar(stageBar, { colormap: cmap, lo: gmin, hi: gmax,
        label: `activation of channel ${grid.get("neuron")} on this image` });
    } else {
      drawColorBar(stageBar, null);
    }
  }

  function drawTop() {
    const { status, source, top: t } = topSource(model, grid);
    root.dataset.topk = status;
    root.dataset.topSource = source;
    top.setAttribute("aria-busy", String(status === "pending"));
    // Say "ranking" only when the kernel said so: with no kernel (an exported page) a
    // selection it never saw stays pending, and there is nothing to wait for.
    topNote.textContent = status === "pending" && isCurrent(model, grid) ? "ranking images…" : "";
    topNote.hidden = !topNote.textContent;
    const imgs = t && t.images ? decodeImages(t.images) : null;
    const idx = t ? t.indices : new Int32Array(0);
    const scores = t ? t.scores : new Float32Array(0);
    const items = [];
    for (let k = 0; imgs && k < idx.length; k++) {
      const at = t.ids ? t.ids.indexOf(idx[k]) : k;  // frames share one thumbnail set
      if (at < 0 || at >= imgs.n) continue;
      const c = h("canvas", { width: imgs.w, height: imgs.h });
      const z = 48 / Math.max(imgs.w, imgs.h);
      Object.assign(c.style, { width: `${Math.round(imgs.w * z)}px`, height: `${Math.round(imgs.h * z)}px` });
      paintImage(context2d(c), imgs, at);
      items.push(h("div", { className: "cnnlens-thumb", title: `image ${idx[k]} · ${t.by} ${fmt(scores[k])}`,
        attrs: { "data-index": idx[k], "aria-selected": String(idx[k] === grid.get("image_index")) } },
      [c, h("span", { className: "cnnlens-dim", text: fmt(scores[k]) })]));
    }
    top.replaceChildren(...items);
    top.dataset.count = String(items.length);
    root.dataset.top = Array.from(idx).join(",");
  }

  function drawFilter() {
    let w = null;
    try { w = kernelSource(model, grid, filters); } catch (e) { showError(error, String(e)); }
    root.dataset.filter = w ? "1" : "0";
    paintFilterBox(filtBox, filt, w, 200, 96);
  }

  function draw() {
    const n = grid.get("neuron");
    const layer = grid.get("layer");
    Object.assign(root.dataset, { neuron: String(n), layer, image: String(grid.get("image_index")) });
    const current = isCurrent(model, grid);
    showError(error, current ? model.get("error") : "");
    let src = null;
    try {
      src = channelSource(model, grid);
    } catch (e) {
      showError(error, String(e));
    }
    root.dataset.source = src ? src.source : "none";
    if (n < 0) {
      head.textContent = `${layer}: click a channel to inspect it`;
      range.textContent = "";
    } else {
      const unit = src && src.dec.kind === "vector";
      head.textContent = `${layer} · ${unit ? "unit" : "channel"} ${n} · image ${grid.get("image_index")}`;
      if (src) {
        const [lo, hi] = rangeOf(src.dec, 0);
        range.textContent = src.dec.kind === "vector"
          ? `value ${fmt(valueAt(src.dec, 0, src.dec.data[0]))}`
          : `range [${fmt(lo)}, ${fmt(hi)}] · ${src.dec.h}×${src.dec.w}${src.source === "grid" ? " (from the grid tile)" : ""}`;
      } else {
        range.textContent = hasKernel(grid) ? "computing…" : "not in this page";  // nothing will come
      }
    }
    drawStage(n >= 0 ? src : null);
    drawFilter();
    drawTop();
    featvis.draw();
    // a linear unit: its value read against every image's (the kernel's top-k pass scores all)
    const values = n >= 0 && src?.dec.kind === "vector" ? topSource(model, grid).top?.values : null;
    drawDistribution(dist, values, values ? valueAt(src.dec, 0, src.dec.data[0]) : NaN);
    root.dataset.rendered = current || n < 0 ? "1" : "0";
  }

  const saveOpacity = debounce(() => model.save_changes(), SLIDER_MS);
  L.dom(slider, "input", () => {
    overlay.style.opacity = slider.value;
    model.set("opacity", Number(slider.value));
    saveOpacity();
  });
  L.dom(bySel, "change", () => { model.set("by", bySel.value); model.save_changes(); });
  L.dom(top, "click", (ev) => {
    const t = ev.target.closest?.(".cnnlens-thumb");
    if (!t) return;
    grid.set("image_index", Number(t.dataset.index));
    grid.save_changes();
  });
  for (const name of ["layer", "neuron", "image_index", "channel", "image", "kernels", "top", "top_status", "error",
    "frames", "frame_images"]) {
    L.model(model, `change:${name}`, draw);
  }
  L.model(model, "change:opacity", () => { slider.value = model.get("opacity"); overlay.style.opacity = String(model.get("opacity")); });
  L.model(model, "change:by", () => { bySel.value = model.get("by"); });
  for (const name of ["layer", "neuron", "image_index", "payload", "frames", "colormap"]) {
    L.model(grid, `change:${name}`, draw);
  }
  L.add(() => saveOpacity.cancel());
  draw();
  return () => { L.dispose(); root.remove(); };
}

export default { render };
