// Issue 11 helpers: colour scales and bars, a unit's distribution, the heatmap's extras,
// the neuron rule across layers and what a static page holds (pure functions, no canvas).
import "./helpers.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { barTicks, drawColorBar, isSigned, resolveColormap } from "../lib/colorbar.js";
import { remapTables } from "../lib/colormap.js";
import { binValues, drawDistribution, xOf } from "../lib/distribution.js";
import { filterBar, filterZoom, maxAbs } from "../lib/filters.js";
import { frameCoverage } from "../lib/frames.js";
import { luminance, moveSelection, shorten, valueLuminance } from "../lib/heatmap_view.js";
import { gridScale, keepsNeuron } from "../activation_grid.js";
import { FakeModel as Model } from "./helpers.js";

test("colour scales: auto is diverging for signed data; centred remaps put zero in the middle", () => {
  assert.equal(isSigned(-1, 2), true);
  assert.equal(isSigned(0, 2), false);
  assert.equal(isSigned(-1e-9, 2), false, "a rounding error is not a sign");
  assert.equal(resolveColormap("auto", true), "rdbu");
  assert.equal(resolveColormap("auto", false), "viridis");
  assert.equal(resolveColormap("magma", true), "magma", "a chosen map is kept");
  // one tile, values -1..3 (q * 4/255 - 1): centred on [-3, 3], zero lands at 127.5
  const dec = { n: 1, offset: Float32Array.of(-1), scale: Float32Array.of(4 / 255) };
  const { remap, gmin, gmax } = remapTables(dec, "channel", true);
  assert.ok(Math.abs(gmin + 3) < 1e-5 && Math.abs(gmax - 3) < 1e-5, `${gmin}..${gmax}`);
  const zeroQ = Math.round(255 / 4);  // q whose value is ~0
  assert.ok(Math.abs(remap[0][zeroQ] - 127.5) <= 1.5, `zero maps to ${remap[0][zeroQ]}`);
  assert.deepEqual(barTicks(-2, 2).map((t) => t.text), ["-2", "0", "2"]);
  assert.deepEqual(barTicks(0, 5).map((t) => t.text), ["0", "5"], "no zero tick inside");
});

test("gridScale: a per-channel bar says tiles are not comparable; per layer gives numbers", () => {
  const dec = { kind: "maps", layer: "conv", n: 2, offset: Float32Array.of(-1, 0), scale: Float32Array.of(2 / 255, 1 / 255) };
  const ch = gridScale(dec, "channel", "auto");
  assert.equal(ch.cmap, "rdbu");
  assert.equal(ch.bar.relative, true);
  assert.match(ch.bar.label, /not comparable/);
  const ly = gridScale(dec, "layer", "auto");
  assert.ok(Math.abs(ly.bar.lo + 1) < 1e-5 && Math.abs(ly.bar.hi - 1) < 1e-5);
  const pos = gridScale({ ...dec, offset: Float32Array.of(0, 0) }, "layer", "auto");
  assert.equal(pos.cmap, "viridis");
});

test("drawColorBar: label, ticks and data-* attributes; a relative bar has no numbers", () => {
  const box = document.createElement("div");
  drawColorBar(box, { colormap: "rdbu", lo: -0.5, hi: 0.5, label: "weight" });
  assert.equal(box.hidden, false);
  assert.deepEqual([box.dataset.lo, box.dataset.hi, box.dataset.label], ["-0.5", "0.5", "weight"]);
  assert.match(box.textContent, /weight.*-0\.5.*0.*0\.5/s);
  drawColorBar(box, { colormap: "viridis", relative: true, label: "own scale" });
  assert.equal(box.dataset.lo, undefined);
  assert.match(box.textContent, /min.*max/s);
  drawColorBar(box, null);
  assert.equal(box.hidden, true);
});

test("filters: one zero-centred scale for the layer, weights drawn at least 6 px", () => {
  const w = { mode: "kernels", out: 2, cin: 4, kh: 3, kw: 3, offset: Float32Array.of(-0.2, -0.1),
    scale: Float32Array.of(0.3 / 255, 0.15 / 255) };
  assert.ok(Math.abs(maxAbs(w) - 0.2) < 1e-6);
  const bar = filterBar(w);
  assert.equal(bar.colormap, "rdbu");
  assert.ok(Math.abs(bar.lo + bar.hi) < 1e-9 && bar.hi > 0);
  assert.ok(filterZoom(11, 48) >= 6, "a 3x3 kernel of an 8-input filter");
  assert.ok(filterZoom(63, 48) * 63 <= 128, "a big tile stays within 128 px");
});

test("distribution: bins, the marker, an empty set hides the box", () => {
  const b = binValues([0, 1, 2, 3, NaN], 3);
  assert.deepEqual([b.counts, b.lo, b.hi, b.n], [[1, 1, 2], 0, 3, 4]);
  assert.equal(xOf(b, 1.5, 300), 150);
  const box = document.createElement("div");
  drawDistribution(box, Float32Array.of(0, 1, 2, 3), 3);
  assert.equal(box.hidden, false);
  assert.deepEqual([box.dataset.count, box.dataset.marker], ["4", "240"]);
  drawDistribution(box, null, 1);
  assert.equal(box.hidden, true);
});

test("heatmap extras: names cut, arrows clamp, text colour reads on the cell", () => {
  assert.equal(shorten("layer4.1.downsample.0", 10), "layer4.1.…");
  assert.equal(shorten("conv1", 10), "conv1");
  assert.deepEqual(moveSelection([0, 0], "ArrowUp", 3, 3), [0, 0]);
  assert.deepEqual(moveSelection([1, 1], "ArrowRight", 3, 3), [1, 2]);
  assert.deepEqual(moveSelection(null, "ArrowDown", 3, 3), [0, 0], "no selection: the first cell");
  assert.equal(moveSelection([1, 1], "a", 3, 3), null);
  assert.ok(luminance("rgb(253, 231, 37)") > 0.35 && luminance("rgb(68, 1, 84)") < 0.35);
  assert.equal(luminance("url(#hatch)"), null);
});

test("valueLuminance: the text colour follows bqplot's scheme and range", () => {
  const viridis = { min: 0, max: 1, scheme: "viridis" };
  assert.ok(valueLuminance(1, viridis) > 0.35 && valueLuminance(0, viridis) < 0.35);
  const rdbu = { min: -0.5, max: 0.5, scheme: "RdBu" };
  assert.ok(valueLuminance(0, rdbu) > 0.35, "the middle of RdBu is light");
  assert.ok(valueLuminance(-0.5, rdbu) < 0.35 && valueLuminance(0.5, rdbu) < 0.35);
  assert.equal(valueLuminance(NaN, viridis), null);
});

test("the neuron across layers, and what a static page holds", () => {
  assert.equal(keepsNeuron({ kind: "maps" }, { kind: "maps", total: 16 }, 11), true);
  assert.equal(keepsNeuron({ kind: "maps" }, { kind: "vector", total: 64 }, 11), false, "a unit is no channel");
  assert.equal(keepsNeuron({ kind: "maps" }, { kind: "maps", total: 8 }, 11), false, "out of range");
  assert.equal(keepsNeuron(null, { kind: "vector", total: 4 }, 11), true, "first paint keeps it");
  const grid = new Model({ frames: { "conv|0": {}, "conv|2": {}, "fc|0": {} } });
  const cov = frameCoverage(grid, false);
  assert.deepEqual([[...cov.layers].sort(), [...cov.images].sort()], [["conv", "fc"], [0, 2]]);
  assert.equal(frameCoverage(grid, true), null, "a kernel computes the rest");
  assert.equal(frameCoverage(new Model({ frames: {} }), false), null);
});
