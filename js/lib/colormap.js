// Colour maps as 256-entry RGBA lookup tables, and the per-tile remap tables that
// implement per-channel vs per-layer normalisation without touching the pixel data.

// Control points (evenly spaced), sampled from matplotlib's maps.
const STOPS = {
  viridis: ["440154", "482878", "3e4989", "31688e", "26828e", "1f9e89", "35b779", "6ece58", "b5de2b", "fde725"],
  magma: ["000004", "180f3d", "440f76", "721f81", "9e2f7f", "cd4071", "f1605d", "fd9668", "feca8d", "fcfdbf"],
  gray: ["000000", "ffffff"],
  rdbu: ["2166ac", "4393c3", "92c5de", "d1e5f0", "f7f7f7", "fddbc7", "f4a582", "d6604d", "b2182b"],
};

export const COLORMAPS = Object.keys(STOPS);
const cache = new Map();

/**
 * 256 x RGBA lookup table for a named colour map.
 * @param {string} name
 * @returns {Uint8ClampedArray}
 */
export function lut(name) {
  const key = STOPS[name] ? name : "viridis";
  if (cache.has(key)) return cache.get(key);
  const stops = STOPS[key].map((h) => [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)));
  const out = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2);
    const f = t - k;
    for (let c = 0; c < 3; c++) out[4 * i + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
    out[4 * i + 3] = 255;
  }
  cache.set(key, out);
  return out;
}

/** CSS colour of LUT entry i (for legends). */
export function cssColor(table, i) {
  const j = 4 * Math.max(0, Math.min(255, Math.round(i)));
  return `rgb(${table[j]},${table[j + 1]},${table[j + 2]})`;
}

/** Table mapping a tile's q (value lo + scale * q) onto a symmetric range [-m, m]: zero -> middle. */
function centredTable(lo, scale, m) {
  const t = new Uint8Array(256);
  for (let q = 0; q < 256; q++) {
    t[q] = m > 0 ? Math.max(0, Math.min(255, Math.round(((lo + scale * q) / m + 1) * 127.5))) : 128;
  }
  return t;
}

/**
 * Per-tile remap q -> LUT index.
 * "channel": identity (q already spans the tile's own min..max).
 * "layer": q is re-expressed on the range shared by all tiles [gmin, gmax].
 * centre (for a diverging map): the range is made symmetric about zero, so zero is the
 * map's middle: per tile in "channel" mode, over the layer in "layer" mode.
 * @param {{n:number, offset:Float32Array, scale:Float32Array}} dec
 * @param {"channel"|"layer"} mode
 * @param {boolean} [centre]
 * @returns {{remap: (Uint8Array|null)[], gmin:number, gmax:number}} the range painted
 */
export function remapTables(dec, mode, centre = false) {
  let gmin = Infinity;
  let gmax = -Infinity;
  for (let i = 0; i < dec.n; i++) {
    gmin = Math.min(gmin, dec.offset[i]);
    gmax = Math.max(gmax, dec.offset[i] + 255 * dec.scale[i]);
  }
  if (!(gmax > gmin)) { gmin = 0; gmax = 1; }
  if (centre) { const m = Math.max(Math.abs(gmin), Math.abs(gmax)); gmin = -m; gmax = m; }
  const remap = new Array(dec.n).fill(null);
  if (mode !== "layer") {
    if (centre) {
      for (let i = 0; i < dec.n; i++) {
        const lo = dec.offset[i], hi = lo + 255 * dec.scale[i];
        remap[i] = centredTable(lo, dec.scale[i], Math.max(Math.abs(lo), Math.abs(hi)));
      }
    }
    return { remap, gmin, gmax };
  }
  const k = 255 / (gmax - gmin);
  const shared = new Map();  // vectors share one scale: build its table once
  for (let i = 0; i < dec.n; i++) {
    const key = `${dec.offset[i]}:${dec.scale[i]}`;
    let t = shared.get(key);
    if (!t) {
      t = new Uint8Array(256);
      for (let q = 0; q < 256; q++) {
        t[q] = Math.max(0, Math.min(255, Math.round((dec.offset[i] + dec.scale[i] * q - gmin) * k)));
      }
      shared.set(key, t);
    }
    remap[i] = t;
  }
  return { remap, gmin, gmax };
}

/**
 * Paint quantised values into an RGBA buffer through a LUT (and optional remap).
 * @param {Uint8ClampedArray} rgba destination (4 * count)
 * @param {Uint8Array} q source values
 * @param {number} start first source index
 * @param {number} count number of pixels
 * @param {Uint8ClampedArray} table LUT
 * @param {Uint8Array|null} remap
 * @param {number} [dst] first destination pixel
 */
export function colorize(rgba, q, start, count, table, remap, dst = 0) {
  for (let j = 0; j < count; j++) {
    const v = remap ? remap[q[start + j]] : q[start + j];
    const s = 4 * v;
    const d = 4 * (dst + j);
    rgba[d] = table[s];
    rgba[d + 1] = table[s + 1];
    rgba[d + 2] = table[s + 2];
    rgba[d + 3] = 255;
  }
}
