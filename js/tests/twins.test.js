// Tier 2 for the Python/JS pairs that both sides need: Python computes them with a kernel,
// the browser without one (an exported page). Each pair runs here on the same inputs, the
// Python side through the project's own interpreter, so a change to one side alone fails.
//   cell_text (heatmap.py)          <-> cellTitle (lib/heatmap_view.js)
//   index_ticks (spectrum.py)       <-> indexTicks (compare_link.js)
//   _draw (spectrum.py)             <-> lineState (compare_link.js)
//   spectrum_title (spectrum.py)    <-> spectrumTitle (compare_link.js)
//   gap_title (gap_chart.py)        <-> gapTitle (lib/trust.js)
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { indexTicks, lineState, spectrumTitle } from "../compare_link.js";
import { cellTitle } from "../lib/heatmap_view.js";
import { gapTitle } from "../lib/trust.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PYTHON = process.env.CNNLENS_PYTHON || join(REPO, ".venv", "bin", "python");

const SCRIPT = `
import json, math, sys
from bqplot import Lines
from cnnlens.widgets.gap_chart import gap_title
from cnnlens.widgets.heatmap import cell_text
from cnnlens.widgets.spectrum import _draw, index_ticks, spectrum_title

def num(v):
    return float("nan") if v is None else v

cases = json.load(sys.stdin)
out = {"cells": [cell_text(r, c, m, num(v), why, tuple(names), note)
                 for r, c, m, v, why, names, note in cases["cells"]],
       "ticks": [index_ticks(n, most).tolist() for n, most in cases["ticks"]],
       "titles": [spectrum_title(names, a, b) for names, a, b in cases["titles"]],
       "gaps": [gap_title(names) for names in cases["gaps"]],
       "lines": []}
for ys in cases["lines"]:
    mark = Lines(x=[1.0], y=[0.0])
    _draw(mark, [v for v in ys])
    out["lines"].append({"x": mark.x.tolist(), "y": mark.y.tolist(), "visible": bool(mark.visible)})
print(json.dumps(out))
`;

const CASES = {
  cells: [
    ["conv1", "fc", "svcca", 0.8349, null, ["A", "B"], null],
    ["conv1", "fc", "linear CKA", 0.5, null, ["real", "synthetic"], "± 0.020\nchance 0.100"],
    ["a", "b", "pwcca", null, "layer b is constant", ["A", "B"], null],
    ["a", "b", "svcca", null, null, ["A", "B"], "ignored: no value"],
    ["layer4.1.downsample.0", "x", "debiased CKA", -0.0004, null, ["m", "n"], null],
    ["a", "b", "linear CKA: synthetic − seed1", 0.12345, null, ["real", "synthetic"], "seed1: 0.700"],
    ["a", "b", "svcca", 1, "", ["A", "B"], ""],
  ],
  ticks: [[1, 8], [4, 8], [11, 8], [64, 8], [2000, 8], [0, 8], [37, 4], [100, 1], [999, 8]],
  titles: [[["real", "synthetic"], "conv1", "layer4.1.downsample.0"], [["A", "B"], "a", "sixteen_chars_ab"],
    [["A", "B"], "seventeen_chars_a", "b"]],
  gaps: [["real", "synthetic", "real_seed1"], ["a", "trained_on_synthetic", "c"], ["fourteen_chars", "x", "y"]],
  lines: [[0.9, 0.5, 0.25], [], [1]],
};

const python = existsSync(PYTHON) ? spawnSync(PYTHON, ["-c", SCRIPT], {
  input: JSON.stringify(CASES), encoding: "utf8", cwd: REPO, timeout: 120_000,
}) : null;
const skip = python ? false : `no Python environment at ${PYTHON} (set CNNLENS_PYTHON)`;
const py = () => {
  assert.equal(python.status, 0, python.stderr);
  return JSON.parse(python.stdout);
};

test("cell tooltips: cellTitle == heatmap.cell_text", { skip }, () => {
  const want = py().cells;
  CASES.cells.forEach(([r, c, m, v, why, names, note], k) => {
    assert.equal(cellTitle(r, c, m, v == null ? NaN : v, why, names, note), want[k], `case ${k}`);
  });
});

test("spectrum axis ticks: indexTicks == spectrum.index_ticks", { skip }, () => {
  const want = py().ticks;
  CASES.ticks.forEach(([n, most], k) => assert.deepEqual(Array.from(indexTicks(n, most)), want[k], `n=${n}`));
});

test("spectrum lines: lineState == spectrum._draw", { skip }, () => {
  const want = py().lines;
  CASES.lines.forEach((ys, k) => {
    const got = lineState(Float32Array.from(ys));
    assert.deepEqual({ x: Array.from(got.x), y: Array.from(got.y, (v) => Math.fround(v)), visible: got.visible },
      { ...want[k], y: want[k].y.map((v) => Math.fround(v)) }, `case ${k}`);
  });
});

test("titles: spectrumTitle == spectrum_title, gapTitle == gap_title", { skip }, () => {
  const { titles, gaps } = py();
  CASES.titles.forEach(([names, a, b], k) => assert.equal(spectrumTitle(names, a, b), titles[k]));
  CASES.gaps.forEach((names, k) => assert.equal(gapTitle(names), gaps[k]));
});
