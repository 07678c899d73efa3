// Mirror of the cnnlens/encode/ package: payload dicts with binary buffers -> typed arrays.
// Buffers arrive as DataView (live kernel, html-manager export), ArrayBuffer, a typed
// array, or base64 text (hand-written state); all are accepted.

/**
 * @param {unknown} v
 * @returns {Uint8Array|null}
 */
export function bytesOf(v) {
  if (v == null) return null;
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (typeof v === "string") {
    const bin = atob(v);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  if (typeof v === "object" && "buffer" in v) return bytesOf(/** @type {any} */ (v).buffer);
  throw new TypeError(`cannot read binary payload from ${Object.prototype.toString.call(v)}`);
}

/** IEEE 754 half -> float (Float16Array is not available in every browser yet). */
export function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Little-endian float32/float16 bytes -> Float32Array (copies, so alignment never matters).
 * @param {unknown} v
 * @param {string} [dtype]
 */
export function floats(v, dtype = "float32") {
  const b = bytesOf(v);
  if (!b) return new Float32Array(0);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dtype === "float16") {
    const out = new Float32Array(b.byteLength >> 1);
    for (let i = 0; i < out.length; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
    return out;
  }
  const out = new Float32Array(b.byteLength >> 2);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}

/** Little-endian int32 bytes -> Int32Array. */
export function ints(v) {
  const b = bytesOf(v);
  if (!b) return new Int32Array(0);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Int32Array(b.byteLength >> 2);
  for (let i = 0; i < out.length; i++) out[i] = dv.getInt32(4 * i, true);
  return out;
}

/**
 * Decode an activation payload (encode_maps) into tiles.
 * Vectors become one "row" of D cells sharing one scale: n = D, h = w = 1 per cell.
 * @param {any} p
 * @returns {null | {kind:string, layer:string, imageIndex:number, n:number, h:number, w:number,
 *   data:Uint8Array, offset:Float32Array, scale:Float32Array, channels:Int32Array, total:number,
 *   page:number, pages:number, downsample:number, sourceShape:number[], nonfinite:number}}
 */
export function decodeMaps(p) {
  if (!p || !p.data || !p.shape) return null;
  const data = bytesOf(p.data);
  const vector = p.kind === "vector";
  const [n, h, w] = vector ? [p.shape[0], 1, 1] : p.shape;
  if (data.length !== n * h * w) {
    throw new Error(`payload for ${p.layer}: ${data.length} bytes, expected ${n}x${h}x${w}`);
  }
  let offset = floats(p.offset, p.scale_dtype);
  let scale = floats(p.scale, p.scale_dtype);
  if (vector) {
    // one shared scale: expand so every cell is addressed like a tile
    offset = new Float32Array(n).fill(offset[0] ?? 0);
    scale = new Float32Array(n).fill(scale[0] ?? 0);
  }
  let channels = p.channels != null ? ints(p.channels) : null;
  if (!channels) {
    channels = new Int32Array(n);
    for (let i = 0; i < n; i++) channels[i] = (p.first ?? 0) + i;
  }
  return {
    kind: vector ? "vector" : "maps", layer: p.layer ?? "", imageIndex: p.image_index ?? 0,
    n, h, w, data, offset, scale, channels, total: p.total ?? n, page: p.page ?? 0,
    pages: p.pages ?? 1, downsample: p.downsample ?? 1, sourceShape: p.source_shape ?? [n, h, w],
    nonfinite: p.nonfinite ?? 0,
  };
}

/** Value of quantised q in tile i. */
export function valueAt(dec, i, q) {
  return dec.offset[i] + dec.scale[i] * q;
}

/** [min, max] of tile i (the full-resolution range, even when downsampled). */
export function rangeOf(dec, i) {
  return [dec.offset[i], dec.offset[i] + 255 * dec.scale[i]];
}

/** Per-tile mean and max of the dequantised data (for sorting within a page). */
export function tileStats(dec) {
  const { n, h, w, data } = dec;
  const px = h * w;
  const mean = new Float32Array(n);
  const max = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    let m = 0;
    for (let j = i * px, e = j + px; j < e; j++) {
      s += data[j];
      if (data[j] > m) m = data[j];
    }
    mean[i] = valueAt(dec, i, s / px);
    max[i] = valueAt(dec, i, m);
  }
  return { mean, max };
}

/** Decode encode_images: {n, h, w, c, data} with data laid out (n, h, w, c). */
export function decodeImages(p) {
  if (!p || !p.data || !p.shape) return null;
  const [n, h, w, c] = p.shape;
  const data = bytesOf(p.data);
  if (data.length !== n * h * w * c) throw new Error(`image payload: ${data.length} bytes, expected ${n * h * w * c}`);
  return { n, h, w, c, data };
}

/** Decode encode_weights. */
export function decodeWeights(p) {
  if (!p || !p.shape) return null;
  if (p.mode === "norms") {
    return { mode: "norms", layer: p.layer ?? "", out: p.shape[0], norms: floats(p.norms), sourceShape: p.source_shape };
  }
  const [out, cin, kh, kw] = p.shape;
  const data = bytesOf(p.data);
  if (data.length !== out * cin * kh * kw) throw new Error(`weights payload for ${p.layer}: wrong size`);
  return {
    mode: p.mode, layer: p.layer ?? "", out, cin, kh, kw, data,
    offset: floats(p.offset, p.scale_dtype), scale: floats(p.scale, p.scale_dtype), sourceShape: p.source_shape,
  };
}
