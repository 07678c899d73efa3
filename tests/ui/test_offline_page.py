"""Exported pages (issue 6) opened over file:// in Chromium with the network guard, no kernel.

Each page is built in a temp folder from tiny seeded models, then: no console error, no
request leaving the machine, the grid painted, heatmap clicks switch both panes and the
spectrum (links live in JS), image switching repaints the grid from precomputed frames,
and hostile names show as text without running. The sizes and the time to first paint
go to .ci-artifacts/ui/export-metrics.json for the closing note; the `page` fixture keeps a
screenshot of each page's final state in .ci-artifacts/ui/<test name>.png.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from harness import ARTIFACTS, ROOT, attr, full_lens
from torch import nn

import cnnlens as cl
from cnnlens.export import export_lens

pytestmark = pytest.mark.browser
METRICS = {}


def tiny_cnn(seed, names=None):
    torch.manual_seed(seed)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Flatten(), nn.Linear(16 * 4 * 4, 10)]
    net = nn.Sequential()
    for k, layer in enumerate(layers):
        net.add_module(names[k] if names and k < len(names) else str(k), layer)
    return net.eval()


IMAGES = torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module", autouse=True)
def _write_metrics():
    yield
    if METRICS:
        ARTIFACTS.joinpath("ui").mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "ui" / "export-metrics.json").write_text(json.dumps(METRICS, indent=2))


@pytest.fixture(scope="module")
def compare_export(tmp_path_factory):
    cmp = cl.Compare(tiny_cnn(0), tiny_cnn(1), IMAGES, metric="linear_cka")
    report = cmp.to_html(tmp_path_factory.mktemp("cmp") / "compare.html", images=[0, 1, 2])
    METRICS["compare_small"] = {"page_bytes": report.page_bytes,
                                "assets_bytes": report.assets_bytes,
                                "state_bytes": report.state_bytes}
    return cmp, report


def open_offline(page, path, ready=".cnnlens-grid[data-rendered='1']"):
    t0 = time.perf_counter()
    page.goto(path.as_uri())
    page.locator(ready).first.wait_for()
    return time.perf_counter() - t0


def grid_pixels(grid):
    return grid.locator("canvas.cnnlens-canvas").evaluate("c => c.toDataURL()")


def test_compare_page_offline_heatmap_links_panes_and_spectrum(page, compare_export):
    cmp, report = compare_export
    first_paint = open_offline(page, report.path)
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    METRICS["compare_small"]["first_paint_s"] = round(first_paint, 3)
    rows, cols = cmp.heatmap.layers_a, cmp.heatmap.layers_b
    # every cell drawn (bqplot draws them on its own time, after the figure is attached)
    page.wait_for_function("n => document.querySelectorAll('.cnnlens-heatmap rect.heatmapcell').length === n",
                           arg=len(rows) * len(cols))
    panes = page.locator(".cnnlens-compare .cnnlens-lens")
    grid_a, grid_b = panes.nth(0).locator(".cnnlens-grid"), panes.nth(1).locator(".cnnlens-grid")
    spectrum = page.locator(".cnnlens-spectrum")
    for _ in range(2):
        before = (grid_a.get_attribute("data-layer"), grid_b.get_attribute("data-layer"),
                  spectrum.get_attribute("data-pair"))
        i, j = next((i, j) for i in reversed(range(len(rows))) for j in range(len(cols))
                    if rows[i] != before[0] and cols[j] != before[1])
        # the cell by its indices in cnnlens's overlay; the click goes through to bqplot's cell
        page.locator(f".cnnlens-heatmap rect.cnnlens-cell{attr('data-row', i)}{attr('data-col', j)}").click(force=True)
        page.locator(f".cnnlens-spectrum[data-pair='{i},{j}']").wait_for()
        grid_a.and_(page.locator(f"{attr('data-layer', rows[i])}[data-rendered='1']")).wait_for()
        grid_b.and_(page.locator(f"{attr('data-layer', cols[j])}[data-rendered='1']")).wait_for()
        after = (grid_a.get_attribute("data-layer"), grid_b.get_attribute("data-layer"),
                 spectrum.get_attribute("data-pair"))
        assert all(x != y for x, y in zip(before, after)), (before, after)
        curve = spectrum.locator("path").evaluate_all("ps => ps.map(p => p.getAttribute('d'))")
        assert any(d and "NaN" not in d for d in curve), "spectrum curve not drawn"


LAYOUT = """() => Array.from(document.querySelectorAll('.cnnlens-lens')).map((lens) => {
  const box = (sel) => { const r = lens.querySelector(sel).getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  return {tree: box('.cnnlens-tree'), grid: box('.cnnlens-grid'), canvas: box('.cnnlens-grid canvas'),
    toolbar: box('.cnnlens-grid .cnnlens-toolbar'), detail: box('.cnnlens-detail'),
    cut: Array.from(lens.querySelectorAll('.cnnlens-tree-row .cnnlens-dim')).filter((s) =>
      s.scrollWidth > s.clientWidth || s.getBoundingClientRect().right > box('.cnnlens-tree').right + 1)
      .map((s) => s.textContent)};
})"""


def overlaps(a, b):
    return a["left"] < b["right"] - 1 and b["left"] < a["right"] - 1 and \
        a["top"] < b["bottom"] - 1 and b["top"] < a["bottom"] - 1


def layout_problems(page):
    found = []
    for k, p in enumerate(page.evaluate(LAYOUT)):
        if p["canvas"]["right"] > p["grid"]["right"] + 1:
            found.append(f"pane {k}: tiles run past the grid's box ({p['canvas']} vs {p['grid']})")
        for name in ("canvas", "toolbar", "grid"):
            if overlaps(p[name], p["detail"]):
                found.append(f"pane {k}: {name} overlaps the neuron detail")
        if overlaps(p["tree"], p["grid"]):
            found.append(f"pane {k}: tree overlaps the grid")
        if p["cut"]:
            found.append(f"pane {k}: tree text cut off: {p['cut']}")
    return found


def test_compare_page_lays_out_panes_and_hides_kernel_controls(page, compare_export):
    _, report = compare_export
    open_offline(page, report.path)
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    assert layout_problems(page) == []  # compact panes (grid + detail)
    full_lens(page, 0), full_lens(page, 1)  # and the full Lens of each
    page.locator(".cnnlens-compare .cnnlens-tree").first.wait_for()
    assert layout_problems(page) == []
    # narrower: the detail wraps below the grid, and the tiles reflow (ResizeObserver)
    page.set_viewport_size({"width": 760, "height": 900})
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.cnnlens-lens')).every((l) =>
        l.querySelector('.cnnlens-grid canvas').getBoundingClientRect().right
        <= l.querySelector('.cnnlens-grid').getBoundingClientRect().right + 1)""")
    assert layout_problems(page) == []
    # no kernel: Run, progress, uploads, paging and re-ranking are hidden; the page says so
    for hidden in (".cnnlens-compare .widget-button", ".cnnlens-compare .widget-upload",
                   ".cnnlens-pager", ".cnnlens-needs-kernel"):
        found = page.locator(hidden).all()
        assert found and not any(el.is_visible() for el in found), hidden
    assert "static page" in page.locator(".cnnlens-compare-status").inner_text()
    # empty slots after the last tile stay blank, not grey
    wraps = page.locator(".cnnlens-grid .cnnlens-wrap").evaluate_all(
        "ws => ws.map(w => getComputedStyle(w).backgroundColor)")
    assert set(wraps) == {"rgba(0, 0, 0, 0)"}, wraps


def test_switching_images_repaints_grid_offline(page, compare_export):
    _, report = compare_export
    open_offline(page, report.path)
    pane = full_lens(page, 0)
    grid = pane.locator(".cnnlens-grid")
    before = grid_pixels(grid)
    assert grid.get_attribute("data-image") == "0"
    pane.locator(".cnnlens-images .cnnlens-thumb[data-index='2']").click()
    grid.and_(page.locator("[data-image='2'][data-rendered='1']")).wait_for()
    assert grid_pixels(grid) != before, "grid did not repaint for image 2"


def test_lens_page_switches_layers_from_frames(page, tmp_path):
    lens = cl.Lens(tiny_cnn(0), IMAGES)
    report = export_lens(lens, tmp_path / "lens.html", images=[0, 1])
    METRICS["lens_small"] = {"page_bytes": report.page_bytes, "state_bytes": report.state_bytes}
    assert lens.grid.frames == {}  # the live widget is left as it was
    open_offline(page, report.path)
    grid = page.locator(".cnnlens-grid")
    for name in lens.grid.layers[1:4]:
        page.locator(f".cnnlens-tree {attr('data-layer-name', name)}").click()
        grid.and_(page.locator(f"{attr('data-layer', name)}[data-rendered='1']")).wait_for()


def test_lens_page_filters_histogram_and_top_k_follow_layers(page, tmp_path):
    lens = cl.Lens(tiny_cnn(0), IMAGES)
    layers = ["0", "1", "3", "7"]
    report = export_lens(lens, tmp_path / "lens.html", layers=layers, images=[0])
    open_offline(page, report.path)
    filters, detail = page.locator(".cnnlens-filters"), page.locator(".cnnlens-detail")
    hist = filters.locator(".cnnlens-filter-hist")
    assert filters.get_attribute("data-layer") == lens.layer
    seen = {}
    for name, weights in [("3", "3"), ("7", "7"), ("1", "0")]:
        page.locator(f".cnnlens-tree {attr('data-layer-name', name)}").click()
        filters.and_(page.locator(f"{attr('data-layer', name)}{attr('data-weights', weights)}"
                                  "[data-rendered='1']")).wait_for()
        assert hist.is_visible() and int(hist.get_attribute("data-bins")) > 1
        seen[name] = (filters.locator("canvas.cnnlens-filter-canvas").evaluate("c => c.toDataURL()"),
                      hist.inner_text())
        # a channel click: the top images of *this* layer, from the exported table
        page.locator(".cnnlens-grid canvas.cnnlens-canvas").click(position={"x": 3, "y": 3})
        detail.and_(page.locator(f"{attr('data-layer', name)}[data-topk='ready']")).wait_for()
        want, _ = lens.inspector.top_images(name, int(detail.get_attribute("data-neuron")),
                                            k=lens.detail.k)
        assert detail.get_attribute("data-top") == ",".join(map(str, want.tolist()))
        assert detail.locator(".cnnlens-top .cnnlens-thumb").count() == len(want)
        # the linear layer's 10x256 weights show as norms only: no filter to cut out offline
        assert detail.get_attribute("data-filter") == ("0" if name == "7" else "1")
    assert seen["3"] != seen["7"] != seen["1"], "filters/histogram did not re-render"
    # the notebook's bqplot histogram is left out: the filter view draws its own
    assert page.locator(".cnnlens-lens .bqplot").count() == 0


# no "." allowed in module names; brackets reach the same global
HOSTILE = ["<script>window['__pwned'] = 1</script>", "q\"uote's & </div>",
           "<img src=x onerror=\"window['__pwned']=2\">"]


def test_hostile_names_render_as_text_and_run_nothing(page, tmp_path):
    net = tiny_cnn(0, names=HOSTILE)
    lens = cl.Lens(net, IMAGES, layer=HOSTILE[0])
    report = export_lens(lens, tmp_path / "hostile.html", layers=HOSTILE, images=[0],
                         title=HOSTILE[0] + HOSTILE[2])
    open_offline(page, report.path)
    assert page.evaluate("() => window.__pwned") is None
    assert page.title() == HOSTILE[0] + HOSTILE[2]
    tree_text = page.locator(".cnnlens-tree").inner_text()
    for name in HOSTILE:
        assert name in tree_text, f"{name!r} not shown as text"
    assert page.locator("img[src='x']").count() == 0
    row = page.locator(".cnnlens-tree .cnnlens-tree-row").filter(has_text=HOSTILE[2])
    row.first.click()
    page.wait_for_function("(n) => document.querySelector('.cnnlens-grid').dataset.layer === n",
                           arg=HOSTILE[2])
    assert page.evaluate("() => window.__pwned") is None


def test_notebook_with_state_renders_offline_via_cli(page, tmp_path):
    src = ROOT / "tests/ui/notebooks/lens_small.ipynb"
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    out = subprocess.run([sys.executable, "-m", "cnnlens.export", str(src),
                          str(tmp_path / "lesson.html"), "--execute"],
                         check=False, capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "wrote lesson.html" in out.stdout
    open_offline(page, tmp_path / "lesson.html")
    page.locator(".cnnlens-tree [data-layer-name]").first.wait_for()
