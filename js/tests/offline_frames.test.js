// Kernel-less fallbacks of the filter view and the neuron detail: the live traits first,
// the exported frames (per layer) when the live ones are for another selection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeModel } from "./helpers.js";
import { filterOf, filterSource, frameTop } from "../lib/frames.js";
import { decodeWeights } from "../lib/decode.js";
import { drawHistogram } from "../filter_grid.js";
import { kernelSource, topSource } from "../neuron_detail.js";

const f32 = (a) => new DataView(new Float32Array(a).buffer);
const i32 = (a) => new DataView(new Int32Array(a).buffer);
function weights(layer, out = 2, cin = 2) {
  const data = new Uint8Array(out * cin * 4).map((_, i) => i);
  return { format: 1, kind: "weights", layer, mode: "kernels", shape: [out, cin, 2, 2], source_shape: [out, cin, 2, 2],
    data: new DataView(data.buffer), offset: f32(Array(out).fill(0)), scale: f32(Array(out).fill(1)), scale_dtype: "float32" };
}
const hist = { counts: f32([1, 3, 2]), centres: f32([-1, 0, 1]) };
const filtersModel = () => new FakeModel({ layer: "conv1", payload: weights("conv1"), weights_layer: "conv1", note: "", error: "",
  frames: { conv1: { weights_layer: "conv1", note: "", error: "", histogram: hist },
    relu: { weights_layer: "conv1", note: "filters of conv1", error: "", histogram: hist },
    conv2: { weights_layer: "conv2", note: "", error: "", histogram: null } },
  frame_weights: { conv1: weights("conv1"), conv2: weights("conv2", 3) } });

test("filters: live traits for their layer, the frame for another, live when no frame", () => {
  const m = filtersModel();
  const g = new FakeModel({ layer: "conv1" });
  assert.equal(filterSource(m, g).source, "live");
  assert.equal(filterSource(m, g).histogram, hist, "the live layer's histogram comes from its frame");
  g.set("layer", "conv2");
  const s = filterSource(m, g);
  assert.deepEqual([s.source, s.layer, s.weights_layer, s.payload.shape[0]], ["frame", "conv2", "conv2", 3]);
  g.set("layer", "relu");
  assert.equal(filterSource(m, g).note, "filters of conv1");
  g.set("layer", "fc");  // not exported: the (stale) live view, no histogram
  assert.deepEqual([filterSource(m, g).source, filterSource(m, g).histogram], ["live", null]);
});

test("filters: histogram bars from precomputed counts", () => {
  const box = document.createElement("div");
  drawHistogram(box, hist, "conv1");
  assert.equal(box.hidden, false);
  assert.equal(box.querySelectorAll("rect").length, 3);
  assert.deepEqual([box.dataset.bins, box.dataset.total], ["3", "6"]);
  assert.match(box.textContent, /weights of conv1/);
  drawHistogram(box, null, "");
  assert.equal(box.hidden, true);
});

test("detail: top images from the live payload first, else the layer's frame row", () => {
  const g = new FakeModel({ layer: "conv1", neuron: 1, image_index: 0 });
  const d = new FakeModel({ layer: "conv1", neuron: 1, image_index: 0, top_status: "ready",
    top: { images: {}, indices: i32([5, 6]), scores: f32([2, 1]), by: "mean" },
    frames: { conv2: { indices: i32([0, 1, 2, 3, 7, 4]), scores: f32([6, 5, 4, 3, 9, 8]), k: 2, channels: 3, by: "mean", error: "" } },
    frame_images: { ids: i32([0, 1, 2, 3, 4, 7]), images: {} } });
  const live = topSource(d, g);
  assert.deepEqual([live.status, live.source, Array.from(live.top.indices)], ["ready", "live", [5, 6]]);
  g.set("layer", "conv2");
  g.set("neuron", 2);
  const fr = topSource(d, g);
  assert.deepEqual([fr.status, fr.source, Array.from(fr.top.indices), Array.from(fr.top.scores)],
    ["ready", "frame", [7, 4], [9, 8]]);
  assert.deepEqual(Array.from(fr.top.ids), [0, 1, 2, 3, 4, 7]);
  g.set("neuron", 3);  // past the layer's channels: no row
  assert.equal(frameTop(d, g), null);
  assert.equal(topSource(d, g).status, "pending");
  g.set("layer", "fc");  // not exported, no kernel answer: pending, nothing shown
  assert.deepEqual([topSource(d, g).status, topSource(d, g).top], ["pending", null]);
  g.set("neuron", -1);
  assert.equal(topSource(d, g).status, "none");
});

test("detail: filter cut from the filter view's frame when the kernel's is for another selection", () => {
  const f = filtersModel();
  const g = new FakeModel({ layer: "conv2", neuron: 2, image_index: 0 });
  const d = new FakeModel({ layer: "conv1", neuron: 0, image_index: 0, kernels: weights("conv1", 1) });
  const w = kernelSource(d, g, f);
  assert.deepEqual([w.out, w.cin, Array.from(w.data)], [1, 2, Array.from({ length: 8 }, (_, i) => 16 + i)]);
  const one = filterOf(decodeWeights(weights("x", 3)), 5);
  assert.equal(one, null, "no such filter");
  g.set("layer", "conv1");
  g.set("neuron", 0);
  assert.equal(kernelSource(d, g, f).out, 1, "the kernel's own payload when current");
  assert.equal(kernelSource(d, g, null).layer, "conv1");
});
