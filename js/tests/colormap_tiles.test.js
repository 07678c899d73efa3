import { test } from "node:test";
import assert from "node:assert/strict";
import { recordingContext } from "./helpers.js";
import { colorize, cssColor, lut, remapTables } from "../lib/colormap.js";
import { hitTest, layout, paintTiles, slotOf, sortOrder, tileRect, zoomFor } from "../lib/tiles.js";
import { decodeMaps } from "../lib/decode.js";
import { filterLayout, kernelGrid, paintFilters } from "../lib/filters.js";
import { mapsPayload } from "./helpers.js";

test("LUTs: 256 RGBA entries, endpoints are the map's ends, unknown names fall back", () => {
  const v = lut("viridis");
  assert.equal(v.length, 1024);
  assert.deepEqual(Array.from(v.slice(0, 4)), [0x44, 0x01, 0x54, 255]);
  assert.deepEqual(Array.from(v.slice(1020)), [0xfd, 0xe7, 0x25, 255]);
  const g = lut("gray");
  for (let i = 0; i < 256; i++) assert.equal(g[4 * i], i);
  assert.equal(lut("nope"), v);
  assert.equal(cssColor(g, 300), "rgb(255,255,255)");
  const rdbu = lut("rdbu");
  assert.ok(rdbu[4 * 128] > 240 && rdbu[4 * 128 + 2] > 240, "diverging map is near white in the middle");
});

test("remapTables: identity per channel; one shared range per layer", () => {
  const d = decodeMaps(mapsPayload({ n: 2, h: 1, w: 1, offsets: [0, 10], scales: [10 / 255, 10 / 255] }));
  const ch = remapTables(d, "channel");
  assert.deepEqual(ch.remap, [null, null]);
  const ly = remapTables(d, "layer");
  assert.equal(ly.gmin, 0);
  assert.ok(Math.abs(ly.gmax - 20) < 1e-4);
  // tile 0 spans the lower half of the layer range, tile 1 the upper half
  assert.equal(ly.remap[0][0], 0);
  assert.ok(Math.abs(ly.remap[0][255] - 127.5) <= 0.5);  // the midpoint of the layer range
  assert.ok(Math.abs(ly.remap[1][0] - 127.5) <= 0.5);
  assert.equal(ly.remap[1][255], 255);
  const flat = decodeMaps(mapsPayload({ n: 1, h: 1, w: 1, offsets: [3], scales: [0] }));
  assert.deepEqual([remapTables(flat, "layer").gmin, remapTables(flat, "layer").gmax], [0, 1]);
});

test("colorize writes LUT colours, through an optional remap", () => {
  const out = new Uint8ClampedArray(8);
  const g = lut("gray");
  colorize(out, Uint8Array.of(7, 200), 0, 2, g, null);
  assert.deepEqual(Array.from(out), [7, 7, 7, 255, 200, 200, 200, 255]);
  const remap = new Uint8Array(256).fill(9);
  colorize(out, Uint8Array.of(7), 0, 1, g, remap, 1);
  assert.deepEqual(Array.from(out.slice(4)), [9, 9, 9, 255]);
});

test("layout fills rows to the width; tileRect and hitTest agree; gaps and outside miss", () => {
  assert.equal(zoomFor(7, 64), 9);
  assert.equal(zoomFor(112, 64), 1);
  const L = layout(10, 4, 5, { gap: 1, zoom: 2, cssWidth: 50 });  // (50/2 + 1) / 6 = 4 cols
  assert.deepEqual([L.cols, L.rows, L.width, L.height], [4, 3, 23, 14]);
  assert.deepEqual(tileRect(L, 5), { x: 6, y: 5, w: 5, h: 4 });
  assert.deepEqual(hitTest(L, 6 * 2 + 1, 5 * 2 + 7), { slot: 5, px: 0, py: 3 });
  assert.equal(hitTest(L, 5 * 2, 0), null, "the gap column between tiles");
  assert.equal(hitTest(L, 0, 4 * 2), null, "the gap row");
  assert.equal(hitTest(L, -1, 0), null);
  assert.equal(hitTest(L, 0, 1000), null);
  assert.equal(hitTest(L, 2 * 2 * 6, 2 * 2 * 5), null, "slot 10 does not exist in a 10-tile grid");
  assert.deepEqual(hitTest(L, 6 * 2, 2 * 5 * 2), { slot: 9, px: 0, py: 0 });
  const one = layout(3, 8, 8, { cssWidth: 1 });
  assert.equal(one.cols, 1, "never zero columns");
  // every pixel of every tile maps back to its own slot
  for (let s = 0; s < L.n; s++) {
    const r = tileRect(L, s);
    for (const [x, y] of [[r.x, r.y], [r.x + r.w - 1, r.y + r.h - 1]]) assert.equal(hitTest(L, x * 2, y * 2).slot, s);
  }
});

test("sortOrder: index ascending, mean/max descending, stable on ties; slotOf", () => {
  const ch = Int32Array.of(4, 2, 3, 1);
  const stats = { mean: Float32Array.of(1, 5, 5, 0), max: Float32Array.of(9, 1, 2, 3) };
  assert.deepEqual(Array.from(sortOrder(ch, "index", stats)), [3, 1, 2, 0]);
  assert.deepEqual(Array.from(sortOrder(ch, "mean", stats)), [1, 2, 0, 3]);
  assert.deepEqual(Array.from(sortOrder(ch, "max", stats)), [0, 3, 2, 1]);
  const order = sortOrder(ch, "mean", stats);
  assert.equal(slotOf(ch, order, 3), 1);
  assert.equal(slotOf(ch, order, 99), -1);
});

test("paintTiles paints each tile at its slot through the LUT; null context is safe", () => {
  const d = decodeMaps(mapsPayload({ n: 2, h: 1, w: 2, fill: (i) => [0, 255, 10, 20][i] }));
  const L = layout(2, 1, 2, { gap: 1, cssWidth: 100 });
  assert.equal(paintTiles(null, d, Int32Array.of(0, 1), L, lut("gray"), [null, null]), false);
  const ctx = recordingContext(null);
  assert.equal(paintTiles(ctx, d, Int32Array.of(1, 0), L, lut("gray"), [null, null]), true);
  const { img } = ctx.calls[0];
  assert.equal(img.width, 5);
  const px = (x) => img.data[4 * x];
  assert.deepEqual([px(0), px(1), img.data[4 * 2 + 3], px(3), px(4)], [10, 20, 0, 0, 255], "tile 1 first, gap transparent");
});

test("filter layouts: kernels grid, rgb painting, norms", () => {
  assert.deepEqual(kernelGrid(8), { kc: 3, kr: 3 });
  const kern = { mode: "kernels", out: 2, cin: 4, kh: 3, kw: 3 };
  const L = filterLayout(kern, 600, 48);
  assert.deepEqual([L.th, L.tw, L.gap], [7, 7, 2]);
  const rgb = { mode: "rgb", out: 1, cin: 3, kh: 1, kw: 1, data: Uint8Array.of(10, 20, 30),
    offset: Float32Array.of(0), scale: Float32Array.of(1) };
  const ctx = recordingContext(null);
  paintFilters(ctx, rgb, filterLayout(rgb));
  // centred on zero per filter: 0 would be mid-grey, +255 (the filter's largest) white
  assert.deepEqual(Array.from(ctx.calls[0].img.data), [133, 138, 143, 255]);
  const norms = { mode: "norms", out: 3, norms: Float32Array.of(0, 1, 2) };
  const c2 = recordingContext(null);
  paintFilters(c2, norms, filterLayout(norms));
  const v = lut("viridis");
  assert.deepEqual(Array.from(c2.calls[0].img.data.slice(8, 11)), Array.from(v.slice(1020, 1023)));
  assert.equal(paintFilters(null, norms, filterLayout(norms)), false);
});
