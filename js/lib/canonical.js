// Pure helpers of the canonical-maps view (js/canonical_view.js); mirror of
// cnnlens/encode/canonical.py: decode its two payloads, pick a page's frame, and turn one
// direction's map (optionally over the input image) into RGBA pixels. Unit-tested.
import { colorize, remapTables } from "./colormap.js";
import { bytesOf, decodeImages, decodeMaps, floats, ints } from "./decode.js";

/** Pair payload (encode_canonical_pair) -> typed arrays; null when empty. */
export function decodePair(p) {
  if (!p || p.k == null || !p.rho) return null;
  const k = p.k, n = p.n ?? 0;
  return {
    k, n, rho: floats(p.rho), metric: p.metric ?? "", convention: p.convention ?? "",
    layerA: p.layer_a ?? "", layerB: p.layer_b ?? "", names: p.names ?? ["A", "B"],
    pair: p.pair ?? [], topA: ints(p.top_a), topB: ints(p.top_b),
    thumbIndex: ints(p.thumb_index), thumbs: p.thumbs ? decodeImages(p.thumbs) : null,
  };
}

/** Image payload (encode_canonical_image) -> decoded maps, corr and the input; null when empty. */
export function decodeImage(p) {
  if (!p || !p.maps_a || !p.maps_b) return null;
  return {
    image: p.image ?? null, a: decodeMaps(p.maps_a), b: decodeMaps(p.maps_b),
    corr: floats(p.corr), input: p.input ? decodeImages(p.input) : null,
  };
}

/**
 * The exported frame of `pair` on `image` out of `frames` ({"i,j": {...pair, images: {n: img}}}).
 * @returns {{pairData:any, imageData:any}|{missing:string}}
 */
export function frameFor(frames, pair, image) {
  if (!pair || pair.length !== 2) return { missing: "" };
  const f = (frames || {})[`${pair[0]},${pair[1]}`];
  if (!f) return { missing: "the maps of this pair are not in this page (exported without them)" };
  const img = (f.images || {})[String(image)];
  if (!img) return { missing: `the maps of image ${image} are not in this page; its images: ${Object.keys(f.images || {}).join(", ") || "none"}` };
  return { pairData: f, imageData: img };
}

/** Last index of a bqplot Scatter `selected` (array or typed array), or null. */
export function directionOf(selected) {
  if (selected == null || selected.length === 0) return null;
  const d = Number(selected[selected.length - 1]);
  return Number.isInteger(d) && d >= 0 ? d : null;
}

/** Top dataset indices of direction `d` on one side (-1 slots dropped). */
export function topOf(pairDec, side, d) {
  const top = side === "a" ? pairDec.topA : pairDec.topB;
  const out = [];
  for (let t = 0; t < pairDec.n; t++) {
    const slot = top[d * pairDec.n + t];
    if (slot >= 0) out.push({ slot, index: pairDec.thumbIndex[slot] });
  }
  return out;
}

/**
 * RGBA pixels of map `i` of a decodeMaps() result, zero in the middle of the diverging
 * table (each map on its own symmetric range: variates are in std units, yet maps of two
 * layers differ in spread). A vector payload (a fully connected side) gives one pixel.
 * @returns {{w:number, h:number, data:Uint8ClampedArray}}
 */
export function mapPixels(dec, i, table) {
  const { remap } = remapTables(dec, "channel", true);
  const px = dec.h * dec.w;
  const data = new Uint8ClampedArray(4 * px);
  colorize(data, dec.data, i * px, px, table, remap[i]);
  return { w: dec.w, h: dec.h, data };
}

/**
 * Map `i` over the input image (n=1 decodeImages()) at the image's resolution: the image in
 * grey, the map's colour blended on with `alpha` (nearest map cell: the map's own grid
 * stays visible). Without an image, the map alone.
 */
export function overlayPixels(input, dec, i, table, alpha = 0.6) {
  const map = mapPixels(dec, i, table);
  if (!input) return map;
  const { h: H, w: W, c: C, data: src } = input;
  const out = new Uint8ClampedArray(4 * H * W);
  for (let y = 0; y < H; y++) {
    const my = Math.min(map.h - 1, Math.floor((y * map.h) / H));
    for (let x = 0; x < W; x++) {
      const mx = Math.min(map.w - 1, Math.floor((x * map.w) / W));
      const s = (y * W + x) * C;
      const grey = C === 3 ? 0.299 * src[s] + 0.587 * src[s + 1] + 0.114 * src[s + 2] : src[s];
      const m = 4 * (my * map.w + mx), d = 4 * (y * W + x);
      for (let c = 0; c < 3; c++) out[d + c] = Math.round(alpha * map.data[m + c] + (1 - alpha) * grey);
      out[d + 3] = 255;
    }
  }
  return { w: W, h: H, data: out };
}

/** Caption of direction d: "ρ1 0.93" and, when defined, the maps' correlation on this image. */
export function caption(pairDec, imageDec, d) {
  const rho = pairDec.rho[d];
  const r = imageDec?.corr?.[d];
  return { head: `ρ${d + 1} ${Number.isFinite(rho) ? rho.toFixed(2) : "–"}`,
    sub: Number.isFinite(r) ? `maps r ${r.toFixed(2)}` : "" };
}

/** Bytes of a payload's binary parts (for the footer of a page). */
export function payloadBytes(p) {
  if (p == null) return 0;
  if (typeof p === "string") return 0;
  if (ArrayBuffer.isView(p) || p instanceof ArrayBuffer) return bytesOf(p).length;
  if (typeof p === "object") return Object.values(p).reduce((s, v) => s + payloadBytes(v), 0);
  return 0;
}
