// Unit tests of js/lib/trust.js: the gap chart <-> heatmap cell mapping, the difference
// mode's colour range, chance dimming (idempotent) and the titles mirrored from Python.
import assert from "node:assert/strict";
import { test } from "node:test";
import "./helpers.js";
import { diffRange, differenceTitle, dimCells, firstIndex, gapTitle, pairOfPoint, pointOfPair, slab } from "../lib/trust.js";

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

test("titles mirror gap_chart.gap_title", () => {
  assert.equal(gapTitle(["real", "synthetic", "real_seed1"]),
    "similarity to real by depth: synthetic vs real_seed1");
  assert.equal(gapTitle(["a", "trained_on_synthetic", "c"]), "similarity to a by depth: trained_on_sy… vs c");
  assert.equal(differenceTitle(["a", "b", "c"], "SVCCA"), "SVCCA: b − c");
});

test("cells not above chance are hatched once (under the values), and unhatched", () => {
  const ns = "http://www.w3.org/2000/svg";
  const g = document.createElementNS(ns, "g");
  const row = document.createElementNS(ns, "g");
  row.setAttribute("transform", "translate(0, 40)");
  const values = document.createElementNS(ns, "g");
  values.setAttribute("class", "cnnlens-cell-values");
  g.append(row, values);
  const cells = [0, 1].map((j) => {
    const r = document.createElementNS(ns, "rect");
    r.__data__ = { rowNum: 0, columnNum: j };
    for (const [k, v] of [["x", 30 * j], ["y", 0], ["width", 30], ["height", 20]]) r.setAttribute(k, String(v));
    row.append(r);
    return r;
  });
  assert.ok(dimCells(cells, { "0,1": "not above chance" }) > 0);
  assert.equal(cells[1].getAttribute("data-chance"), "below");
  assert.equal(cells[0].hasAttribute("data-chance"), false);
  const marks = g.querySelector("g.cnnlens-chance-marks");
  assert.equal(marks.nextSibling, values);  // the values stay on top
  const r = marks.querySelector("rect[data-cell='0,1']");
  assert.deepEqual(["x", "y", "width"].map((k) => r.getAttribute(k)), ["30", "40", "30"]);
  assert.equal(dimCells(cells, { "0,1": "x" }), 0);   // idempotent
  dimCells(cells, {});
  assert.equal(cells[1].hasAttribute("data-chance"), false);
  assert.equal(marks.children.length, 0);
});

test("a cell's note (error, chance, reference) follows its value; mirror of heatmap.cell_text", async () => {
  const { cellTitle } = await import("../compare_link.js");
  assert.equal(cellTitle("conv1", "fc", "linear CKA", 0.5, null, ["real", "synthetic"], "chance 0.100"),
    "real: conv1\nsynthetic: fc\nlinear CKA = 0.500\nchance 0.100");
  assert.equal(cellTitle("a", "b", "svcca", NaN, "constant", ["A", "B"], "ignored"),
    "A: a\nB: b\nsvcca undefined: constant");
});
