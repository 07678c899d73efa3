// View tests: render each entry against fake models, assert the DOM contract
// (data-* attributes, .cnnlens-error), what goes back to the model, and cleanup.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { FakeModel, click, manager, mapsPayload, mockCanvas, sleep } from "./helpers.js";
import grid from "../activation_grid.js";
import tree from "../layer_tree.js";
import filters from "../filter_grid.js";
import picker from "../image_picker.js";
import detail from "../neuron_detail.js";

let restore;
before(() => { restore = mockCanvas(); });
after(() => restore());

function gridModel(extra = {}) {
  return new FakeModel({
    layer: "conv1", neuron: -1, image_index: 0, page: 0, payload: mapsPayload({ n: 4, h: 3, w: 3 }),
    frames: {}, layers: ["conv1", "relu"], normalize: "channel", sort: "index", colormap: "viridis", error: "", ...extra,
  });
}

async function mount(entry, model) {
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = await entry.render({ model, el });
  return { el, cleanup };
}

// 3x3 tiles: zoom floor(64 / 3) = 21 CSS px per native px, tiles 4 native px apart.
const tileX = (slot) => slot * 4 * 21 + 5;

test("grid: paints, exposes data-*, click selects a neuron at once, cleanup removes everything", async () => {
  const m = gridModel();
  const { el, cleanup } = await mount(grid, m);
  const root = el.querySelector(".cnnlens-grid");
  assert.equal(root.dataset.rendered, "1");
  assert.equal(root.dataset.layer, "conv1");
  assert.equal(root.dataset.neuron, "-1");
  assert.equal(root.dataset.image, "0");
  const canvas = el.querySelector("canvas.cnnlens-canvas");
  assert.equal(canvas.__ctx.calls.length, 1, "one putImageData per paint");
  assert.equal(canvas.width, 4 * 4 - 1);
  assert.ok(el.querySelector(".cnnlens-error").hidden);
  click(canvas, tileX(2), 10);
  assert.equal(m.get("neuron"), 2);
  assert.deepEqual(m.saved, [{ neuron: 2 }]);
  assert.equal(root.dataset.neuron, "2");
  assert.equal(el.querySelector(".cnnlens-mark.sel").hidden, false);
  click(canvas, 4 * 21 - 3, 10);  // the gap between tiles 0 and 1: nothing
  assert.equal(m.saved.length, 1);

  assert.ok(m.listenerCount() > 0);
  cleanup();
  assert.equal(m.listenerCount(), 0, "every model listener removed");
  assert.equal(el.querySelector(".cnnlens-grid"), null);
  click(canvas, tileX(1), 10);
  assert.equal(m.saved.length, 1, "no DOM listener left");
});

test("grid: hover is debounced and shows channel and value range", async () => {
  const m = gridModel({ payload: mapsPayload({ n: 2, h: 3, w: 3, offsets: [0, -1], scales: [1 / 255, 2 / 255] }) });
  const { el, cleanup } = await mount(grid, m);
  const canvas = el.querySelector("canvas");
  const tip = el.querySelector(".cnnlens-tip");
  canvas.dispatchEvent(new MouseEvent("mousemove", { clientX: tileX(1), clientY: 3 }));
  assert.ok(tip.hidden, "not yet: debounced");
  await sleep(50);
  assert.equal(tip.hidden, false);
  assert.match(tip.textContent, /^ch 1 · range \[-1, 1\]/);
  assert.equal(el.querySelector(".cnnlens-grid").dataset.hover, "1");
  cleanup();
});

test("grid: waits for the kernel on a new layer, then paints it; errors show in place", async () => {
  const m = gridModel();
  const { el, cleanup } = await mount(grid, m);
  const root = el.querySelector(".cnnlens-grid");
  m.set("layer", "relu");
  assert.equal(root.dataset.rendered, "0");
  assert.equal(root.dataset.layer, "conv1", "still shows what is painted");
  m.remote({ payload: mapsPayload({ layer: "relu", n: 6 }) });
  assert.equal(root.dataset.rendered, "1");
  assert.equal(root.dataset.layer, "relu");
  assert.equal(root.dataset.tiles, "6");
  m.remote({ error: "ForwardError: boom", payload: { layer: "relu", image_index: 0 } });
  const err = el.querySelector(".cnnlens-error");
  assert.equal(err.hidden, false);
  assert.equal(err.textContent, "ForwardError: boom");
  assert.equal(root.dataset.rendered, "1");
  m.remote({ error: "", payload: mapsPayload({ layer: "relu", n: 6 }) });
  assert.ok(err.hidden, "error cleared; the view is usable again");
  cleanup();
});

test("grid: precomputed frames render without a kernel", async () => {
  const m = gridModel({ payload: {}, frames: { "relu|3": mapsPayload({ layer: "relu", image: 3, n: 5 }) },
    layer: "relu", image_index: 3 });
  const { el, cleanup } = await mount(grid, m);
  const root = el.querySelector(".cnnlens-grid");
  assert.deepEqual([root.dataset.rendered, root.dataset.layer, root.dataset.tiles], ["1", "relu", "5"]);
  m.set("image_index", 4);
  assert.equal(root.dataset.rendered, "0", "no frame for image 4");
  cleanup();
});

test("grid: sort, per-layer colour, pages and downsampling are said in the view", async () => {
  const p = mapsPayload({ n: 3, h: 3, w: 3, fill: (i) => (Math.floor(i / 9) === 1 ? 200 : 10), offsets: [0, 0, 0], scales: [1, 1, 1] });
  Object.assign(p, { pages: 3, page: 1, total: 9, first: 3, downsample: 2, source_shape: [9, 6, 6] });
  const m = gridModel({ payload: p, sort: "mean" });
  const { el, cleanup } = await mount(grid, m);
  const note = el.querySelector(".cnnlens-note").textContent;
  assert.match(note, /9 channels of 6×6/);
  assert.match(note, /downsampled 2× to 3×3/);
  assert.match(note, /page 2\/3/);
  click(el.querySelector("canvas"), tileX(0), 5);
  assert.equal(m.get("neuron"), 4, "slot 0 holds the channel with the highest mean");
  el.querySelector(".cnnlens-pager button:last-child").click();
  assert.deepEqual(m.saved.at(-1), { page: 1 }, "next page requested from the model's page");
  const [, normSel] = el.querySelectorAll("select");
  normSel.value = "layer";
  normSel.dispatchEvent(new Event("change"));
  assert.equal(m.get("normalize"), "layer");
  assert.match(el.querySelector(".cnnlens-note").textContent, /colour per layer/);
  cleanup();
});

function treeNodes() {
  return [
    { name: "features", type: "Sequential", kind: "block", shape: [8, 4, 4], params: 100, depth: 1, parent: -1 },
    { name: "features.0", type: "Conv2d", kind: "conv", shape: [8, 8, 8], params: 80, depth: 2, parent: 0 },
    { name: "features.1", type: "ReLU", kind: "activation", shape: [8, 8, 8], params: 0, depth: 2, parent: 0 },
    { name: "features.1:1", type: "ReLU", kind: "activation", shape: [8, 4, 4], params: 0, depth: 2, parent: 0 },
    { name: "head", type: "Identity", kind: "other", shape: null, params: 0, depth: 1, parent: -1 },
  ];
}

test("tree: rows per layer, click selects in the grid model at once, toggles collapse", async () => {
  const g = gridModel({ layer: "features.0" });
  const m = new FakeModel({ nodes: treeNodes(), grid: "IPY_MODEL_g" }, manager({ g }));
  const { el, cleanup } = await mount(tree, m);
  const rows = () => [...el.querySelectorAll(".cnnlens-tree [data-layer-name]")];
  assert.equal(rows().length, 5);
  const sel = el.querySelector('[aria-selected="true"]');
  assert.equal(sel.dataset.layerName, "features.0");
  click(el.querySelector('[data-layer-name="features.1:1"]'));
  assert.equal(g.get("layer"), "features.1:1");
  assert.deepEqual(g.saved, [{ layer: "features.1:1" }]);
  assert.equal(el.querySelector('[aria-selected="true"]').dataset.layerName, "features.1:1");
  click(el.querySelector('[data-layer-name="head"]'));
  assert.equal(g.get("layer"), "features.1:1", "a layer that never ran is not selectable");
  click(el.querySelector('[data-layer-name="features"] .cnnlens-toggle'));
  assert.equal(rows().length, 2, "children hidden when collapsed");
  assert.equal(el.querySelector('[data-layer-name="features"]').getAttribute("aria-expanded"), "false");
  g.set("layer", "features.0");  // selection made elsewhere: reveal it
  assert.equal(rows().length, 5);
  cleanup();
  assert.equal(g.listenerCount(), 0);
});

test("tree: keyboard moves the selection; the kernel hears the last stop only", async () => {
  const g = gridModel({ layer: "features.0" });
  const m = new FakeModel({ nodes: treeNodes(), grid: "IPY_MODEL_g" }, manager({ g }));
  const { el, cleanup } = await mount(tree, m);
  const root = el.querySelector(".cnnlens-tree");
  const key = (k) => root.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
  key("ArrowDown");
  key("ArrowDown");
  assert.equal(g.get("layer"), "features.1:1");
  assert.equal(g.saved.length, 0);
  await sleep(160);
  assert.deepEqual(g.saved, [{ layer: "features.1:1" }]);
  key("ArrowLeft");  // to the parent
  assert.equal(g.get("layer"), "features");
  key("ArrowLeft");  // collapse it
  assert.equal(el.querySelectorAll("[data-layer-name]").length, 2);
  key("Enter");
  assert.deepEqual(g.saved.at(-1), { layer: "features" });
  cleanup();
});

test("filters: rgb tiles, click selects the same neuron in the grid, selection follows", async () => {
  const g = gridModel();
  const data = new Uint8Array(4 * 3 * 3 * 3).fill(100);
  const payload = { mode: "rgb", layer: "conv1", shape: [4, 3, 3, 3], source_shape: [4, 3, 3, 3], data,
    offset: new Float32Array(4).buffer, scale: new Float32Array(4).fill(0.01).buffer, scale_dtype: "float32" };
  const m = new FakeModel({ payload, layer: "conv1", weights_layer: "conv1", note: "", selected: {}, error: "", grid: "IPY_MODEL_g" }, manager({ g }));
  const { el, cleanup } = await mount(filters, m);
  const root = el.querySelector(".cnnlens-filters");
  assert.deepEqual([root.dataset.rendered, root.dataset.layer, root.dataset.mode], ["1", "conv1", "rgb"]);
  // 3x3 filters: zoom floor(48 / 3) = 16, tiles 4 native px apart
  click(el.querySelector("canvas"), 3 * 4 * 16 + 2, 2);
  assert.equal(g.get("neuron"), 3);
  assert.deepEqual(g.saved, [{ neuron: 3 }]);
  assert.equal(root.dataset.neuron, "3");
  m.set("payload", { mode: "norms", layer: "conv9", shape: [4], norms: Float32Array.of(1, 2, 3, 4).buffer });
  assert.equal(root.dataset.mode, "norms");
  m.set("selected", { ...payload, shape: [1, 3, 3, 3], data: data.subarray(0, 27) });
  assert.ok(!el.querySelector(".cnnlens-filter-selected").parentElement.hidden);
  cleanup();
  assert.equal(g.listenerCount(), 0);
  assert.equal(m.listenerCount(), 0);
});

test("picker: thumbnails, click sets image_index in the grid model", async () => {
  const g = gridModel();
  const thumbs = { kind: "images", shape: [3, 4, 4, 3], data: new Uint8Array(3 * 4 * 4 * 3) };
  const m = new FakeModel({ thumbs, count: 10, error: "", grid: "IPY_MODEL_g" }, manager({ g }));
  const { el, cleanup } = await mount(picker, m);
  const items = el.querySelectorAll(".cnnlens-thumb");
  assert.equal(items.length, 3);
  assert.match(el.querySelector(".cnnlens-note").textContent, /10 images \(first 3 shown\)/);
  click(items[2].querySelector("canvas"));
  assert.deepEqual(g.saved, [{ image_index: 2 }]);
  assert.equal(items[2].getAttribute("aria-selected"), "true");
  m.set("error", "upload failed: not an image");
  assert.equal(el.querySelector(".cnnlens-error").textContent, "upload failed: not an image");
  cleanup();
  assert.equal(g.listenerCount(), 0);
});

test("detail: follows the grid in JS (tile fallback), then the kernel's payload; top-k and opacity", async () => {
  const g = gridModel();
  const m = new FakeModel({ layer: "conv1", neuron: -1, image_index: 0, channel: {}, image: {}, kernels: {}, top: {},
    by: "mean", k: 8, opacity: 0.6, error: "", grid: "IPY_MODEL_g" }, manager({ g }));
  const { el, cleanup } = await mount(detail, m);
  const root = el.querySelector(".cnnlens-detail");
  assert.deepEqual([root.dataset.neuron, root.dataset.rendered], ["-1", "1"]);
  g.set("neuron", 2);
  g.save_changes();  // as the grid's click does
  assert.deepEqual([root.dataset.neuron, root.dataset.layer, root.dataset.source, root.dataset.rendered], ["2", "conv1", "grid", "0"]);
  assert.match(el.querySelector(".cnnlens-note").textContent, /from the grid tile/);
  const top = { images: { shape: [2, 4, 4, 3], data: new Uint8Array(96) }, indices: Int32Array.of(7, 1).buffer,
    scores: Float32Array.of(3, 2).buffer, by: "mean" };
  m.remote({ neuron: 2, channel: mapsPayload({ n: 1, h: 6, w: 6 }), image: { shape: [1, 6, 6, 3], data: new Uint8Array(108) }, top });
  assert.deepEqual([root.dataset.source, root.dataset.rendered], ["live", "1"]);
  const thumbs = el.querySelectorAll(".cnnlens-top .cnnlens-thumb");
  assert.equal(thumbs.length, 2);
  click(thumbs[0]);
  assert.deepEqual(g.saved.at(-1), { image_index: 7 });
  const slider = el.querySelector('input[type="range"]');
  slider.value = "0.2";
  slider.dispatchEvent(new Event("input"));
  assert.equal(m.get("opacity"), 0.2);
  assert.equal(el.querySelector(".cnnlens-detail-channel").style.opacity, "0.2");
  assert.equal(m.saved.length, 0, "slider saves debounced");
  await sleep(200);
  assert.deepEqual(m.saved, [{ opacity: 0.2 }]);
  m.remote({ error: "IndexError: channel 2 out of range", image_index: 7 });  // for the image picked above
  assert.equal(el.querySelector(".cnnlens-error").hidden, false);
  cleanup();
  assert.equal(g.listenerCount(), 0);
  assert.equal(m.listenerCount(), 0);
});

test("detail: top images rank off the kernel thread: data-topk pending, then ready; errors in place", async () => {
  const g = gridModel({ neuron: 1 });
  const m = new FakeModel({ layer: "conv1", neuron: 1, image_index: 0, channel: mapsPayload({ n: 1, h: 6, w: 6 }),
    image: {}, kernels: {}, top: {}, top_status: "pending", by: "mean", k: 8, opacity: 0.6, error: "",
    grid: "IPY_MODEL_g" }, manager({ g }));
  const { el, cleanup } = await mount(detail, m);
  const root = el.querySelector(".cnnlens-detail");
  const note = el.querySelector(".cnnlens-top-status");
  // the kernel answered the click at once (channel shown) and ranks in the background
  assert.deepEqual([root.dataset.rendered, root.dataset.topk], ["1", "pending"]);
  assert.equal(note.textContent, "ranking images…");
  assert.equal(note.hidden, false);
  assert.equal(el.querySelector(".cnnlens-top").getAttribute("aria-busy"), "true");
  const top = { images: { shape: [3, 4, 4, 3], data: new Uint8Array(144) }, indices: Int32Array.of(5, 0, 2).buffer,
    scores: Float32Array.of(3, 2, 1).buffer, by: "mean" };
  m.remote({ top, top_status: "ready" });
  assert.equal(root.dataset.topk, "ready");
  assert.equal(note.hidden, true);
  assert.equal(el.querySelectorAll(".cnnlens-top .cnnlens-thumb").length, 3);
  // a new neuron in JS: the old ranking is not shown for it, and no "ranking" claim until
  // the kernel says so (an exported page has no kernel to wait for)
  g.set("neuron", 3);
  assert.deepEqual([root.dataset.topk, note.textContent], ["pending", ""]);
  assert.equal(el.querySelectorAll(".cnnlens-top .cnnlens-thumb").length, 0);
  m.remote({ neuron: 3, top: {}, top_status: "pending" });
  assert.equal(note.textContent, "ranking images…");
  m.remote({ top_status: "error", error: "ForwardError: sensor unplugged" });
  assert.equal(root.dataset.topk, "error");
  assert.equal(el.querySelector(".cnnlens-error").textContent, "ForwardError: sensor unplugged");
  assert.equal(note.hidden, true);
  g.set("neuron", -1);
  assert.equal(root.dataset.topk, "none");
  cleanup();
  assert.equal(g.listenerCount(), 0);
  assert.equal(m.listenerCount(), 0);
});
