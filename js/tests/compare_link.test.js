import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeModel, manager, sleep } from "./helpers.js";
import widget, { indexTicks, lastPair, lineState, matrixRows, spectrumFor } from "../compare_link.js";
import { HATCH_ID, CHANCE_HATCH_ID, HeatmapOverlay, cellAt, cellBox, cellTitle, ensureHatches, overlayState, plotArea } from "../lib/heatmap_view.js";

const SVG = "http://www.w3.org/2000/svg";

/** Backbone-style set(key, value) and set({key: value, ...}) (change events after all keys). */
class Model extends FakeModel {
  set(k, v) {
    const obj = typeof k === "object" ? k : { [k]: v };
    Object.assign(this.state, obj);
    this.pending = { ...(this.pending || {}), ...obj };
    for (const key of Object.keys(obj)) {
      for (const fn of [...(this.handlers.get(`change:${key}`) || [])]) fn();
    }
  }
}

/** The heatmap figure's element as bqplot leaves it: a box of `width` x `height` px. */
function drawFigure(root, width = 330, height = 260) {
  root.querySelector(".cnnlens-heatmap")?.remove();
  const fig = document.createElement("div");
  fig.className = "cnnlens-heatmap";
  fig.getBoundingClientRect = () => ({ left: 0, top: 0, x: 0, y: 0, width, height, right: width, bottom: height });
  root.appendChild(fig);
  return fig;
}

test("lastPair reads every form of bqplot's `selected`", () => {
  assert.equal(lastPair(null), null);
  assert.equal(lastPair([]), null);
  assert.deepEqual(lastPair([[1, 2]]), [1, 2]);                       // a click
  assert.deepEqual(lastPair([[0, 0], [3, 4]]), [3, 4]);                // ctrl-click: last wins
  assert.deepEqual(lastPair([Int32Array.of(2, 5)]), [2, 5]);           // deserialized from Python
  assert.deepEqual(lastPair(Int32Array.of(1, 1, 7, 8)), [7, 8]);      // flat typed array
  assert.equal(lastPair([["a", "b"]]), null);
});

test("cellTitle mirrors heatmap.cell_text: value, undefined with reason, pending", () => {
  assert.equal(cellTitle("conv1", "fc", "svcca", 0.8349, null), "A: conv1\nB: fc\nsvcca = 0.835");
  assert.equal(cellTitle("a", "b", "pwcca", NaN, "layer b is constant"),
    "A: a\nB: b\npwcca undefined: layer b is constant");
  assert.equal(cellTitle("a", "b", "svcca", NaN, null), "A: a\nB: b\nsvcca: pending");
});

test("spectrumFor slices the NaN-padded (La, Lb, K) buffer; lineState draws or hides a line", () => {
  const [la, lb, k] = [2, 3, 4];
  const spectra = new Float32Array(la * lb * k).fill(NaN);
  const base = new Float32Array(la * lb * k).fill(NaN);
  spectra.set([0.9, 0.5, 0.25], (1 * lb + 2) * k);
  base.set([0.3, 0.1], (1 * lb + 2) * k);
  const s = spectrumFor(spectra, base, [la, lb, k], 1, 2);
  assert.deepEqual(Array.from(s.rho), [0.8999999761581421, 0.5, 0.25]);
  assert.equal(s.base.length, 2);
  assert.equal(spectrumFor(spectra, base, [la, lb, k], 0, 0).rho.length, 0);   // undefined pair
  assert.equal(spectrumFor(spectra, base, [la, lb, k], 2, 0), null);          // out of range
  assert.equal(spectrumFor(new Float32Array(0), null, [], 0, 0), null);        // nothing precomputed
  const line = lineState(s.rho);
  assert.deepEqual(Array.from(line.x), [1, 2, 3]);
  assert.equal(line.visible, true);
  assert.deepEqual(lineState(s.base).x.length, 2);
  const empty = lineState(new Float32Array(0));
  assert.deepEqual([Array.from(empty.x), Array.from(empty.y), empty.visible], [[1], [0], false]);
});

test("indexTicks: at most 8 round integer ticks in 1..n (mirror of spectrum.index_ticks)", () => {
  assert.deepEqual(Array.from(indexTicks(1)), [1]);
  assert.deepEqual(Array.from(indexTicks(4)), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(indexTicks(11)), [1, 3, 5, 7, 9, 11]);
  assert.deepEqual(Array.from(indexTicks(64)), [1, 10, 20, 30, 40, 50, 60]);
  assert.deepEqual(Array.from(indexTicks(2000)), [1, 500, 1000, 1500, 2000]);
  assert.deepEqual(Array.from(indexTicks(0)), [1]);
});

test("matrixRows picks one metric's slab of the stacked matrices", () => {
  const m = Float32Array.from([0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]);  // 2 metrics x (2, 3)
  const rows = matrixRows(m, ["svcca", "linear_cka"], [2, 3], "linear_cka");
  assert.deepEqual(rows.map((r) => Array.from(r)), [[10, 11, 12], [13, 14, 15]]);
  assert.equal(matrixRows(m, ["svcca"], [2, 3], "pwcca"), null);
});

test("plot area and cells from public information: fig_margin, aspect limits, counts", () => {
  const a = plotArea(330, 260, { top: 20, bottom: 40, left: 50, right: 80 });
  assert.deepEqual(a, { x: 50, y: 20, width: 200, height: 200 });
  assert.equal(plotArea(1000, 5, { top: 0, bottom: 0, left: 0, right: 0 }, 0.01, 100).width, 500, "aspect clamped as bqplot does");
  assert.deepEqual(cellBox(200, 100, 2, 4, 0, 1), { x: 50, y: 0, width: 50, height: 50 });
  assert.deepEqual(cellBox(200, 100, 2, 4, 0, 1, false), { x: 50, y: 50, width: 50, height: 50 }, "row 0 at the bottom");
  assert.deepEqual(cellAt(200, 100, 2, 4, 120, 70), [1, 2]);
  assert.deepEqual(cellAt(200, 100, 2, 4, 120, 70, false), [0, 2]);
  assert.equal(cellAt(200, 100, 2, 4, 200, 70), null, "outside the plot");
});

test("overlay: labels, indices, hatches, values, highlights; idempotent; disposed whole", () => {
  const root = document.createElement("div");
  document.body.appendChild(root);
  const fig = drawFigure(root, 300, 220);
  const info = { rows: ["a0", "a1"], cols: ["b0", "b1"], values: [[0.5, NaN], [NaN, 0.95]], metric: "svcca",
    reasons: { "0,1": "b1 is constant" }, notes: {}, faint: { "1,1": "not above chance" }, names: ["A", "B"],
    highlight: { row: 1, column: -1 }, scale: { min: 0, max: 1, scheme: "viridis" },
    margin: { top: 10, bottom: 10, left: 50, right: 50 }, rowsDown: true };
  const ov = new HeatmapOverlay(fig, () => info, { selected: () => null, select: () => {} });
  const cells = Array.from(fig.querySelectorAll("svg.cnnlens-heatmap-overlay rect.cnnlens-cell"));
  assert.equal(cells.length, 4);
  assert.equal(cells[0].getAttribute("aria-label"), "A: a0\nB: b0\nsvcca = 0.500");
  assert.equal(cells[1].getAttribute("aria-label"), "A: a0\nB: b1\nsvcca undefined: b1 is constant");
  assert.deepEqual([cells[1].getAttribute("data-row"), cells[1].getAttribute("data-col")], ["0", "1"]);
  assert.equal(cells[1].getAttribute("data-state"), "undefined");
  assert.equal(cells[1].getAttribute("fill"), `url(#${HATCH_ID})`);
  assert.equal(cells[2].getAttribute("data-state"), "pending");
  assert.equal(cells[2].getAttribute("fill"), "none", "pending: bqplot's null_color shows");
  assert.equal(cells[3].getAttribute("data-chance"), "below");
  assert.equal(cells[3].getAttribute("fill"), `url(#${CHANCE_HATCH_ID})`);
  assert.deepEqual(["x", "y", "width", "height"].map((k) => cells[3].getAttribute(k)), ["100.00", "100.00", "100.00", "100.00"]);
  const texts = Array.from(fig.querySelectorAll("text.cnnlens-cell-value"));
  assert.deepEqual(texts.map((t) => t.textContent), ["0.50", "", "", "0.95"]);
  assert.equal(texts[3].getAttribute("fill"), "#000", "dark text on viridis' yellow");
  assert.equal(texts[0].getAttribute("fill"), "#fff", "light text on viridis' teal");
  const svg = fig.querySelector("svg.cnnlens-heatmap-overlay");
  assert.deepEqual([svg.style.left, svg.style.top, svg.style.width], ["50px", "10px", "200px"]);
  const row = fig.querySelector("rect.cnnlens-hl-row");
  assert.deepEqual([row.getAttribute("visibility"), row.getAttribute("y"), row.getAttribute("width")], ["visible", "100.00", "200.00"]);
  assert.equal(fig.querySelector("rect.cnnlens-hl-column").getAttribute("visibility"), "hidden");
  const html = fig.innerHTML;
  ov.draw();
  assert.equal(fig.innerHTML, html, "a second pass changes nothing");
  info.values = Array.from({ length: 13 }, () => [0.1, 0.2]);  // too many rows: no values printed
  info.rows = Array.from({ length: 13 }, (_, i) => `r${i}`);
  ov.draw();
  assert.equal(fig.querySelectorAll("text.cnnlens-cell-value").length, 0);
  assert.equal(fig.querySelectorAll("rect.cnnlens-cell").length, 26);
  ov.dispose();
  assert.equal(fig.querySelector("svg.cnnlens-heatmap-overlay"), null);
  assert.equal(fig.querySelector(".cnnlens-heatmap-tip"), null);
  root.remove();
});

test("overlay hover: the cell under the pointer, its tip and outline; a cut tick label whole", () => {
  const root = document.createElement("div");
  document.body.appendChild(root);
  const fig = drawFigure(root, 300, 220);
  const info = { rows: ["conv1", "layer4.1.downsample.0"], cols: ["b0", "b1"], values: [[0.5, 0.25], [0.75, 1]],
    metric: "svcca", names: ["A", "B"], highlight: {}, margin: { top: 10, bottom: 10, left: 50, right: 50 },
    rowsDown: true, cut: { rows: { "layer4.1.downsample.0": "layer4.1.downsam…" }, cols: {} } };
  const ov = new HeatmapOverlay(fig, () => info, { selected: () => null, select: () => {} });
  ov.svg.getBoundingClientRect = () => ({ left: 50, top: 10, width: 200, height: 200 });  // the plot area
  ov.hover(50 + 150, 10 + 20);                                    // row 0, column 1
  assert.equal(fig.dataset.hoverCell, "0,1");
  assert.equal(ov.tip.hidden, false);
  assert.equal(ov.tip.textContent, "A: conv1\nB: b1\nsvcca = 0.250");
  const outline = fig.querySelector("rect.cnnlens-hover-cell");
  assert.deepEqual(["visibility", "x", "y"].map((k) => outline.getAttribute(k)), ["visible", "100.00", "0.00"]);
  ov.hover(50 - 20, 10 + 150);                                    // left of row 1: its label, cut
  assert.equal(ov.tip.textContent, "A: layer4.1.downsample.0");
  assert.equal(outline.getAttribute("visibility"), "hidden");
  assert.equal(fig.dataset.hoverCell, undefined);
  ov.hover(50 - 20, 10 + 50);                                     // left of row 0: not cut, no tip
  assert.equal(ov.tip.hidden, true);
  ov.hover(null);
  assert.equal(ov.tip.hidden, true);
  ov.dispose();
  root.remove();
});

test("ensureHatches adds one pair of patterns per document", () => {
  ensureHatches(document);
  ensureHatches(document);
  assert.equal(document.querySelectorAll(`#${HATCH_ID}`).length, 1);
  assert.equal(document.querySelectorAll(`#${CHANCE_HATCH_ID}`).length, 1);
});

/** A compare root with the link, heatmap cells and a spectrum wrapper, plus fake models. */
async function setup({ live = false, precomputed = true } = {}) {
  const rows = ["conv1", "fc"], cols = ["c1", "c2", "out"];
  const colorScale = new Model({ min: 0, max: 1, scheme: "viridis" }), rowScale = new Model({ reverse: true });
  const hm = new Model({ row: rows, column: cols, selected: null, metric: "svcca", reasons: { "1,2": "why" },
    color: [[0.1, 0.2, 0.3], [0.4, 0.5, NaN]], scales: { row: rowScale, color: colorScale } });
  const ga = new Model({ layer: "conv1" }), gb = new Model({ layer: "c1" });
  const curve = new Model({ x: null, y: null }), baseline = new Model({ x: null, y: null });
  const spec = new Model({ title: "", pair: [] }), picker = new Model({ index: 0 });
  const hmFig = new Model({ title: "svcca", fig_margin: { top: 20, bottom: 40, left: 50, right: 80 } });
  const models = { hm, ga, gb, curve, baseline, spec, picker, hmFig };
  // a manager with a kernel (JupyterLab) or without one (an exported page)
  const wm = { ...manager(models), ...(live ? { kernel: {} } : {}) };
  for (const m of Object.values(models)) m.widget_manager = wm;
  const [la, lb, k] = [2, 3, 3];
  const spectra = new Float32Array(la * lb * k).fill(NaN);
  spectra.set([0.9, 0.4], (0 * lb + 2) * k);
  const mats = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, NaN, 0.9, 0.8, 0.7, 0.6, 0.5, NaN]);
  const link = new Model({
    heatmap: "IPY_MODEL_hm", grid_a: "IPY_MODEL_ga", grid_b: "IPY_MODEL_gb", curve: "IPY_MODEL_curve",
    baseline: "IPY_MODEL_baseline", spectrum: "IPY_MODEL_spec", picker: "IPY_MODEL_picker", heatmap_figure: "IPY_MODEL_hmFig",
    metrics: ["svcca", "pwcca", "linear_cka"], spectra: precomputed ? new DataView(spectra.buffer) : null, baselines: null,
    spectra_shape: precomputed ? [la, lb, k] : [], matrices: new DataView(mats.buffer),
    matrix_metrics: ["svcca", "linear_cka"], matrix_reasons: { linear_cka: { "1,2": "cka why" } },
    progress_done: 0, progress_total: 6, stage: "pairs", status: "running", complete: false, error: "",
  }, wm);
  const root = document.createElement("div");
  root.className = "cnnlens-compare";
  document.body.appendChild(root);
  const el = document.createElement("div");
  root.appendChild(el);
  const specEl = document.createElement("div");
  specEl.className = "cnnlens-spectrum";
  root.appendChild(specEl);
  const fig = drawFigure(root);
  const cleanup = await widget.render({ model: link, el });
  const cells = () => Array.from(fig.querySelectorAll("rect.cnnlens-cell"));
  return { ...models, link, root, el, specEl, fig, cells, cleanup };
}

test("render: heatmap click -> both grids' layer, spectrum from precomputed data, data-* attributes", async () => {
  const t = await setup();
  t.hm.set("selected", [[0, 2]]);                                      // what bqplot's click sets
  await sleep(0);
  assert.equal(t.el.getAttribute("data-pair"), "0,2");
  assert.equal(t.ga.get("layer"), "conv1");
  assert.equal(t.gb.get("layer"), "out");
  assert.equal(t.gb.saved.length, 0, "no kernel: no save_changes (it would throw)");
  assert.deepEqual(Array.from(t.curve.get("y")), [0.8999999761581421, 0.4000000059604645]);
  assert.deepEqual(Array.from(t.curve.get("x")), [1, 2]);
  assert.equal(t.curve.get("visible"), true);
  assert.equal(t.baseline.get("visible"), false, "no baseline precomputed: hidden");
  assert.equal(t.specEl.getAttribute("data-pair"), "0,2");
  assert.equal(t.spec.get("title"), "A conv1 × B out");
  assert.equal(t.el.getAttribute("data-highlight-col"), "2");
  await sleep(0);
  assert.equal(t.root.querySelector("rect.cnnlens-hl-column").getAttribute("x"), "133.33");
  assert.equal(t.cells()[5].getAttribute("data-state"), "undefined");
  assert.match(t.cells()[5].getAttribute("aria-label"), /svcca undefined: why/);
  assert.equal(t.el.getAttribute("data-progress"), "0/6");
  assert.equal(t.el.getAttribute("data-rendered"), "0");
  t.link.set({ progress_done: 6, status: "done", complete: true });
  await sleep(0);
  assert.equal(t.el.getAttribute("data-progress"), "6/6");
  assert.equal(t.el.getAttribute("data-rendered"), "1");
  t.cleanup();
  t.root.remove();
});

test("render: live kernel -> grids are saved, heatmap colours are left to Python", async () => {
  const t = await setup({ live: true });
  t.hm.set("selected", [Int32Array.of(1, 0)]);
  await sleep(0);
  assert.equal(t.ga.get("layer"), "fc");
  assert.deepEqual(t.ga.saved, [{ layer: "fc" }]);
  assert.equal(t.gb.saved.length, 0, "unchanged layer is not re-sent");
  const before = t.hm.get("color");
  t.picker.set("index", 2);
  assert.equal(t.hm.get("color"), before, "live: the kernel repaints the matrix");
  assert.equal(t.el.getAttribute("data-metric"), "svcca", "the metric is the heatmap's");
  t.hm.remote({ metric: "linear_cka" });                              // the kernel's repaint
  assert.equal(t.el.getAttribute("data-metric"), "linear_cka");
  t.cleanup();
  t.root.remove();
});

test("render: offline metric switch repaints from the precomputed matrices", async () => {
  const t = await setup();
  t.picker.set("index", 2);
  assert.equal(t.el.getAttribute("data-metric"), "linear_cka");
  assert.deepEqual(t.hm.get("color").map((r) => Array.from(r).map((v) => Math.round(v * 10))),
    [[9, 8, 7], [6, 5, NaN]]);
  assert.deepEqual(t.hm.get("reasons"), { "1,2": "cka why" });
  assert.equal(t.hm.get("metric"), "linear_cka");
  assert.equal(t.hmFig.get("title"), "linear_cka", "no labels given: the key");
  t.cleanup();
  t.root.remove();
});

test("render: pane layer -> row/column highlight; errors in place; cleanup removes listeners", async () => {
  const t = await setup({ precomputed: false });
  t.ga.set("layer", "fc");
  t.gb.set("layer", "c2");
  assert.equal(t.el.getAttribute("data-highlight-row"), "1");
  assert.equal(t.el.getAttribute("data-highlight-col"), "1");
  await sleep(0);
  assert.equal(t.root.querySelector("rect.cnnlens-hl-row").getAttribute("y"), "100.00");
  t.hm.set("selected", [[1, 1]]);
  await sleep(0);
  assert.equal(t.curve.get("y"), null, "nothing precomputed: the kernel draws the spectrum");
  t.link.set({ spectra: new DataView(new Float32Array(18).fill(NaN).buffer), spectra_shape: [2, 3, 3] });
  t.hm.set("selected", [[1, 2]]);                                     // an undefined pair
  await sleep(0);
  assert.equal(t.curve.get("visible"), false);
  assert.equal(t.spec.get("title"), "A fc × B out: why");
  t.link.set("error", "model B: ForwardError: boom");
  const err = t.el.querySelector(".cnnlens-error");
  assert.equal(err.textContent, "model B: ForwardError: boom");
  assert.notEqual(err.style.display, "none");
  const before = [t.hm, t.ga, t.gb, t.picker, t.link].map((m) => m.listenerCount());
  assert.ok(before.every((n) => n > 0));
  t.cleanup();
  assert.deepEqual([t.hm, t.ga, t.gb, t.picker, t.link].map((m) => m.listenerCount()), [0, 0, 0, 0, 0]);
  assert.equal(t.fig.querySelector("svg.cnnlens-heatmap-overlay"), null, "the overlay goes with the view");
  t.root.remove();
});

test("render: a throw while following a click never reaches bqplot's click handler", async () => {
  const t = await setup();
  t.curve.set = () => { throw new Error("invalid format: .undefinedg"); };  // a bqplot redraw bug
  const logged = [];
  const orig = console.error;
  console.error = (...a) => logged.push(a.join(" "));
  try {
    assert.doesNotThrow(() => t.hm.set("selected", [[0, 2]]));  // bqplot would touch() next
    await sleep(0);
  } finally {
    console.error = orig;
  }
  assert.equal(t.gb.get("layer"), "out", "the panes followed before the failing redraw");
  assert.match(logged.join("\n"), /undefinedg/);
  t.cleanup();
  t.root.remove();
});

test("render: an exported page (no kernel) says so and is marked static; a live one is not", async () => {
  const off = await setup();
  assert.ok(off.el.classList.contains("cnnlens-static"));
  assert.match(off.el.querySelector(".cnnlens-compare-status").textContent, /static page/);
  off.cleanup();
  off.root.remove();
  const on = await setup({ live: true });
  assert.ok(!on.el.classList.contains("cnnlens-static"));
  assert.doesNotMatch(on.el.querySelector(".cnnlens-compare-status").textContent, /static/);
  on.cleanup();
  on.root.remove();
});
