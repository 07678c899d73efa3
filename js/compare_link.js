// Twin of cnnlens/widgets/compare_link.py: the JS-side links of cl.Compare.
// Heatmap click -> both Lens grids' `layer` + the spectrum, grid layer -> row/column
// highlight, metric picker -> heatmap colours (offline), undefined cells hatched with
// their reason. The heatmap reads on its own: values printed in small matrices, a fast
// hover tip with the cell outlined, long layer names cut (whole in the tip), arrow keys
// move the selected cell. Everything here reads other widgets' models, so it keeps
// working in an exported page without a kernel.
import { floats } from "./lib/decode.js";
import { backgroundLuminance, heatmapControls, paintValues, shorten, shortenTicks } from "./lib/heatmap_view.js";
import { addPaneToggles } from "./lib/panes.js";
import { ensureStyle } from "./lib/style.js";

export const HATCH_ID = "cnnlens-hatch";
export const PENDING_FILL = "#e8e8e8"; // same as heatmap.PENDING_FILL
const HATCH_FILL = `url(#${HATCH_ID})`;

/** "IPY_MODEL_abc" -> "abc"; null for anything else. */
export function modelId(ref) {
  if (typeof ref !== "string" || !ref) return null;
  return ref.startsWith("IPY_MODEL_") ? ref.slice("IPY_MODEL_".length) : null;
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

/** Tooltip text of one cell; mirror of cnnlens.widgets.heatmap.cell_text (keep in sync). */
export function cellTitle(row, column, metric, value, reason, names = ["A", "B"], note = null) {
  const head = `${names[0]}: ${row}\n${names[1]}: ${column}\n`;
  if (value != null && Number.isFinite(value)) return head + `${metric} = ${value.toFixed(3)}` + (note ? `\n${note}` : "");
  if (reason) return head + `${metric} undefined: ${reason}`;
  return head + `${metric}: pending`;
}

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
 * valid point (bqplot draws NaN-only data with broken SVG attributes). Mirror of
 * cnnlens.widgets.spectrum._draw.
 */
export function lineState(values) {
  if (!values.length) return { x: Float32Array.of(1), y: Float32Array.of(0), visible: false };
  return { x: new Float32Array(values.length).map((_, t) => t + 1), y: Float32Array.from(values), visible: true };
}

/** Title of the spectrum (the pair); mirror of cnnlens.widgets.spectrum.spectrum_title. */
export function spectrumTitle(names, a, b) {
  return `${names[0]} ${shorten(a, 16)} × ${names[1]} ${shorten(b, 16)}`;
}

/** What the spectrum legend adds under a metric other than SVCCA ("" under SVCCA). */
export function spectrumNote(metric, label) {
  if (metric === "svcca") return "";
  if (metric === "pwcca") return `The heatmap shows ${label}: a weighted mean of these correlations (drawn unweighted).`;
  return `The heatmap shows ${label}, which has no spectrum: these are the pair's SVCCA correlations.`;
}

/** At most `most` round integer ticks in 1..n; mirror of cnnlens.widgets.spectrum.index_ticks. */
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

/** "translate(x, y)" -> [x, y] ([0, 0] when absent). */
function translateOf(el) {
  const m = /translate\(\s*([-\d.e]+)[ ,]+([-\d.e]+)/.exec(el?.getAttribute?.("transform") || "");
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Box {x, y, width, height} around row `i` (axis "row") or column `i` of the cells. */
export function highlightBox(cells, axis, index) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const c of cells) {
    const d = c.__data__;
    if (!d || (axis === "row" ? d.rowNum : d.columnNum) !== index) continue;
    const [, ty] = translateOf(c.parentNode);
    const x = Number(c.getAttribute("x")) || 0, w = Number(c.getAttribute("width")) || 0;
    const y = ty + (Number(c.getAttribute("y")) || 0), h = Number(c.getAttribute("height")) || 0;
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + w); y1 = Math.max(y1, y + h);
  }
  return x1 < x0 ? null : { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** One shared hatch pattern per document (url(#id) resolves page-wide for inline SVG). */
export function ensureHatch(doc = document) {
  if (doc.getElementById(HATCH_ID)) return;
  const ns = "http://www.w3.org/2000/svg";
  const svg = doc.createElementNS(ns, "svg");
  svg.setAttribute("width", "0"); svg.setAttribute("height", "0");
  svg.setAttribute("style", "position:absolute;width:0;height:0");
  svg.innerHTML = `<defs><pattern id="${HATCH_ID}" patternUnits="userSpaceOnUse" width="6" `
    + `height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f6f6f6"/>`
    + `<line x1="0" y1="0" x2="0" y2="6" stroke="#b0413e" stroke-width="2"/></pattern></defs>`;
  doc.body.appendChild(svg);
}

/** A fill as the browser reads it back ("#e8e8e8" -> "rgb(232, 232, 232)"), cached. */
const normalized = new Map();
function cssFill(doc, fill) {
  if (!normalized.has(fill)) {
    const probe = doc.createElement("span");
    probe.style.fill = fill;
    normalized.set(fill, probe.style.fill || fill);
  }
  return normalized.get(fill);
}

function setIfChanged(node, attr, value) {
  if (value == null) { if (node.hasAttribute(attr)) node.removeAttribute(attr); return; }
  if (node.getAttribute(attr) !== String(value)) node.setAttribute(attr, String(value));
}

/**
 * Make every cell say what it is: its text as aria-label (the hover tip shows it; a native
 * SVG <title> tooltip was slow and doubled it), data-row / data-col, a hatch fill when
 * undefined (with reason), a pending fill when not computed yet. Idempotent: writes only
 * what differs, so it can run from a MutationObserver without feeding itself.
 * @param {Element[]} cells rect.heatmapcell with bqplot's d3 datum in __data__
 * @param {{rows: string[], columns: string[], metric: string, reasons: object, names?: string[]}} info
 */
export function decorateCells(cells, info) {
  let writes = 0;
  for (const cell of cells) {
    const d = cell.__data__;
    if (!d) continue;
    const { rowNum: i, columnNum: j } = d;
    const value = d.color == null ? NaN : Number(d.color);
    const reason = (info.reasons || {})[`${i},${j}`] || null;
    const note = (info.notes || {})[`${i},${j}`] || null;  // error, chance, reference (trust_link.js)
    const text = cellTitle(info.rows[i] ?? i, info.columns[j] ?? j, info.metric, value, reason, info.names, note);
    const old = cell.querySelector("title");
    if (old) { old.remove(); writes++; }
    if (cell.getAttribute("aria-label") !== text) { cell.setAttribute("aria-label", text); writes++; }
    setIfChanged(cell, "data-row", i);
    setIfChanged(cell, "data-col", j);
    const state = Number.isFinite(value) ? null : reason ? "undefined" : "pending";
    const fill = state === "undefined" ? HATCH_FILL : state === "pending" ? PENDING_FILL : null;
    setIfChanged(cell, "data-state", state);
    // compare in the browser's normal form, or every pass would rewrite (and re-trigger
    // the MutationObserver that calls us)
    if (fill && cell.style.fill !== cssFill(cell.ownerDocument, fill)) {
      cell.style.fill = fill; writes++;
    }
  }
  return writes;
}

/** Overlay rectangles outlining the highlighted row and column (idempotent). */
export function drawHighlights(cells, row, column) {
  const g = cells[0]?.parentNode?.parentNode;
  if (!g) return;
  const ns = "http://www.w3.org/2000/svg";
  for (const [axis, index] of [["row", row], ["column", column]]) {
    let box = index == null || index < 0 ? null : highlightBox(cells, axis, index);
    let ov = g.querySelector(`rect.cnnlens-hl-${axis}`);
    if (!box) { if (ov) ov.remove(); continue; }
    if (!ov) {
      ov = g.ownerDocument.createElementNS(ns, "rect");
      ov.setAttribute("class", `cnnlens-hl-${axis}`);
      ov.setAttribute("style", "fill:none;stroke:#ff9900;stroke-width:2.5px;pointer-events:none");
      g.appendChild(ov);
    }
    for (const k of ["x", "y", "width", "height"]) setIfChanged(ov, k, box[k]);
  }
}

/** Resolve an "IPY_MODEL_<id>" trait value to the widget model (or null). */
async function resolve(model, name) {
  const ref = model.get(name);
  if (ref && typeof ref === "object" && typeof ref.get === "function") return ref;
  const id = modelId(ref);
  if (!id || !model.widget_manager) return null;
  try { return await model.widget_manager.get_model(id); } catch { return null; }
}

function save(m) {
  // Without a kernel (exported page) there is no comm: syncing would throw.
  if (m && m.comm_live !== false && m.comm) m.save_changes();
}

async function render({ model, el }) {
  ensureStyle();
  el.classList.add("cnnlens-compare-link");
  const status = document.createElement("span");
  status.className = "cnnlens-compare-status";
  const error = document.createElement("div");
  error.className = "cnnlens-error";
  el.append(status, error);
  ensureHatch(el.ownerDocument);

  const names = ["heatmap", "grid_a", "grid_b", "curve", "baseline", "spectrum", "picker", "heatmap_figure"];
  const models = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await resolve(model, n)])));
  const { heatmap: hm, grid_a: ga, grid_b: gb, curve, baseline, spectrum: specFig, picker, heatmap_figure: hmFig } = models;
  const live = () => !!(hm && hm.comm && hm.comm_live !== false);
  // An exported page: hide what needs a kernel (Run, progress) and say so once, here.
  const staticPage = !!hm && !live();
  el.classList.toggle("cnnlens-static", staticPage);
  const rows = () => Array.from(hm?.get("row") || []).map(String);
  const cols = () => Array.from(hm?.get("column") || []).map(String);
  const modelNames = () => hm?.get("names") || ["A", "B"];
  const label = (m) => (hm?.get("metric_labels") || {})[m] || m;  // "linear_cka" -> "linear CKA"
  // ipywidgets 8 Dropdowns sync `index` (not `value`); `metrics` lists the option keys in order.
  const metric = () => {
    const keys = model.get("metrics") || [];
    const idx = picker?.get("index");
    return idx != null && keys[idx] ? keys[idx] : model.get("metric");
  };
  const subs = [];
  const on = (m, ev, fn) => { if (m) { m.on(ev, fn); subs.push([m, ev, fn]); } };
  const root = () => el.closest(".cnnlens-compare");
  const cells = () => Array.from(root()?.querySelectorAll(".cnnlens-heatmap rect.heatmapcell") || []);
  const hl = { row: -1, column: -1 };
  // Decoding MBs of spectra on every click would cost more than drawing: decode once per value.
  const memo = new Map();
  const f32 = (name) => {
    const v = model.get(name);
    if (memo.get(name)?.v !== v) memo.set(name, { v, a: floats(v || null) });
    return memo.get(name).a;
  };

  function decorate() {
    const cs = cells();
    if (hm && cs.length) {
      decorateCells(cs, { rows: rows(), columns: cols(), metric: label(hm.get("metric") || metric()),
        reasons: hm.get("reasons"), names: modelNames(), notes: hm.get("notes") });
      drawHighlights(cs, hl.row, hl.column);
      const fig = heatmapEl();
      paintValues(cs, rows().length, cols().length, undefined, fig ? backgroundLuminance(fig) : 1);
      if (fig) shortenTicks(fig, new Set([...rows(), ...cols()]));
    }
    addPaneToggles(root());
    // the legend's note: which metric's spectrum this is (the legend renders on its own time)
    for (const note of root()?.querySelectorAll(".cnnlens-spectrum-note") || []) {
      const text = spectrumNote(metric(), label(metric()));
      if (note.textContent !== text) note.textContent = text;
    }
    const n = rows().length * cols().length;
    setIfChanged(el, "data-rendered", model.get("complete") && n > 0 && cs.length === n ? "1" : "0");
  }
  let queued = false;
  const schedule = () => { if (!queued) { queued = true; queueMicrotask(() => { queued = false; decorate(); }); } };

  function showStatus() {
    const done = model.get("progress_done"), total = model.get("progress_total");
    setIfChanged(el, "data-progress", `${done}/${total}`);
    setIfChanged(el, "data-status", model.get("status"));
    setIfChanged(el, "data-metric", metric());
    const stage = model.get("stage");
    status.textContent = `${label(metric())} · ${model.get("status")}${stage ? ` (${stage} ${done}/${total})` : ""}`
      + (staticPage ? " · static page (no kernel)" : "");
    error.textContent = model.get("error") || "";
    error.style.display = model.get("error") ? "" : "none";
    schedule();
  }

  function drawSpectrum(i, j) {
    const pre = spectrumFor(f32("spectra"), f32("baselines"),
      model.get("spectra_shape"), i, j);
    if (!pre || !curve) return false;
    // Set locally even when live: the kernel pushes the same numbers a moment later.
    curve.set(lineState(pre.rho));
    baseline?.set(lineState(pre.base));
    const xAxis = specFig?.get("axes")?.[0];  // bqplot unpacks the figure's axes to models
    if (!live() && xAxis?.set) xAxis.set("tick_values", indexTicks(Math.max(pre.rho.length, pre.base.length)));
    if (!live() && specFig) {
      // the spectrum is the pair's SVCCA one: prefer SVCCA's reason
      const reasons = (model.get("matrix_reasons") || {}).svcca || hm?.get("reasons") || {};
      const why = pre.rho.length ? "" : `: ${reasons[`${i},${j}`] || "no spectrum"}`;
      specFig.set("title", `${spectrumTitle(modelNames(), rows()[i], cols()[j])}${why}`);
      for (const axis of specFig.get("axes") || []) if (axis?.set) axis.set("visible", true);
    }
    for (const w of root()?.querySelectorAll(".cnnlens-spectrum") || []) setIfChanged(w, "data-pair", `${i},${j}`);
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

  function onMetric() {
    const m = metric();
    if (!live() && hm) {
      // No kernel: switch the colours from the matrices precomputed for export.
      const mat = matrixRows(f32("matrices"), model.get("matrix_metrics"),
        [rows().length, cols().length], m);
      if (mat) {
        hm.set({ color: mat, metric: m, reasons: (model.get("matrix_reasons") || {})[m] || {} });
        hmFig?.set("title", label(m));  // mirror of SimilarityHeatmap.title
        const bar = hmFig?.get("axes")?.[2];  // the colour bar names the metric too
        if (bar?.set) bar.set("label", label(m));
      }
    }
    showStatus();
  }

  on(hm, "change:selected", onSelected);
  on(hm, "change:color", schedule);
  on(hm, "change:reasons", schedule);
  on(hm, "change:notes", schedule);
  on(hm, "change:metric", schedule);
  on(ga, "change:layer", () => onGridLayer("row", ga));
  on(gb, "change:layer", () => onGridLayer("column", gb));
  on(picker, "change:index", onMetric);
  on(specFig, "change:pair", () => {
    const p = specFig.get("pair") || [];
    for (const w of root()?.querySelectorAll(".cnnlens-spectrum") || []) setIfChanged(w, "data-pair", p.length === 2 ? `${p[0]},${p[1]}` : null);
  });
  const mine = ["progress_done", "progress_total", "stage", "status", "error", "complete", "metric"];
  for (const k of mine) model.on(`change:${k}`, showStatus);

  // Hover tip and keyboard on the heatmap figure (its element appears after render).
  const heatmapEl = () => root()?.querySelector(".cnnlens-heatmap") || null;
  const controls = hm ? heatmapControls({
    rows: () => rows().length, cols: () => cols().length,
    selected: () => lastPair(hm.get("selected")),
    select: (pair) => { hm.set("selected", [pair]); save(hm); },
  }) : null;

  let tries = 0; // the view is attached to the page after render; stop looking after 60 s
  // bqplot redraws cells (new rects, or restyled fills on every selection): re-apply.
  const observer = new MutationObserver(schedule);
  let watched = null;
  const attach = () => {
    const r = root();
    if (r && r !== watched) {
      observer.disconnect();
      observer.observe(r, { childList: true, subtree: true, attributes: true, attributeFilter: ["style"] });
      watched = r;
      schedule();
    }
    controls?.wire(heatmapEl());
    return !!r && (!!controls?.wired() || tries > 20);  // a figure comes with its root, or not at all
  };
  const poll = setInterval(() => { if (attach() || ++tries > 600) clearInterval(poll); }, 100);
  attach();
  if (ga) onGridLayer("row", ga);
  if (gb) onGridLayer("column", gb);
  if (hm) onSelected();
  showStatus();

  return () => {
    clearInterval(poll);
    controls?.unwire();
    observer.disconnect();
    for (const [m, ev, fn] of subs) m.off(ev, fn);
    for (const k of mine) model.off(`change:${k}`, showStatus);
  };
}

export default { render };
