// Layout and page-mode behaviour found in screenshots: tiles fit the width they are given,
// tooltips stay inside their box, the tree marks one row only, and a page without a kernel
// hides what needs one (and says it is static).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { FakeModel, manager, mapsPayload, mockCanvas } from "./helpers.js";
import grid, { gridLayout } from "../activation_grid.js";
import tree, { rowTitle } from "../layer_tree.js";
import { hasKernel, placeTip } from "../lib/dom.js";
import { decodeMaps } from "../lib/decode.js";

let restore;
before(() => { restore = mockCanvas(); });
after(() => restore());

async function mount(entry, model) {
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = await entry.render({ model, el });
  return { el, cleanup };
}

function gridModel(wm, extra = {}) {
  return new FakeModel({
    layer: "conv1", neuron: -1, image_index: 0, page: 0, payload: mapsPayload({ n: 12, h: 8, w: 8 }),
    frames: {}, layers: ["conv1"], normalize: "channel", sort: "index", colormap: "viridis", error: "", ...extra,
  }, wm);
}

test("gridLayout: tiles reflow to the width and are never drawn wider than it", () => {
  const dec = decodeMaps(mapsPayload({ n: 12, h: 8, w: 8 }));
  for (const width of [100, 300, 500, 900]) {
    const L = gridLayout(dec, width);
    assert.ok(L.width * L.zoom <= width, `canvas ${L.width * L.zoom} px in a ${width} px box`);
  }
  assert.ok(gridLayout(dec, 900).cols > gridLayout(dec, 300).cols, "a wider box holds more columns");
  const big = decodeMaps(mapsPayload({ n: 2, h: 56, w: 56 }));  // one tile would be 56 px at zoom 1
  assert.equal(gridLayout(big, 40).zoom, 1, "zoom floors at 1");
  const wide = decodeMaps(mapsPayload({ n: 2, h: 20, w: 20 }));  // 60 px at zoom 3: more than 50 px
  assert.ok(gridLayout(wide, 50).width * gridLayout(wide, 50).zoom <= 50);
});

test("placeTip keeps the tooltip inside its box, flipping near the right and bottom edges", () => {
  const tip = document.createElement("div");
  Object.defineProperty(tip, "offsetWidth", { value: 100 });
  Object.defineProperty(tip, "offsetHeight", { value: 20 });
  placeTip(tip, 10, 10, 400, 300);
  assert.deepEqual([tip.style.left, tip.style.top, tip.hidden], ["22px", "22px", false]);
  placeTip(tip, 350, 290, 400, 300);
  assert.deepEqual([tip.style.left, tip.style.top], ["238px", "258px"]);
});

test("hasKernel: Lab/Voila managers have a kernel, the exported page's html-manager has none", () => {
  assert.equal(hasKernel({ widget_manager: { kernel: {} } }), true);
  assert.equal(hasKernel({ widget_manager: { get_model() {} } }), false);
  assert.equal(hasKernel({ widget_manager: { kernel: null } }), false);
  assert.equal(hasKernel({}), true, "no manager at all: assume live");
});

test("grid: a static page hides the pager and says it is static; a live one does not", async () => {
  const off = await mount(grid, gridModel(manager({})));
  const root = off.el.querySelector(".cnnlens-grid");
  assert.ok(root.classList.contains("cnnlens-static"));
  assert.equal(off.el.querySelector(".cnnlens-static-badge").textContent, "static page");
  assert.ok(off.el.querySelector(".cnnlens-pager").classList.contains("cnnlens-needs-kernel"));
  off.cleanup();
  const on = await mount(grid, gridModel({ ...manager({}), kernel: {} }));
  assert.ok(!on.el.querySelector(".cnnlens-grid").classList.contains("cnnlens-static"));
  assert.equal(on.el.querySelector(".cnnlens-static-badge"), null);
  on.cleanup();
});

function treeNodes() {
  return [
    { name: "features", type: "Sequential", kind: "block", shape: [8, 4, 4], params: 1234, depth: 1, parent: -1 },
    { name: "features.0", type: "Conv2d", kind: "conv", shape: [8, 8, 8], params: 80, depth: 2, parent: 0 },
    { name: "features.1", type: "ReLU", kind: "activation", shape: [8, 8, 8], params: 0, depth: 2, parent: 0 },
  ];
}

test("tree: the keyboard cursor follows a selection made elsewhere: one marked row only", async () => {
  const g = gridModel(null, { layer: "features.0" });
  const m = new FakeModel({ nodes: treeNodes(), grid: "IPY_MODEL_g" }, manager({ g }));
  const { el, cleanup } = await mount(tree, m);
  el.querySelector('[data-layer-name="features.1"]').dispatchEvent(new MouseEvent("click", { bubbles: true }));
  assert.deepEqual([...el.querySelectorAll(".cnnlens-tree-row.focus")].map((r) => r.dataset.layerName), ["features.1"]);
  g.set("layer", "features");  // the heatmap, the grid's select or Python chose another layer
  const marked = [...el.querySelectorAll(".cnnlens-tree-row.focus")].map((r) => r.dataset.layerName);
  const selected = [...el.querySelectorAll('[aria-selected="true"]')].map((r) => r.dataset.layerName);
  assert.deepEqual(marked, ["features"]);
  assert.deepEqual(selected, ["features"]);
  cleanup();
});

test("tree rows carry their full text as a tooltip (a narrow tree cuts it short)", () => {
  assert.equal(rowTitle(treeNodes()[0]), "features · Sequential · (8×4×4) · 1,234 parameters");
  assert.equal(rowTitle({ name: "head", type: "Identity", shape: null, params: 0 }), "head · Identity · not run");
});
