// Test helpers: happy-dom globals, a recording 2D context, and a fake widget model
// (get/set/save_changes/on/off + widget_manager) standing in for the Backbone model.
import { GlobalRegistrator } from "@happy-dom/global-registrator";

if (!globalThis.document) GlobalRegistrator.register();

/** A canvas 2D context that records what is drawn (happy-dom has no canvas). */
export function recordingContext(canvas) {
  const calls = [];
  return {
    canvas, calls,
    createImageData(w, h) { return { width: w, height: h, data: new Uint8ClampedArray(4 * w * h) }; },
    putImageData(img, x, y) { calls.push({ op: "putImageData", img, x, y }); },
  };
}

/** Route canvas.getContext("2d") to recording contexts; returns a restore function. */
export function mockCanvas() {
  const proto = globalThis.HTMLCanvasElement.prototype;
  const orig = proto.getContext;
  proto.getContext = function getContext() {
    if (!this.__ctx) this.__ctx = recordingContext(this);
    return this.__ctx;
  };
  return () => { proto.getContext = orig; };
}

export class FakeModel {
  constructor(state = {}, manager = null) {
    this.state = { ...state };
    this.handlers = new Map();
    this.saved = [];
    this.widget_manager = manager;
  }

  get(k) { return this.state[k]; }

  set(k, v) {
    this.state[k] = v;
    this.pending = { ...(this.pending || {}), [k]: v };
    for (const fn of [...(this.handlers.get(`change:${k}`) || [])]) fn();
  }

  /** A change coming from the kernel: fires change events, nothing to save. */
  remote(patch) {
    Object.assign(this.state, patch);
    for (const k of Object.keys(patch)) for (const fn of [...(this.handlers.get(`change:${k}`) || [])]) fn();
  }

  save_changes() { this.saved.push(this.pending || {}); this.pending = null; }

  on(ev, fn) {
    if (!this.handlers.has(ev)) this.handlers.set(ev, new Set());
    this.handlers.get(ev).add(fn);
  }

  off(ev, fn) { this.handlers.get(ev)?.delete(fn); }

  listenerCount() { let n = 0; for (const s of this.handlers.values()) n += s.size; return n; }
}

/** A manager resolving "IPY_MODEL_<id>" references to fake models. */
export function manager(models) {
  return { get_model: async (id) => models[id] };
}

export function click(el, x = 0, y = 0) {
  el.dispatchEvent(new MouseEvent("click", { bubbles: true, clientX: x, clientY: y }));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A maps payload like cnnlens.encode.encode_maps makes (float32 scales). */
export function mapsPayload({ layer = "conv1", n = 4, h = 3, w = 3, image = 0, offsets, scales, fill } = {}) {
  const data = new Uint8Array(n * h * w);
  for (let i = 0; i < data.length; i++) data[i] = fill ? fill(i) : (i * 37) % 256;
  const off = new Float32Array(offsets ?? Array.from({ length: n }, (_, i) => -i));
  const sc = new Float32Array(scales ?? Array.from({ length: n }, (_, i) => (i + 1) / 255));
  return {
    format: 1, kind: "maps", layer, image_index: image, shape: [n, h, w], data: new DataView(data.buffer),
    offset: new DataView(off.buffer), scale: new DataView(sc.buffer), scale_dtype: "float32",
    channels: null, first: 0, total: n, page: 0, pages: 1, downsample: 1, source_shape: [n, h, w], nonfinite: 0,
  };
}
