// Twin of cnnlens/widgets/compare_link.py: the JS-side links of cl.Compare.
// Heatmap selection -> both Lens grids' `layer` + the spectrum, grid layer -> row/column
// highlight, metric picker -> heatmap colours (offline). The heatmap reads on its own
// through the overlay of lib/heatmap_view.js (values printed in small matrices, undefined
// cells hatched with their reason, a fast hover tip, arrow keys). Everything here goes
// through other widgets' models (bqplot's GridHeatMap `selected`, `color`, the figure's
// `fig_margin`), never bqplot's DOM, so it keeps working in an exported page without a kernel.
import { floats } from "./lib/decode.js";
import { Listeners, hasKernel, refModel, save, setIfChanged, showError } from "./lib/dom.js";
import { HeatmapOverlay, lastPair, overlayState, shorten, watchHeatmap } from "./lib/heatmap_view.js";
import { addPaneToggles } from "./lib/panes.js";
import { ensureStyle } from "./lib/style.js";

export { lastPair };  // js/canonical_view.js reads the selection with it too

/** Leading run of finite values of a Float32Array slice (spectra are NaN-padded). */
function finitePrefix(arr) {
  let n = 0;
  while (n < arr.length && Number.isFinite(arr[n])) n++;
  return arr.subarray(0, n);
}

/**
 * Precomputed spectrum and baseline of pair (i, j), or null if none was precomputed.
 * @param {Float32Array|null} spectra  (La*Lb*K) NaN-padded
 * @param {Float32Array|null} baselines same layout
 * @param {number[]} shape [La, Lb, K]
 */
export function spectrumFor(spectra, baselines, shape, i, j) {
  if (!spectra || !shape || shape.length !== 3) return null;
  const [la, lb, k] = shape;
  if (i < 0 || j < 0 || i >= la || j >= lb || spectra.length < la * lb * k) return null;
  const at = (i * lb + j) * k;
  const rho = finitePrefix(spectra.subarray(at, at + k));
  const base = baselines && baselines.length >= la * lb * k
    ? finitePrefix(baselines.subarray(at, at + k)) : new Float32Array(0);
  return { rho, base };
}

/**
 * Attributes that draw one spectrum line: x = 1..n; an empty line is hidden behind one
 * valid point (bqplot draws NaN-only data with broken SVG attributes). Python's
 * cnnlens.widgets.spectrum._draw on the same inputs: js/tests/twins.test.js.
 */
export function lineState(values) {
  if (!values.length) return { x: Float32Array.of(1), y: Float32Array.of(0), visible: false };
  return { x: new Float32Array(values.length).map((_, t) => t + 1), y: Float32Array.from(values), visible: true };
}

/** Title of the spectrum (the pair); cnnlens.widgets.spectrum.spectrum_title (js/tests/twins.test.js). */
export function spectrumTitle(names, a, b) {
  return `${names[0]} ${shorten(a, 16)} × ${names[1]} ${shorten(b, 16)}`;
}

/** What the spectrum legend adds under a metric other than SVCCA ("" under SVCCA). */
export function spectrumNote(metric, label) {
  if (metric === "svcca") return "";
  if (metric === "pwcca") return `The heatmap shows ${label}: a weighted mean of these correlations (drawn unweighted).`;
  return `The heatmap shows ${label}, which has no spectrum: these are the pair's SVCCA correlations.`;
}

/** At most `most` round integer ticks in 1..n; cnnlens.widgets.spectrum.index_ticks (js/tests/twins.test.js). */
export function indexTicks(n, most = 8) {
  n = Math.max(Math.floor(n), 1);
  for (let k = 0; ; k++) {
    const step = [1, 2, 5][k % 3] * 10 ** Math.floor(k / 3);
    const out = step <= 2 ? [] : [1];
    for (let t = step <= 2 ? 1 : step; t <= n; t += step) out.push(t);
    if (out.length <= Math.max(most, 2)) return Float64Array.from(out);
  }
}

/** Rows of metric `m` out of the stacked (M, La, Lb) float32 matrices, or null. */
export function matrixRows(matrices, names, shape, m) {
  const at = (names || []).indexOf(m);
  if (at < 0 || !matrices || !shape) return null;
  const [la, lb] = shape;
  const base = at * la * lb;
  if (matrices.length < base + la * lb) return null;
  return Array.from({ length: la }, (_, i) => matrices.slice(base + i * lb, base + (i + 1) * lb));
}

async function render({ model, el }) {
  ensureStyle();
  el.classList.add("cnnlens-compare-link");
  const status = document.createElement("span");
  status.className = "cnnlens-compare-status";
  const error = document.createElement("div");
  error.className = "cnnlens-error";
  el.append(status, error);
  const L = new Listeners();

  const names = ["heatmap", "grid_a", "grid_b", "curve", "baseline", "spectrum", "picker", "heatmap_figure"];
  const models = Object.fromEntries(await Promise.all(
    names.map(async (n) => [n, await refModel(model, n).catch(() => null)])));
  const { heatmap: hm, grid_a: ga, grid_b: gb, curve, baseline, spectrum: specFig, picker, heatmap_figure: hmFig } = models;
  const live = hm ? hasKernel(hm) : hasKernel(model);
  // An exported page: hide what needs a kernel (Run, progress) and say so once, here.
  el.classList.toggle("cnnlens-static", !live);
  const rows = () => Array.from(hm?.get("row") || []).map(String);
  const cols = () => Array.from(hm?.get("column") || []).map(String);
  const modelNames = () => hm?.get("names") || ["A", "B"];
  const label = (m) => (hm?.get("metric_labels") || {})[m] || m;  // "linear_cka" -> "linear CKA"
  // one source of truth: the metric is the one the heatmap shows
  const metric = () => hm?.get("metric") || "";
  let root = null;
  let overlay = null;
  const hl = { row: -1, column: -1 };
  // Decoding MBs of spectra on every click would cost more than drawing: decode once per value.
  const memo = new Map();
  const f32 = (name) => {
    const v = model.get(name);
    if (memo.get(name)?.v !== v) memo.set(name, { v, a: floats(v || null) });
    return memo.get(name).a;
  };

  function decorate() {
    const n = overlay ? overlay.draw() : 0;
    const want = rows().length * cols().length;
    setIfChanged(el, "data-rendered", model.get("complete") && want > 0 && n === want ? "1" : "0");
  }
  let queued = false;
  const schedule = () => { if (!queued) { queued = true; queueMicrotask(() => { queued = false; decorate(); }); } };

  function showNote() {
    // the legend's note: which metric's spectrum this is
    const text = spectrumNote(metric(), label(metric()));
    for (const note of root?.querySelectorAll(".cnnlens-spectrum-note") || []) {
      if (note.textContent !== text) note.textContent = text;
    }
  }

  function showStatus() {
    const done = model.get("progress_done"), total = model.get("progress_total");
    setIfChanged(el, "data-progress", `${done}/${total}`);
    setIfChanged(el, "data-status", model.get("status"));
    setIfChanged(el, "data-metric", metric() || null);
    const stage = model.get("stage");
    status.textContent = `${label(metric())} · ${model.get("status")}${stage ? ` (${stage} ${done}/${total})` : ""}`
      + (live ? "" : " · static page (no kernel)");
    showError(error, model.get("error"));
    showNote();
    schedule();
  }

  function drawSpectrum(i, j) {
    const pre = spectrumFor(f32("spectra"), f32("baselines"), model.get("spectra_shape"), i, j);
    if (!pre || !curve) return false;
    // Set locally even when live: the kernel pushes the same numbers a moment later.
    curve.set(lineState(pre.rho));
    baseline?.set(lineState(pre.base));
    const xAxis = specFig?.get("axes")?.[0];  // bqplot unpacks the figure's axes to models
    if (!live && xAxis?.set) xAxis.set("tick_values", indexTicks(Math.max(pre.rho.length, pre.base.length)));
    if (!live && specFig) {
      // the spectrum is the pair's SVCCA one: prefer SVCCA's reason
      const reasons = (model.get("matrix_reasons") || {}).svcca || hm?.get("reasons") || {};
      const why = pre.rho.length ? "" : `: ${reasons[`${i},${j}`] || "no spectrum"}`;
      specFig.set("title", `${spectrumTitle(modelNames(), rows()[i], cols()[j])}${why}`);
      for (const axis of specFig.get("axes") || []) if (axis?.set) axis.set("visible", true);
    }
    for (const w of root?.querySelectorAll(".cnnlens-spectrum") || []) setIfChanged(w, "data-pair", `${i},${j}`);
    return true;
  }

  function follow(pair) {
    const [i, j] = pair;
    for (const [grid, name] of [[ga, rows()[i]], [gb, cols()[j]]]) {
      if (grid && name != null && grid.get("layer") !== name) { grid.set("layer", name); save(grid); }
    }
    hl.row = i; hl.column = j;
    drawSpectrum(i, j);
    schedule();
  }

  function onSelected() {
    const pair = lastPair(hm.get("selected"));
    setIfChanged(el, "data-pair", pair ? `${pair[0]},${pair[1]}` : null);
    if (!pair) return;
    // bqplot calls us from inside its click handler, before it sends `selected` to the
    // kernel: run after it, and never let a throw of ours (or of a redraw) cancel that.
    queueMicrotask(() => {
      try { follow(pair); } catch (err) { console.error("cnnlens compare_link:", err); }
    });
  }

  function onGridLayer(axis, grid) {
    const idx = (axis === "row" ? rows() : cols()).indexOf(grid.get("layer"));
    hl[axis] = idx;
    setIfChanged(el, `data-highlight-${axis === "row" ? "row" : "col"}`, idx >= 0 ? idx : null);
    schedule();
  }

  function onPicker() {
    // ipywidgets 8 Dropdowns sync `index` (not `value`); `metrics` lists the option keys in
    // order. With a kernel, Python repaints the heatmap (and its `metric`) itself.
    const m = (model.get("metrics") || [])[picker.get("index")];
    if (live || !hm || !m) return;
    // No kernel: switch the colours from the matrices precomputed for export.
    const mat = matrixRows(f32("matrices"), model.get("matrix_metrics"), [rows().length, cols().length], m);
    if (!mat) return;
    hm.set({ color: mat, metric: m, reasons: (model.get("matrix_reasons") || {})[m] || {} });
    hmFig?.set("title", label(m));  // as SimilarityHeatmap.figure's link does with a kernel
    const bar = hmFig?.get("axes")?.[2];  // the colour bar names the metric too
    if (bar?.set) bar.set("label", label(m));
  }

  const scales = () => hm?.get("scales") || {};
  const axis = (k) => { const a = hmFig?.get("axes")?.[k]; return a?.get ? a : null; };
  const read = () => {
    const sc = scales().color;
    return {
      rows: rows(), cols: cols(), values: hm?.get("color") || [], reasons: hm?.get("reasons"),
      notes: hm?.get("notes"), faint: hm ? overlayState(hm).faint : {}, metric: label(metric()),
      names: modelNames(), highlight: hl,
      scale: sc?.get ? { min: sc.get("min"), max: sc.get("max"), scheme: sc.get("scheme") } : null,
      margin: hmFig?.get("fig_margin"), minAspect: hmFig?.get("min_aspect_ratio") ?? 0.01,
      maxAspect: hmFig?.get("max_aspect_ratio") ?? 100,
      // bqplot's y range runs bottom -> top: row 0 is on top only when the row scale is reversed
      rowsDown: !!scales().row?.get?.("reverse"),
      // names the axes cut (heatmap.short_labels): the tip gives them whole
      cut: { rows: axis(0)?.get("tick_labels") || {}, cols: axis(1)?.get("tick_labels") || {} },
    };
  };
  const selection = {
    selected: () => lastPair(hm.get("selected")),
    select: (pair) => { hm.set("selected", [pair]); save(hm); },
  };

  if (hm) {
    L.model(hm, "change:selected", onSelected);
    for (const k of ["color", "reasons", "notes", "metric_labels", "names", "row", "column"]) L.model(hm, `change:${k}`, schedule);
    L.model(hm, "change:metric", showStatus);
    L.add(overlayState(hm).on(schedule));
    const sc = scales().color;
    if (sc?.on) L.model(sc, "change", schedule);  // min, max, scheme: the values' text colour
  }
  if (hmFig) L.model(hmFig, "change:fig_margin", schedule);
  if (ga) L.model(ga, "change:layer", () => onGridLayer("row", ga));
  if (gb) L.model(gb, "change:layer", () => onGridLayer("column", gb));
  if (picker) L.model(picker, "change:index", onPicker);
  if (specFig) {
    L.model(specFig, "change:pair", () => {
      const p = specFig.get("pair") || [];
      for (const w of root?.querySelectorAll(".cnnlens-spectrum") || []) setIfChanged(w, "data-pair", p.length === 2 ? `${p[0]},${p[1]}` : null);
    });
  }
  for (const k of ["progress_done", "progress_total", "stage", "status", "error", "complete"]) L.model(model, `change:${k}`, showStatus);

  watchHeatmap(el, L, (fig) => {
    overlay?.dispose();
    overlay = hm ? new HeatmapOverlay(fig, read, selection) : null;
    schedule();
  }, (r) => {
    root = r;
    addPaneToggles(r);  // the panes come with the Compare
    showNote();         // the spectrum's legend too
  });
  L.add(() => overlay?.dispose());
  if (ga) onGridLayer("row", ga);
  if (gb) onGridLayer("column", gb);
  if (hm) onSelected();
  showStatus();

  return () => L.dispose();
}

export default { render };
