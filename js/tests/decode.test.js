import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import "./helpers.js";
import { mapsPayload } from "./helpers.js";
import {
  bytesOf, decodeImages, decodeMaps, decodeWeights, floats, halfToFloat, ints, rangeOf, tileStats, valueAt,
} from "../lib/decode.js";

test("bytesOf accepts DataView, ArrayBuffer, typed arrays, base64 and {buffer}", () => {
  const u = Uint8Array.of(1, 2, 250);
  for (const v of [u, new DataView(u.buffer), u.buffer, "AQL6", { buffer: u.buffer }]) {
    assert.deepEqual(Array.from(bytesOf(v)), [1, 2, 250]);
  }
  const view = new DataView(Uint8Array.of(9, 1, 2, 3).buffer, 1, 2);  // offset view: respect the window
  assert.deepEqual(Array.from(bytesOf(view)), [1, 2]);
  assert.equal(bytesOf(null), null);
  assert.throws(() => bytesOf(42), /cannot read binary/);
});

test("halfToFloat decodes IEEE half: normals, subnormals, inf, nan", () => {
  assert.equal(halfToFloat(0x3c00), 1);
  assert.equal(halfToFloat(0xc000), -2);
  assert.equal(halfToFloat(0x7bff), 65504);
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(halfToFloat(0x7c00), Infinity);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  const le = Uint8Array.of(0x00, 0x3c, 0x00, 0xb8);  // 1, -0.5 little-endian
  assert.deepEqual(Array.from(floats(le, "float16")), [1, -0.5]);
});

test("floats/ints read unaligned little-endian bytes", () => {
  const buf = new Uint8Array(9);
  new DataView(buf.buffer).setFloat32(1, 1.5, true);
  new DataView(buf.buffer).setFloat32(5, -2, true);
  assert.deepEqual(Array.from(floats(buf.subarray(1))), [1.5, -2]);
  const ib = new Uint8Array(8);
  new DataView(ib.buffer).setInt32(0, 7, true);
  new DataView(ib.buffer).setInt32(4, 1234567, true);
  assert.deepEqual(Array.from(ints(ib)), [7, 1234567]);
});

test("decodeMaps: tiles, scales, implicit channel range, values and ranges", () => {
  const p = mapsPayload({ n: 3, h: 2, w: 2, offsets: [0, -1, 10], scales: [1, 0.5, 0] });
  p.first = 5;
  const d = decodeMaps(p);
  assert.equal(d.n, 3);
  assert.deepEqual(Array.from(d.channels), [5, 6, 7]);
  assert.equal(valueAt(d, 1, 4), 1);
  assert.deepEqual(rangeOf(d, 1), [-1, 126.5]);
  assert.deepEqual(rangeOf(d, 2), [10, 10]);
  const s = tileStats(d);
  const q0 = Array.from(d.data.subarray(0, 4));
  assert.ok(Math.abs(s.mean[0] - q0.reduce((a, b) => a + b) / 4) < 1e-5);
  assert.equal(s.max[0], Math.max(...q0));
});

test("decodeMaps: explicit channels, vectors share one scale, wrong sizes throw", () => {
  const p = mapsPayload({ n: 2, h: 1, w: 1 });
  p.channels = new DataView(Int32Array.of(9, 3).buffer);
  assert.deepEqual(Array.from(decodeMaps(p).channels), [9, 3]);
  const v = { kind: "vector", layer: "fc", shape: [4], data: Uint8Array.of(0, 85, 170, 255),
    offset: Float32Array.of(-1).buffer, scale: Float32Array.of(2 / 255).buffer, first: 0, total: 4 };
  const dv = decodeMaps(v);
  assert.equal(dv.kind, "vector");
  assert.equal(dv.n, 4);
  assert.ok(Math.abs(valueAt(dv, 3, 255) - 1) < 1e-6);
  assert.ok(Math.abs(valueAt(dv, 0, 0) + 1) < 1e-6);
  const bad = mapsPayload({ n: 2, h: 2, w: 2 });
  bad.shape = [2, 3, 3];
  assert.throws(() => decodeMaps(bad), /expected 2x3x3/);
  assert.equal(decodeMaps({}), null);
});

test("decodeImages and decodeWeights", () => {
  const im = decodeImages({ shape: [2, 1, 2, 3], data: new Uint8Array(12) });
  assert.deepEqual([im.n, im.h, im.w, im.c], [2, 1, 2, 3]);
  assert.throws(() => decodeImages({ shape: [1, 2, 2, 3], data: new Uint8Array(3) }), /expected 12/);
  const w = decodeWeights({ mode: "rgb", layer: "c", shape: [2, 3, 1, 1], data: new Uint8Array(6),
    offset: Float32Array.of(0, 1).buffer, scale: Float32Array.of(1, 1).buffer });
  assert.deepEqual([w.out, w.cin, w.kh, w.kw, w.offset[1]], [2, 3, 1, 1, 1]);
  const nrm = decodeWeights({ mode: "norms", shape: [3], norms: Float32Array.of(1, 2, 3).buffer });
  assert.deepEqual(Array.from(nrm.norms), [1, 2, 3]);
});

// Cross-language round trip: payloads made by cnnlens.encode, decoded here, compared with
// cnnlens.encode.decode. Needs the project venv; skipped in a bare JS checkout.
const PY = new URL("../../.venv/bin/python", import.meta.url).pathname;
test("decodes what the cnnlens/encode/ package emits (float32 and float16 scales, pages, vectors)", { skip: !existsSync(PY) && "no .venv" }, () => {
  const script = `
import base64, json, torch
from cnnlens.encode import encode_maps, decode, channel_indices
g = torch.Generator().manual_seed(0)
cases = [encode_maps(torch.randn(6, 20, 20, generator=g), layer="a"),
         encode_maps(torch.randn(40, 5, 5, generator=g), layer="b"),
         encode_maps(torch.randn(30, 9, 9, generator=g), layer="c", max_pixels=500, page=1, sort="max"),
         encode_maps(torch.randn(17, generator=g), layer="d")]
out = []
for p in cases:
    enc = {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in p.items()}
    out.append({"payload": enc, "values": decode(p).ravel().tolist(), "channels": channel_indices(p).tolist()})
print(json.dumps(out))`;
  const r = spawnSync(PY, ["-c", script], { cwd: new URL("../..", import.meta.url).pathname, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const cases = JSON.parse(r.stdout);
  assert.equal(cases[1].payload.scale_dtype, "float16");
  assert.equal(cases[0].payload.scale_dtype, "float32");
  for (const { payload, values, channels } of cases) {
    const d = decodeMaps(payload);
    assert.deepEqual(Array.from(d.channels), channels, payload.layer);
    const px = d.h * d.w;
    for (let j = 0; j < values.length; j++) {
      const i = Math.floor(j / px);
      const got = valueAt(d, i, d.data[j]);
      assert.ok(Math.abs(got - values[j]) <= 1e-5 * (1 + Math.abs(values[j])), `${payload.layer}[${j}]: ${got} vs ${values[j]}`);
    }
  }
});
