// Which payload belongs to the selection model's current state: the live one, or a
// precomputed frame (kernel-less pages) for the activation grid, filters and top images.

import { floats, ints } from "./decode.js";

/**
 * Payload to paint for the grid model's selection: the live payload when it matches,
 * else a precomputed frame (kernel-less pages), else null (the kernel is still computing).
 * @param {any} grid the ActivationGrid model
 */
export function currentPayload(grid) {
  const layer = grid.get("layer");
  const image = grid.get("image_index");
  const page = grid.get("page") ?? 0;
  const live = grid.get("payload");
  const matches = live && live.layer === layer && (live.image_index ?? 0) === image;
  const frame = (grid.get("frames") || {})[`${layer}|${image}`];
  if (matches && (!frame || (live.page ?? 0) === page || page !== 0)) return live;
  if (frame && page === 0) return frame;
  return matches ? live : null;
}

/**
 * What a page without a kernel holds: the layers and images of the grid's precomputed
 * frames, or null when a kernel computes on demand (or nothing was exported). Views offer
 * only these in a static page (issue 11: the rest showed "computing…" forever).
 * @param {any} grid the ActivationGrid model
 * @param {boolean} live whether a kernel stands behind the page
 * @returns {null | {layers: Set<string>, images: Set<number>}}
 */
export function frameCoverage(grid, live) {
  const keys = Object.keys((grid && grid.get("frames")) || {});
  if (live || !keys.length) return null;
  const layers = new Set(), images = new Set();
  for (const k of keys) {
    const at = k.lastIndexOf("|");
    layers.add(k.slice(0, at));
    images.add(Number(k.slice(at + 1)));
  }
  return { layers, images };
}

/** Why a layer or image is not offered in a static page (the row's and thumbnail's tooltip). */
export const NOT_EXPORTED = "not in this page: it was exported without it (export it with layers=/images= to include it)";

/**
 * One channel of a decoded maps payload as a single-tile decoded object, or null if the
 * channel is not on that page.
 */
export function channelOf(dec, channel) {
  if (!dec) return null;
  const i = dec.channels.indexOf(channel);
  if (i < 0) return null;
  const px = dec.h * dec.w;
  return {
    ...dec, n: 1, data: dec.data.subarray(i * px, (i + 1) * px),
    offset: dec.offset.subarray(i, i + 1), scale: dec.scale.subarray(i, i + 1),
    channels: Int32Array.of(channel), total: 1, pages: 1, page: 0,
  };
}

/**
 * What the filter view shows for the grid's layer: its live traits when they are for that
 * layer (or no frame is), else the exported frame (kernel-less pages). `histogram` comes
 * only from frames: live, the kernel draws it in a bqplot figure.
 * @param {any} model the FilterGrid model
 * @param {any} grid the ActivationGrid model (null: the filter model's own layer)
 */
export function filterSource(model, grid) {
  const liveLayer = model.get("layer");
  const layer = grid ? grid.get("layer") : liveLayer;
  const frame = (model.get("frames") || {})[layer];
  if (liveLayer === layer || !frame) {
    return { layer: liveLayer, payload: model.get("payload"), weights_layer: model.get("weights_layer"),
      note: model.get("note"), error: model.get("error"),
      histogram: liveLayer === layer ? frame?.histogram ?? null : null, source: "live" };
  }
  const wl = frame.weights_layer || "";
  return { layer, payload: wl ? (model.get("frame_weights") || {})[wl] ?? {} : {}, weights_layer: wl,
    note: frame.note ?? "", error: frame.error ?? "", histogram: frame.histogram ?? null, source: "frame" };
}

/** One output filter of decoded (non-norms) weights as a one-filter decoded object, or null. */
export function filterOf(w, o) {
  if (!w || w.mode === "norms" || o < 0 || o >= w.out) return null;
  const n = w.cin * w.kh * w.kw;
  return { ...w, out: 1, data: w.data.subarray(o * n, (o + 1) * n),
    offset: w.offset.subarray(o, o + 1), scale: w.scale.subarray(o, o + 1),
    sourceShape: [1, ...(w.sourceShape || []).slice(1)] };
}

/**
 * The exported top-k table row of the grid's neuron (kernel-less pages), or null.
 * @returns {null | {indices:Int32Array, scores:Float32Array, by:string}}
 */
export function frameTop(model, grid) {
  const n = grid.get("neuron");
  const f = (model.get("frames") || {})[grid.get("layer")];
  if (n < 0 || !f || f.error || !f.k || n >= f.channels) return null;
  const k = f.k;
  return { indices: ints(f.indices).subarray(n * k, (n + 1) * k),
    scores: floats(f.scores).subarray(n * k, (n + 1) * k), by: f.by };
}
