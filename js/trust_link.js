// Twin of cnnlens/widgets/trust_link.py: how far the Compare heatmap's cells can be trusted.
// Warnings above the heatmap, cells not above chance hatched (reason in their tooltip), the
// difference mode (A~B minus A~C, a diverging colour scale) and the gap chart linked to the
// heatmap: a point click selects that layer's cell, so compare_link.js moves both panes.
// Everything comes from precomputed traits and other widgets' models: it works the same in
// an exported page without a kernel.
import { floats } from "./lib/decode.js";
import { Listeners, hasKernel, refModel, save, setIfChanged } from "./lib/dom.js";
import { lastPair, overlayState, watchHeatmap } from "./lib/heatmap_view.js";
import { ensureStyle } from "./lib/style.js";
import { diffRange, differenceTitle, firstIndex, gapTitle, pairOfPoint, pointOfPair, slab } from "./lib/trust.js";

const CSS = `
.cnnlens-trust { margin: 2px 0; }
.cnnlens-trust-bar { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.cnnlens-trust-bar button[aria-pressed="true"] { background: var(--jp-brand-color3, #e3eefa);
  border-color: var(--jp-brand-color1, #1976d2); }
.cnnlens-warnings { margin: 2px 0; padding: 3px 6px 3px 22px; color: var(--jp-ui-font-color1, #222);
  background: color-mix(in srgb, var(--jp-warn-color1, #f9a825) 14%, transparent);
  border-left: 3px solid var(--jp-warn-color1, #f9a825); max-width: 880px; }
.cnnlens-warnings[hidden] { display: none; }
`;

function ensureTrustStyle(doc = document) {
  if (doc.getElementById("cnnlens-trust-style")) return;
  const s = doc.createElement("style");
  s.id = "cnnlens-trust-style";
  s.textContent = CSS;
  doc.head.appendChild(s);
}

async function render({ model, el }) {
  ensureStyle();
  ensureTrustStyle(el.ownerDocument);
  el.classList.add("cnnlens-view", "cnnlens-trust");
  const bar = document.createElement("div");
  bar.className = "cnnlens-trust-bar";
  const modeButtons = [["scores", "scores"], ["difference", "difference to reference"]].map(([mode, text]) => {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.mode = mode; b.textContent = text;
    bar.append(b);
    return b;
  });
  const why = document.createElement("span");
  why.className = "cnnlens-note";
  bar.append(why);
  // data={"real": ..., "synthetic": ...}: one button per dataset
  const sets = document.createElement("div");
  sets.className = "cnnlens-trust-bar cnnlens-datasets";
  let setButtons = [];
  const warn = document.createElement("ul");
  warn.className = "cnnlens-warnings";
  warn.setAttribute("role", "note");
  el.append(sets, bar, warn);

  const L = new Listeners();
  const [hm, hmFig, chart] = await Promise.all(
    ["heatmap", "heatmap_figure", "chart"].map((n) => refModel(model, n).catch(() => null)));
  const isLive = hm ? hasKernel(hm) : hasKernel(model);
  const live = () => isLive;
  const names = () => model.get("names") || ["A", "B", "reference"];
  const label = (m) => (model.get("labels") || {})[m] || m;
  // one source of truth: the metric is the one the heatmap shows
  const metric = () => hm?.get("metric") || (model.get("metrics") || [])[0];
  // with several datasets every metric's data are keyed "dataset|metric"
  const key = (m) => ((model.get("datasets") || []).length ? `${model.get("dataset")}|${m}` : m);
  const data = () => (model.get("per_metric") || {})[key(metric())] || null;
  const memo = new Map();
  const f32 = (name) => {
    const v = model.get(name);
    if (memo.get(name)?.v !== v) memo.set(name, { v, a: floats(v || null) });
    return memo.get(name).a;
  };
  // GapChart's marks, in its order: band_b, band_c, line_b, line_c, points_b, points_c
  let marks = [];
  if (chart) marks = await Promise.all((chart.get("marks") || []).map(async (m) =>
    (typeof m === "string" ? model.widget_manager.get_model(m.replace(/^IPY_MODEL_/, "")) : m)));
  const points = marks.slice(4, 6).filter(Boolean);
  let compare = null;  // the Compare's element, once ours is in the page
  const root = () => compare;
  const scale = () => hm?.get("scales")?.color || null;
  let shown = "scores";   // the mode the heatmap shows now
  let saved = null;       // the colour scale's settings before the difference mode
  let savedBar = null;    // and the colour bar's ticks
  let savedLabels = null; // and the heatmap's metric names
  let applying = false;   // our own changes must not trigger a re-apply

  function paintMode() {
    if (!hm) return;
    const m = metric(), shape = model.get("shape");
    const want = model.get("mode") === "difference" && !model.get("difference_reason") ? "difference" : "scores";
    if (want === "scores" && shown === "scores") return;
    const rows = slab(f32(want === "difference" ? "differences" : "scores"), model.get("matrix_metrics"), shape, key(m));
    if (!rows) return;
    applying = true;
    try {
      const sc = scale();
      // the colour bar first: it redraws its ticks when the scale's domain changes below
      const colorBar = hmFig?.get("axes")?.[2];
      if (colorBar?.set) {
        if (want === "difference") {
          if (!savedBar) savedBar = { tick_values: colorBar.get("tick_values") };
          const r = diffRange(rows);
          colorBar.set({ tick_values: Float64Array.of(-r, -r / 2, 0, r / 2, r), label: "difference" });
        } else {
          if (savedBar) colorBar.set(savedBar);
          savedBar = null;
          if (colorBar.get("label") !== label(m)) colorBar.set("label", label(m));
        }
      }
      // the cells' tooltips name what they show (compare_link reads the heatmap's labels)
      if (want === "difference") {
        if (!savedLabels) savedLabels = { ...(hm.get("metric_labels") || {}) };
        const diffLabels = Object.fromEntries((model.get("metrics") || []).map(
          (k) => [k, differenceTitle(names(), savedLabels[k] || label(k))]));
        hm.set("metric_labels", diffLabels);
      } else if (savedLabels) {
        hm.set("metric_labels", savedLabels);
        savedLabels = null;
      }
      if (want === "difference") {
        if (!saved && sc) saved = { min: sc.get("min"), max: sc.get("max"), scheme: sc.get("scheme") };
        const r = diffRange(rows);
        hm.set("color", rows);
        sc?.set({ min: -r, max: r, scheme: "RdBu" });
      } else {
        hm.set("color", rows);
        if (saved && sc) sc.set(saved);
        saved = null;
      }
      shown = want;
      const title = want === "difference" ? differenceTitle(names(), label(m)) : label(m);
      if (hmFig && hmFig.get("title") !== title) hmFig.set("title", title);

    } finally { applying = false; }
  }

  function drawChart() {
    // the kernel draws the chart itself; without one, switch it to this metric's series
    const s = data()?.gap;
    if (live() || marks.length < 6) return;
    if (!s) {  // not precomputed for this metric (costly chance levels): say so, draw nothing
      for (const mk of marks) mk.set("visible", false);
      chart.set("title", `${gapTitle(names())}: not in this page for ${label(metric())}`);
      return;
    }
    // x first: the layers drawn may differ by metric (a layer whose score is undefined)
    for (const mk of marks) mk.set({ x: Array.from(s.layers), visible: true });
    const arr = (k) => Float64Array.from(s[k], (v) => (v == null ? NaN : v));
    marks[0].set("y", [arr("low_b"), arr("high_b")]);
    marks[1].set("y", [arr("low_c"), arr("high_c")]);
    for (const [mk, side] of [[marks[2], "b"], [marks[3], "c"], [marks[4], "b"], [marks[5], "c"]]) mk.set("y", arr(`score_${side}`));
    marks[4].set("opacities", s.significant.map((v) => (v ? 1 : 0.4)));
    chart.set("title", gapTitle(names()));
    const yAxis = chart.get("axes")?.[1];  // the y axis names the metric
    if (yAxis?.set) yAxis.set("label", label(metric()));
  }

  function decorate() {
    const d = data();
    if (hm) overlayState(hm).set(d?.faint || {});  // the heatmap's overlay hatches them
    const fig = root()?.querySelector(".cnnlens-gap-chart");
    if (fig) setIfChanged(fig, "data-points", d?.gap ? d.gap.layers.length : 0);
    setIfChanged(el, "data-faint", Object.keys(d?.faint || {}).length);
  }
  let queued = false;
  const schedule = () => { if (!queued) { queued = true; queueMicrotask(() => { queued = false; decorate(); }); } };

  function show() {
    const m = metric();
    const d = data();
    setIfChanged(el, "data-metric", m);
    setIfChanged(el, "data-mode", model.get("mode"));
    setIfChanged(el, "data-ready", d ? "1" : "0");
    const reason = model.get("difference_reason");
    bar.hidden = !chart;  // no reference: nothing to switch
    for (const b of modeButtons) {
      const on = model.get("mode") === b.dataset.mode;
      b.setAttribute("aria-pressed", String(on));
      b.disabled = b.dataset.mode === "difference" && !!reason;
      b.title = b.dataset.mode === "difference"
        ? (reason || `the heatmap shows ${names()[1]} minus ${names()[2]}: red where ${names()[1]} is less similar to ${names()[0]}`)
        : `the heatmap shows ${label(m)} of ${names()[0]} and ${names()[1]}`;
    }
    why.textContent = reason && chart ? reason : "";
    const names_ = model.get("datasets") || [];
    if (setButtons.length !== names_.length) {
      setButtons = names_.map((n) => {
        const b = document.createElement("button");
        b.type = "button"; b.dataset.dataset = n; b.textContent = n;
        b.title = `show the matrices computed on the ${n} images`;
        b.addEventListener("click", (ev) => {
          ev.preventDefault();
          model.set("dataset", n);
          save(model);
          shown = "stale";  // repaint from that dataset's matrices
          show();
        });
        return b;
      });
      const head = document.createElement("span");
      head.className = "cnnlens-note";
      head.textContent = "images:";
      sets.replaceChildren(...(setButtons.length ? [head, ...setButtons] : []));
    }
    sets.hidden = setButtons.length === 0;
    // without a kernel the spectra are those precomputed for one dataset: say which
    const spec = model.get("spectra_dataset");
    if (setButtons.length) {
      let note = sets.querySelector(".cnnlens-datasets-note");
      if (!note) { note = document.createElement("span"); note.className = "cnnlens-note cnnlens-datasets-note"; sets.append(note); }
      note.textContent = `panes: the ${names_[0]} images` + (spec && spec !== model.get("dataset") ? `; spectrum: the ${spec} images` : "");
    }
    for (const b of setButtons) b.setAttribute("aria-pressed", String(b.dataset.dataset === model.get("dataset")));
    setIfChanged(el, "data-dataset", model.get("dataset") || null);
    const list = model.get("warnings") || [];
    warn.replaceChildren(...list.map((w) => { const li = document.createElement("li"); li.textContent = w; return li; }));
    warn.hidden = list.length === 0;
    if (!live() && hm) hm.set("notes", d?.notes || {});  // the kernel sets them itself
    drawChart();
    paintMode();
    schedule();
  }

  function onColor() {
    if (applying) return;
    // the kernel or compare_link's offline metric switch painted: repaint from our matrices
    // when we hold this metric's (the difference, or another dataset's scores)
    shown = "stale";
    queueMicrotask(() => { try { paintMode(); } catch (err) { console.error("cnnlens trust_link:", err); } });
  }

  function onPoint(k) {
    const pair = pairOfPoint(data()?.gap, k);
    if (!pair || !hm) return;
    const now = lastPair(hm.get("selected"));
    if (!now || now[0] !== pair[0] || now[1] !== pair[1]) { hm.set("selected", [pair]); save(hm); }
  }

  function onSelected() {
    const k = pointOfPair(data()?.gap, lastPair(hm.get("selected")));
    const fig = root()?.querySelector(".cnnlens-gap-chart");
    if (fig) setIfChanged(fig, "data-selected", k >= 0 ? k : null);
    for (const p of points) {
      if (firstIndex(p.get("selected")) !== (k >= 0 ? k : null)) { p.set("selected", k >= 0 ? [k] : null); save(p); }
    }
  }

  const on = (m, ev, fn) => { if (m) L.model(m, ev, fn); };
  for (const b of modeButtons) {
    L.dom(b, "click", (ev) => {
      ev.preventDefault();
      model.set("mode", b.dataset.mode);
      save(model);
      show();
    });
  }
  for (const k of ["per_metric", "warnings", "mode", "difference_reason", "scores", "differences", "dataset", "datasets"]) {
    on(model, `change:${k}`, () => { if (k === "differences" || k === "scores") shown = shown === "difference" ? "stale" : shown; show(); });
  }
  on(hm, "change:metric", () => queueMicrotask(show));  // after compare_link's own switch
  on(hm, "change:color", onColor);
  on(hm, "change:selected", onSelected);
  on(hmFig, "change:title", () => { if (!applying && shown === "difference") { shown = "stale"; queueMicrotask(paintMode); } });
  for (const p of points) on(p, "change:selected", () => onPoint(firstIndex(p.get("selected"))));

  // the gap chart's element carries data-points / data-selected once the Compare is there
  watchHeatmap(el, L, () => {}, (r) => {
    // the gap chart may come after the Compare: look again whenever it grows
    compare = r;
    if (hm) onSelected();
    schedule();
  });
  show();
  if (hm) onSelected();

  return () => L.dispose();
}

export default { render };
