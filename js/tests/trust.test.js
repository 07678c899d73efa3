// Unit tests of js/lib/trust.js: the gap chart <-> heatmap cell mapping, the difference
// mode's colour range and the titles (Python's twins on the same inputs: twins.test.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import "./helpers.js";
import { diffRange, differenceTitle, firstIndex, gapTitle, pairOfPoint, pointOfPair, slab } from "../lib/trust.js";

const series = { row: [0, 1, 3], column: [0, 2, -1] };

test("a point selects its row's matched cell and back", () => {
  assert.deepEqual(pairOfPoint(series, 1), [1, 2]);
  assert.equal(pairOfPoint(series, 2), null);   // no matching column of B
  assert.equal(pairOfPoint(series, 7), null);
  assert.equal(pointOfPair(series, [1, 2]), 1);
  assert.equal(pointOfPair(series, [1, 1]), -1);  // another cell of the row: no point
  assert.equal(pointOfPair(null, [0, 0]), -1);
});

test("scatter selections of every shape give their first index", () => {
  assert.equal(firstIndex([2]), 2);
  assert.equal(firstIndex(Int32Array.of(4, 5)), 4);
  assert.equal(firstIndex(null), null);
  assert.equal(firstIndex([]), null);
});

test("slabs of stacked matrices, and a symmetric range for differences", () => {
  const stack = Float32Array.from([1, 2, 3, 4, -0.05, 0.13, 0, NaN]);
  const rows = slab(stack, ["svcca", "linear_cka"], [2, 2], "linear_cka");
  assert.deepEqual(rows.map((r) => Array.from(r)), [[Math.fround(-0.05), Math.fround(0.13)], [0, NaN]]);
  assert.equal(slab(stack, ["svcca"], [2, 2], "pwcca"), null);
  assert.equal(diffRange(rows), 0.13);
  assert.equal(diffRange([[0.001]]), 0.02);
  assert.equal(diffRange([[-0.43]]), 0.5);
});

test("titles of the gap chart and the difference mode", () => {
  assert.equal(gapTitle(["real", "synthetic", "real_seed1"]),
    "similarity to real by depth: synthetic vs real_seed1");
  assert.equal(gapTitle(["a", "trained_on_synthetic", "c"]), "similarity to a by depth: trained_on_sy… vs c");
  assert.equal(differenceTitle(["a", "b", "c"], "SVCCA"), "SVCCA: b − c");
});

test("a cell's note (error, chance, reference) follows its value", async () => {
  const { cellTitle } = await import("../lib/heatmap_view.js");
  assert.equal(cellTitle("conv1", "fc", "linear CKA", 0.5, null, ["real", "synthetic"], "chance 0.100"),
    "real: conv1\nsynthetic: fc\nlinear CKA = 0.500\nchance 0.100");
  assert.equal(cellTitle("a", "b", "svcca", NaN, "constant", ["A", "B"], "ignored"),
    "A: a\nB: b\nsvcca undefined: constant");
});
