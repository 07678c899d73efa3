// Feature visualisation panel of the neuron pane (js/lib/featvis.js): which image shows for
// the grid's selection (live, exported frame, none), the button's requests, progress, errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { FakeModel, click, mockCanvas } from "./helpers.js";
import { Listeners } from "../lib/dom.js";
import { featvisPanel, visSource } from "../lib/featvis.js";

let restore;
before(() => { restore = mockCanvas(); });
after(() => restore());

class Detail extends FakeModel {
  constructor(state, manager) { super(state, manager); this.sent = []; }
  send(msg) { this.sent.push(msg); }
}

const image = (n, h = 4, w = 4) => ({ format: 1, kind: "images", shape: [n, h, w, 1], data: new Uint8Array(n * h * w) });
const vis = (neuron) => ({ layer: "conv3", neuron, activation: 2.5, steps: 256, seed: 0, size: [4, 4], image: image(1) });
const live = { widget_manager: { kernel: {} } };  // a manager with a kernel: a live notebook

function setup(state = {}, grid = {}) {
  const g = new FakeModel({ layer: "conv3", neuron: 5, ...grid });
  const m = new Detail({ vis: {}, vis_key: "", vis_status: "none", vis_progress: 0, vis_error: "", vis_frames: {},
    ...state }, live.widget_manager);
  const L = new Listeners();
  const panel = featvisPanel(m, g, L);
  document.body.append(panel.el);
  panel.draw();
  return { g, m, L, panel, el: panel.el };
}

test("visSource: live result for the selection, else an exported frame, else the status", () => {
  const g = new FakeModel({ layer: "conv3", neuron: 5 });
  const m = new Detail({ vis: vis(5), vis_key: "conv3|5", vis_status: "ready", vis_frames: {} });
  assert.deepEqual([visSource(m, g).status, visSource(m, g).source], ["ready", "live"]);
  g.set("neuron", 6);  // the live image is for neuron 5
  assert.deepEqual([visSource(m, g).status, visSource(m, g).source], ["none", "none"]);
  m.remote({ vis_frames: { conv3: { channels: Int32Array.of(2, 6).buffer, activations: Float32Array.of(1, 7).buffer,
    image: image(2), total: 64, steps: 64, seed: 0 } } });
  const s = visSource(m, g);
  assert.deepEqual([s.status, s.source, s.vis.at, s.vis.activation, s.vis.steps], ["ready", "frame", 1, 7, 64]);
  g.set("neuron", -1);
  assert.equal(visSource(m, g).status, "none");
});

test("panel: the button asks the kernel, progress shows while running, cancel, result, errors in place", () => {
  const { m, L, el } = setup();
  const button = el.querySelector("button");
  assert.equal(el.dataset.vis, "none");
  click(button);
  assert.deepEqual(m.sent, [{ event: "visualize", layer: "conv3", neuron: 5 }]);
  m.remote({ vis_key: "conv3|5", vis_status: "running", vis_progress: 0.25 });
  const bar = el.querySelector("progress");
  assert.deepEqual([el.dataset.vis, bar.hidden, bar.value, button.textContent], ["running", false, 0.25, "cancel"]);
  assert.match(el.querySelector(".cnnlens-featvis-note").textContent, /25 %/);
  click(button);
  assert.deepEqual(m.sent.at(-1), { event: "cancel" });
  m.remote({ vis: vis(5), vis_status: "ready", vis_progress: 1 });
  const canvas = el.querySelector("canvas");
  assert.deepEqual([el.dataset.vis, el.dataset.visSource, canvas.hidden, bar.hidden], ["ready", "live", false, true]);
  assert.equal(canvas.getContext("2d").calls.at(-1).img.width, 4);  // painted at its own size
  assert.match(el.querySelector(".cnnlens-featvis-note").textContent, /activation 2\.5 · 256 steps/);
  m.remote({ layer: "conv3", neuron: 5, top_status: "ready", top: { by: "mean", scores: Float32Array.of(1.25, 1).buffer } });
  assert.match(el.querySelector(".cnnlens-featvis-note").textContent, /activation 2\.5 \(best image 1\.25\) · 256/);
  m.remote({ vis_key: "conv3|5", vis_status: "error", vis_error: "IndexError: channel 5 out of range" });
  assert.equal(el.querySelector(".cnnlens-error").hidden, false);
  L.dispose();
  assert.equal(m.listenerCount(), 0);
});

test("panel: with no kernel (an exported page) the frame shows, or a note says it was not exported", () => {
  const g = new FakeModel({ layer: "conv3", neuron: 6 });
  const m = new Detail({ vis: {}, vis_key: "", vis_status: "none", vis_progress: 0, vis_error: "",
    vis_frames: { conv3: { channels: Int32Array.of(6).buffer, activations: Float32Array.of(4).buffer,
      image: image(1), total: 64, steps: 256, seed: 0 } } }, { get_model: async () => null });  // no kernel
  const L = new Listeners();
  const panel = featvisPanel(m, g, L);
  panel.draw();
  assert.deepEqual([panel.el.dataset.visSource, panel.el.querySelector("canvas").hidden], ["frame", false]);
  g.set("neuron", 7);
  panel.draw();
  assert.equal(panel.el.querySelector(".cnnlens-featvis-note").textContent, "not exported for this channel");
  L.dispose();
});
