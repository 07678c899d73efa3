// The neuron pane's feature visualisation (part of js/neuron_detail.js, twin of the
// vis* traits of cnnlens/widgets/neuron_detail.py, filled by cnnlens/widgets/featvis_job.py).
// A "visualise" button asks the kernel ({event: "visualize"}); while it optimises off its
// main thread a progress bar follows vis_progress; the image shows beside the top images.
// With no kernel (an exported page) the image comes from vis_frames, if it was exported.

import { decodeImages, floats, ints } from "./decode.js";
import { context2d, fmt, h, hasKernel, showError } from "./dom.js";
import { paintImage } from "./tiles.js";

const SIDE = 96;  // CSS px of the longer side of the shown image

/**
 * The visualisation for the grid's selection.
 * @returns {{status: string, source: string, progress: number, error: string,
 *   vis: null|{image: any, at: number, activation: number, steps: number, seed: number}}}
 *   status: "none" | "running" | "ready" | "error"; source: "live" | "frame" | "none".
 */
export function visSource(model, grid) {
  const layer = grid.get("layer");
  const n = grid.get("neuron");
  const none = { status: "none", source: "none", progress: 0, error: "", vis: null };
  if (n < 0) return none;
  const mine = model.get("vis_key") === `${layer}|${n}`;
  const status = mine ? model.get("vis_status") || "none" : "none";
  const progress = mine ? model.get("vis_progress") || 0 : 0;
  const error = mine && status === "error" ? model.get("vis_error") || "" : "";
  const v = model.get("vis");
  if (v && v.image && v.layer === layer && v.neuron === n && status !== "running") {
    return { status: "ready", source: "live", progress: 1, error,
      vis: { image: v.image, at: 0, activation: v.activation, steps: v.steps, seed: v.seed } };
  }
  const f = (model.get("vis_frames") || {})[layer];
  const at = f && f.channels ? Array.from(ints(f.channels)).indexOf(n) : -1;
  if (at >= 0 && status !== "running") {
    return { status: "ready", source: "frame", progress: 1, error,
      vis: { image: f.image, at, activation: floats(f.activations)[at], steps: f.steps, seed: f.seed } };
  }
  return { status, source: "none", progress, error, vis: null };
}

/**
 * The best top image's mean activation for the selection, when the kernel ranked by mean
 * (the visualisation maximises the spatial mean, so only that ranking compares), else null.
 */
export function bestImage(model, grid) {
  const t = model.get("top");
  const current = model.get("layer") === grid.get("layer") && model.get("neuron") === grid.get("neuron");
  if (!current || model.get("top_status") !== "ready" || !t || t.by !== "mean" || !t.scores) return null;
  const scores = floats(t.scores);
  return scores.length ? scores[0] : null;
}

/**
 * Build the panel; `draw()` repaints it from the models, listeners go to `L`.
 * @param {any} model the NeuronDetail model
 * @param {any} grid the selection model
 * @param {import("./dom.js").Listeners} L
 */
export function featvisPanel(model, grid, L) {
  const button = h("button", { className: "cnnlens-needs-kernel cnnlens-featvis-run", text: "visualise",
    title: "optimise an input image that excites this channel (Lucid/Lucent recipe)" });
  const bar = h("progress", { max: 1, value: 0, hidden: true, style: { width: "96px" } });
  const error = h("div", { className: "cnnlens-error", attrs: { role: "alert" } });
  const canvas = h("canvas", { className: "cnnlens-featvis-image", hidden: true,
    style: { imageRendering: "pixelated", border: "1px solid var(--jp-border-color2, #e0e0e0)" } });
  const note = h("div", { className: "cnnlens-dim cnnlens-featvis-note", attrs: { role: "status" } });
  const el = h("div", { className: "cnnlens-featvis", attrs: { "data-vis": "none" } }, [
    h("div", { className: "cnnlens-row" }, [h("span", { className: "cnnlens-dim", text: "feature visualisation" }),
      button, bar]),
    error, canvas, note,
  ]);

  function draw() {
    const s = visSource(model, grid);
    const n = grid.get("neuron");
    el.hidden = n < 0;
    el.dataset.vis = s.status;
    el.dataset.visSource = s.source;
    el.setAttribute("aria-busy", String(s.status === "running"));
    button.textContent = s.status === "running" ? "cancel" : "visualise";
    button.disabled = n < 0;
    bar.hidden = s.status !== "running";
    bar.value = s.progress;
    showError(error, s.error);
    const img = s.vis ? decodeImages(s.vis.image) : null;
    canvas.hidden = !img;
    if (img) {
      canvas.width = img.w;
      canvas.height = img.h;
      const z = SIDE / Math.max(img.w, img.h);
      Object.assign(canvas.style, { width: `${Math.round(img.w * z)}px`, height: `${Math.round(img.h * z)}px` });
      paintImage(context2d(canvas), img, s.vis.at);
      const best = bestImage(model, grid);
      note.textContent = `activation ${fmt(s.vis.activation)}${best == null ? "" : ` (best image ${fmt(best)})`}` +
        ` · ${s.vis.steps} steps, seed ${s.vis.seed}`;
    } else {
      // a page with no kernel says so rather than showing a button-less, empty panel
      note.textContent = s.status === "running" ? `optimising… ${Math.round(100 * s.progress)} %`
        : n >= 0 && !hasKernel(model) ? "not exported for this channel" : "";
    }
  }

  L.dom(button, "click", () => {
    const running = visSource(model, grid).status === "running";
    model.send(running ? { event: "cancel" }
      : { event: "visualize", layer: grid.get("layer"), neuron: grid.get("neuron") });
  });
  for (const name of ["vis", "vis_key", "vis_status", "vis_progress", "vis_error", "vis_frames", "top", "top_status"]) {
    L.model(model, `change:${name}`, draw);
  }
  return { el, draw };
}
