"""UI latency in real JupyterLab + Chromium (issue 4, performance); prints a table.

    PATH=.venv/bin:$PATH .venv/bin/python bench/ui_latency.py [--clicks 20]

Measured in the page itself (performance.now() around a DOM click, a MutationObserver on
the views' data-* attributes, then one animation frame so the paint is committed):

* click a layer in the Lens tree -> grid painted: torchvision resnet18 (random init, no
  download), 224x224 inputs, activations cached (every layer visited once before timing);
* click a heatmap cell -> both Lens panes painted with the pair's layers and the spectrum
  redrawn: Compare of two resnet18s on 5 x 5 layers;
* bytes per displayed activation pixel: the grid payload (uint8 tiles + scales + JSON) divided
  by the tile pixels the grid shows (channels x tile height x tile width); and, for context,
  every kernel -> browser websocket byte from the click until the grid painted;
* heatmap first paint for a 60 x 60 layer matrix: kernel display -> 3600 cells in the DOM.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ui"))
from harness import JupyterServer, LabNotebook, launch_browser

SETUP = '''import json, os, time
import ipywidgets as W
import numpy as np
import torch, torchvision
import cnnlens as cl
from cnnlens.encode import payload_nbytes
from cnnlens.widgets.heatmap import SimilarityHeatmap

def log(src, **kw):
    with open(os.environ["CNNLENS_UI_LOG"], "a") as f:
        f.write(json.dumps({"src": src, "t": time.time(), **kw}) + "\\n")

def resnet(seed):
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None).eval()

images = torch.rand(16, 3, 224, 224, generator=torch.Generator().manual_seed(0))
lens = cl.Lens(resnet(0), images[:4])
TIMED = [n for n in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
         if n in lens.grid.layers]
lens.inspector.activations(list(lens.grid.layers), images=0)   # cache every layer of image 0
lens'''
COMPARE = '''BLOCKS = ["conv1", "layer1", "layer2", "layer3", "layer4"]
cmp = cl.Compare(resnet(0), resnet(1), images, metric="linear_cka", layers_a=BLOCKS,
                 layers_b=BLOCKS)
assert cmp.wait(900), cmp.error
for lens_ in (cmp.lens_a, cmp.lens_b):
    lens_.inspector.activations(BLOCKS, images=0)
cmp'''
OUTPUT = '''out = W.Output()
names = [f"layer{i}.conv" for i in range(60)]
def heatmap60():
    out.outputs = ()  # not clear_output(): its front-end round trip races with the append
    hm = SimilarityHeatmap(names, names, np.random.default_rng(0).random((60, 60)))
    fig = hm.figure()
    fig.add_class("bench-60")
    out.append_display_data(fig)
log("ready", timed=TIMED, blocks=BLOCKS)
out'''

# click `clickSel` (k-th match), resolve when `done()` holds after a mutation, + one frame
CLICK_AND_WAIT = """async ([clickSel, k, done]) => {
  const ok = new Function('return (' + done + ')();');
  let el = document.querySelectorAll(clickSel)[k];
  if (!el) throw new Error('nothing matches ' + clickSel);
  if (el.matches('rect.cnnlens-cell')) {  // cnnlens's overlay cell: click bqplot's cell under it
    const r = el.getBoundingClientRect();
    el = document.elementsFromPoint(r.x + r.width / 2, r.y + r.height / 2)
      .find((e) => e.matches('rect.heatmapcell')) || el;
  }
  return await new Promise((resolve, reject) => {
    const t0 = performance.now();
    const finish = () => requestAnimationFrame(() => resolve(performance.now() - t0));
    const mo = new MutationObserver(() => { if (ok()) { mo.disconnect(); finish(); } });
    mo.observe(document.body, {subtree: true, childList: true, attributes: true,
                               attributeFilter: ['data-layer', 'data-rendered', 'data-pair', 'd']});
    setTimeout(() => { mo.disconnect(); reject(new Error('timeout: ' + done)); }, 30000);
    el.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}));
  });
}"""


def notebook(path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(c) for c in (SETUP, COMPARE, OUTPUT)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def grid_done(pane, layer):
    return (f"() => {{ const g = document.querySelector('{pane}'); return !!g && "
            f"g.dataset.layer === {json.dumps(layer)} && g.dataset.rendered === '1'; }}")


def time_layer_clicks(nb, ws_bytes, timed, clicks):
    lens = ".cnnlens-lens:not(.cnnlens-compare .cnnlens-lens)"
    ms, per_px = [], []
    current = nb.page.get_attribute(f"{lens} .cnnlens-grid", "data-layer")
    start = (timed.index(current) + 1) if current in timed else 0
    for warm in (True, False):  # one untimed visit per layer first: JS decoders, caches
        for n in range(len(timed) if warm else clicks):
            layer = timed[(start + n) % len(timed)]  # always another layer than the last
            ws_bytes[0] = 0
            row = f"{lens} .cnnlens-tree [data-layer-name={json.dumps(layer)}]"
            t = nb.page.evaluate(CLICK_AND_WAIT, [row, 0, grid_done(f"{lens} .cnnlens-grid", layer)])
            wire = ws_bytes[0]  # kernel -> browser bytes from the click until the grid painted
            if warm:
                continue
            ms.append(t)
            # displayed activation pixels: the tiles the grid painted, tiles x h x w
            n_tiles, th, tw, payload = nb.eval(
                "list(lens.grid.payload['shape']) + [payload_nbytes(lens.grid.payload)]")
            per_px.append((payload / (n_tiles * th * tw), wire / (n_tiles * th * tw)))
    return ms, [p for p, _ in per_px], [w for _, w in per_px]


def summary(values):
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return statistics.median(values), p95


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        tmp = pathlib.Path(tmp)
        (tmp / "root").mkdir()
        notebook(tmp / "root" / "bench.ipynb")
        browser = launch_browser(pw)
        with JupyterServer("lab", tmp / "root", tmp / "lab") as lab:
            page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
            ws_bytes = [0]

            def on_ws(ws):
                ws.on("framereceived", lambda f: ws_bytes.__setitem__(0, ws_bytes[0] + len(
                    f if isinstance(f, bytes) else f.encode())))
            page.on("websocket", on_ws)
            nb = LabNotebook(page, lab, "bench.ipynb").open(timeout=180)
            nb.run_all()
            ready = lab.log.wait(lambda e: e["src"] == "ready", timeout=1200)
            page.locator(".cnnlens-grid[data-rendered='1']").first.wait_for(timeout=120_000)
            page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for(timeout=120_000)
            layer_ms, per_px, ws_px = time_layer_clicks(nb, ws_bytes, ready["timed"], args.clicks)
            cell_ms = time_heatmap_clicks(page, ready["blocks"], args.clicks)
            first_paint = time_heatmap60(page, nb, repeats=5)
        browser.close()
    rows = [("click layer -> grid painted (resnet18, 224x224, cached)", layer_ms, "ms", "< 100"),
            ("click heatmap cell -> both panes + spectrum", cell_ms, "ms", "< 150"),
            ("grid payload bytes per displayed activation pixel", per_px, "B/px", "<= 1.1"),
            ("all websocket bytes of a layer click per activation pixel", ws_px, "B/px", "-"),
            ("heatmap first paint, 60 x 60 matrix", first_paint, "ms", "-")]
    print(f"\nUI latency, JupyterLab + Chromium {page_version()} on {os.cpu_count()} CPU(s)\n")
    print(f"| {'measurement':<58} | {'n':>3} | {'median':>9} | {'p95':>9} | target  |")
    print(f"|{'-' * 60}|{'-' * 5}|{'-' * 11}|{'-' * 11}|---------|")
    for name, values, unit, target in rows:
        med, p95 = summary(values)
        fmt = "{:.2f}" if unit == "B/px" else "{:.0f}"
        print(f"| {name:<58} | {len(values):>3} | {fmt.format(med) + ' ' + unit:>9} | "
              f"{fmt.format(p95) + ' ' + unit:>9} | {target:<7} |")


def page_version():
    out = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True,
                         check=False)
    return out.stdout.split()[1] if out.stdout else "?"


def time_heatmap_clicks(page, blocks, clicks):
    lenses = ".cnnlens-compare .cnnlens-lens"
    pairs = [(i, j) for i in range(len(blocks)) for j in range(len(blocks)) if i != j]
    ms, last = [], None
    for n in range(clicks + 1):
        i, j = pairs[(n * 7) % len(pairs)]
        if (i, j) == last:
            i, j = pairs[(n * 7 + 1) % len(pairs)]
        last = (i, j)
        cell_sel = f".cnnlens-heatmap rect.cnnlens-cell[data-row='{i}'][data-col='{j}']"
        done = (f"() => {{ const g = document.querySelectorAll('{lenses} .cnnlens-grid'); "
                f"const s = document.querySelector('.cnnlens-spectrum'); return g.length === 2 && "
                f"g[0].dataset.layer === {json.dumps(blocks[i])} && g[0].dataset.rendered === '1'"
                f" && g[1].dataset.layer === {json.dumps(blocks[j])} && "
                f"g[1].dataset.rendered === '1' && s && s.dataset.pair === '{i},{j}'; }}")
        t = page.evaluate(CLICK_AND_WAIT, [cell_sel, 0, done])
        if n:  # the first click includes the panes' first visit of a layer
            ms.append(t)
    return ms


def time_heatmap60(page, nb, repeats):
    ms = []
    for _ in range(repeats):
        t0 = page.evaluate("() => performance.now()")
        nb.execute("heatmap60()")
        try:
            page.wait_for_function("() => document.querySelectorAll('.bench-60 rect.heatmapcell')"
                                   ".length === 3600", timeout=60_000, polling="raf")
        except Exception:
            page.screenshot(path=str(ROOT / ".ci-artifacts" / "bench-heatmap60-timeout.png"))
            print(page.evaluate("() => [document.querySelectorAll('.bench-60').length, document"
                                ".querySelectorAll('.bench-60 rect.heatmapcell').length]"),
                  nb.eval("len(out.outputs)"), file=sys.stderr)
            raise
        ms.append(page.evaluate("() => performance.now()") - t0)
    return ms


if __name__ == "__main__":
    t_start = time.perf_counter()
    main()
    print(f"\n(total {time.perf_counter() - t_start:.0f} s)")
