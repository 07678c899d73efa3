"""Issue 11 on the exported Compare page (file://, no kernel): views a class can read.

The page is built once per module from two tiny seeded CNNs at 1280 x 800 (a laptop), then
each test drives it like a student: clicks must not move the page, text must stay readable,
colour-coded views say what their colours mean. Screens land in .ci-artifacts/ui/.
"""
from __future__ import annotations

import pytest
import torch
from harness import attr, full_lens
from test_offline_page import IMAGES, tiny_cnn

import cnnlens as cl

pytestmark = pytest.mark.browser

SCROLL_TOLERANCE = 5  # px the page may move on a click (none is expected)


@pytest.fixture(scope="module")
def compare_page_path(tmp_path_factory):
    torch.manual_seed(0)
    cmp = cl.Compare(tiny_cnn(0), tiny_cnn(1), IMAGES, metric="linear_cka", names=("real", "synthetic"))
    shown = ["0", "1", "3", "7"]  # the compared layers and one ReLU (its output is not signed)
    report = cmp.to_html(tmp_path_factory.mktemp("readable") / "compare.html", layers=(shown, shown),
                         images=[0, 1])
    return cmp, report.path


@pytest.fixture
def laptop(page):
    page.set_viewport_size({"width": 1280, "height": 800})
    return page


def open_compare(page, path):
    page.goto(path.as_uri())
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    page.locator(".cnnlens-grid[data-rendered='1']").first.wait_for()


def heatmap_cell(page, a, b):
    """The heatmap cell (row a, column b) in cnnlens's overlay, found by its data, not its order.

    The overlay lets the pointer through: click and hover it with ``force=True`` and bqplot's
    cell under it gets the events (bqplot must have drawn its cells first).
    """
    page.locator(".cnnlens-heatmap rect.heatmapcell").first.wait_for()
    return page.locator(f".cnnlens-heatmap rect.cnnlens-cell{attr('data-row', a)}{attr('data-col', b)}")


def scroll_y(page):
    return page.evaluate("() => document.scrollingElement.scrollTop")


def test_no_click_scrolls_the_exported_page(laptop, compare_page_path):
    cmp, path = compare_page_path
    page = laptop
    open_compare(page, path)
    rows, cols = cmp.heatmap.layers_a, cmp.heatmap.layers_b
    # the page at its top, a cell that moves both panes (pane B's tree is below the fold):
    # the page used to jump to the selected tree rows (0 -> 408 px)
    assert cmp.lens_b.layer != cols[-1]
    cell = heatmap_cell(page, len(rows) - 1, len(cols) - 1)
    before = scroll_y(page)
    assert before == 0, "the page scrolled itself while loading"
    cell.click(force=True)
    page.locator(f".cnnlens-spectrum[data-pair='{len(rows) - 1},{len(cols) - 1}']").wait_for()
    pane_a = full_lens(page, 0)
    pane_a.locator(f".cnnlens-grid{attr('data-layer', rows[-1])}[data-rendered='1']").wait_for()
    page.wait_for_timeout(100)  # the jump came within 40 ms of the click
    assert abs(scroll_y(page) - before) <= SCROLL_TOLERANCE, (before, scroll_y(page))

    # a layer click in the tree and a channel click in the grid leave the page where it is
    tree_row = pane_a.locator(f".cnnlens-tree {attr('data-layer-name', rows[0])}")
    tree_row.scroll_into_view_if_needed()
    before = scroll_y(page)
    tree_row.click()
    pane_a.locator(f".cnnlens-grid{attr('data-layer', rows[0])}[data-rendered='1']").wait_for()
    page.wait_for_timeout(100)
    assert abs(scroll_y(page) - before) <= SCROLL_TOLERANCE, (before, scroll_y(page))
    canvas = pane_a.locator(".cnnlens-grid canvas.cnnlens-canvas")
    canvas.scroll_into_view_if_needed()
    before = scroll_y(page)
    canvas.click(position={"x": 3, "y": 3})
    pane_a.locator(".cnnlens-detail[data-neuron='0']").wait_for()
    page.wait_for_timeout(100)
    assert abs(scroll_y(page) - before) <= SCROLL_TOLERANCE, (before, scroll_y(page))


def test_linear_unit_shows_no_spatial_map_and_neuron_resets(laptop, compare_page_path):
    _, path = compare_page_path
    page = laptop
    open_compare(page, path)
    pane_a = full_lens(page, 0)
    grid, detail = pane_a.locator(".cnnlens-grid"), pane_a.locator(".cnnlens-detail")
    # conv "3" (16 channels of 8x8), channel 11: the detail shows its map over the image
    pane_a.locator(f".cnnlens-tree {attr('data-layer-name', '3')}").click()
    grid.and_(page.locator("[data-layer='3'][data-rendered='1']")).wait_for()
    canvas = grid.locator("canvas.cnnlens-canvas")
    assert grid.get_attribute("data-tiles") == "16"
    canvas.click(position={"x": 2, "y": 2})  # tile 0 (sorted by index), then arrows to 11
    for _ in range(11):
        canvas.press("ArrowRight")
    detail.and_(page.locator("[data-neuron='11'][data-layer='3']")).wait_for()
    assert detail.get_attribute("data-stage") == "map"
    assert detail.locator("canvas.cnnlens-detail-channel").is_visible()
    # to the linear layer "7" (10 units): channel 11 is no unit of it; the selection clears
    pane_a.locator(f".cnnlens-tree {attr('data-layer-name', '7')}").click()
    grid.and_(page.locator("[data-layer='7'][data-rendered='1']")).wait_for()
    detail.and_(page.locator("[data-layer='7'][data-neuron='-1']")).wait_for()
    assert grid.get_attribute("data-neuron") == "-1"
    assert not detail.locator("canvas.cnnlens-detail-channel").is_visible(), "stale conv map shown"
    # a unit of it: its value, no stale spatial overlay, no input image posing as a map
    canvas.click(position={"x": 2, "y": 2})
    detail.and_(page.locator("[data-layer='7'][data-neuron='0']")).wait_for()
    assert detail.get_attribute("data-stage") == "none"
    assert not detail.locator(".cnnlens-detail-stage").is_visible()
    assert not detail.locator("canvas.cnnlens-detail-channel").is_visible()
    assert "unit 0" in detail.locator(".cnnlens-toolbar").first.inner_text()
    assert detail.locator(".cnnlens-note").first.inner_text().startswith("value ")


def bar_of(view):
    """The colour bar of a view: its map, its numeric range (None when relative) and its label."""
    b = view.locator(".cnnlens-colorbar").first
    assert b.is_visible(), "no colour bar shown"
    lo, hi = b.get_attribute("data-lo"), b.get_attribute("data-hi")
    return (b.get_attribute("data-colormap"), None if lo is None else (float(lo), float(hi)),
            b.locator(".cnnlens-colorbar-label").inner_text())


def overlapping(a, b):
    return a["x"] < b["x"] + b["width"] - 1 and b["x"] < a["x"] + a["width"] - 1 and \
        a["y"] < b["y"] + b["height"] - 1 and b["y"] < a["y"] + a["height"] - 1


def test_colour_coded_views_have_labelled_colour_bars(laptop, compare_page_path):
    _, path = compare_page_path
    page = laptop
    open_compare(page, path)
    pane_a = full_lens(page, 0)
    grid, detail = pane_a.locator(".cnnlens-grid"), pane_a.locator(".cnnlens-detail")
    filters = pane_a.locator(".cnnlens-filters")
    # conv "0" is signed (no ReLU yet): a diverging map centred on zero; per-channel tiles
    # say that they are not comparable
    grid.and_(page.locator("[data-layer='0'][data-rendered='1']")).wait_for()
    cmap, rng, label = bar_of(grid)
    assert cmap == "rdbu" and rng is None and "not comparable" in label
    grid.locator("select").nth(1).select_option("layer")  # one scale for the layer
    page.wait_for_function("(g) => g.querySelector('.cnnlens-colorbar').dataset.lo !== undefined",
                           arg=grid.element_handle())
    cmap, (lo, hi), label = bar_of(grid)
    assert cmap == "rdbu" and lo == pytest.approx(-hi) and lo < 0 and "activation" in label
    assert "0" in grid.locator(".cnnlens-colorbar-ticks").inner_text().split()
    # after the ReLU nothing is negative: a sequential map from the layer's min to its max
    pane_a.locator(f".cnnlens-tree {attr('data-layer-name', '1')}").click()
    grid.and_(page.locator("[data-layer='1'][data-rendered='1']")).wait_for()
    cmap, (lo, hi), _ = bar_of(grid)
    assert cmap == "viridis" and 0 <= lo < hi
    # the enlarged channel has its own bar, in the grid's colours
    grid.locator("canvas.cnnlens-canvas").click(position={"x": 2, "y": 2})
    detail.and_(page.locator("[data-neuron='0'][data-layer='1']")).wait_for()
    cmap, (lo, hi), label = bar_of(detail.locator(".cnnlens-detail-stage + .cnnlens-colorbar").locator(".."))
    assert lo < hi and "channel 0" in label
    # the weights of conv "3" (16 x 8 x 3 x 3): white = 0 on one scale, weights drawn large
    pane_a.locator(f".cnnlens-tree {attr('data-layer-name', '3')}").click()
    filters.and_(page.locator("[data-layer='3'][data-rendered='1']")).wait_for()
    cmap, (lo, hi), label = bar_of(filters)
    assert cmap == "rdbu" and lo == pytest.approx(-hi) and "weight" in label
    assert int(filters.get_attribute("data-zoom")) >= 6, "a weight is under 6 CSS px"
    # top-image scores sit under their thumbnails, not over the digits
    grid.and_(page.locator("[data-layer='3'][data-rendered='1']")).wait_for()
    grid.locator("canvas.cnnlens-canvas").click(position={"x": 2, "y": 2})
    detail.and_(page.locator("[data-layer='3'][data-topk='ready']")).wait_for()
    thumbs = detail.locator(".cnnlens-top .cnnlens-thumb").all()
    assert thumbs
    for t in thumbs:
        assert not overlapping(t.locator("canvas").bounding_box(), t.locator(".cnnlens-dim").bounding_box())


def boxes_overlap(a, b):
    return a["x"] < b["x"] + b["width"] - 1 and b["x"] < a["x"] + a["width"] - 1 and \
        a["y"] < b["y"] + b["height"] - 1 and b["y"] < a["y"] + a["height"] - 1


def test_heatmap_reads_names_values_hover_and_keys(laptop, compare_page_path):
    cmp, path = compare_page_path
    page = laptop
    open_compare(page, path)
    fig = page.locator(".cnnlens-heatmap")
    fbox = fig.bounding_box()
    cells = fig.locator("rect.heatmapcell")
    cbox = [c.bounding_box() for c in cells.all()]
    grid_box = {"x": min(b["x"] for b in cbox), "y": min(b["y"] for b in cbox)}
    grid_box["width"] = max(b["x"] + b["width"] for b in cbox) - grid_box["x"]
    grid_box["height"] = max(b["y"] + b["height"] for b in cbox) - grid_box["y"]
    texts = fig.locator("svg text").evaluate_all("ts => ts.map(t => t.textContent)")
    # the models' names on the axes, the metric as people name it in the title and the bar
    assert "real" in texts and "synthetic" in texts, texts
    bar_label = fig.locator(".axis text", has_text="linear CKA")
    assert bar_label.count() == 1, "the colour bar has no label"
    title = fig.locator("svg text", has_text="linear CKA").evaluate_all("ts => ts.length")
    assert title == 2, "the title names the metric too"
    assert not boxes_overlap(bar_label.bounding_box(), grid_box), "colour bar label over the cells"
    # every layer name whole and inside the figure
    for name in set(cmp.heatmap.layers_a + cmp.heatmap.layers_b):
        for t in fig.locator(".axis .tick text", has_text=name).all():
            b = t.bounding_box()
            assert b["x"] >= fbox["x"] - 1 and b["y"] + b["height"] <= fbox["y"] + fbox["height"] + 1, name
    # no bqplot toolbar over the data
    assert not [el for el in fig.locator("[class*='toolbar']").all() if el.is_visible()]
    # a 3 x 3 matrix prints its values
    values = fig.locator("text.cnnlens-cell-value").evaluate_all("ts => ts.map(t => t.textContent)")
    assert sorted(values) == sorted(f"{v:.2f}" for v in cmp.matrix.ravel())
    # cnnlens's overlay lies exactly over bqplot's cells
    over = [c.bounding_box() for c in fig.locator("rect.cnnlens-cell").all()]
    assert len(over) == len(cbox)
    for k, v in (("x", min(b["x"] for b in over)), ("y", min(b["y"] for b in over)),
                 ("width", max(b["x"] + b["width"] for b in over) - min(b["x"] for b in over)),
                 ("height", max(b["y"] + b["height"] for b in over) - min(b["y"] for b in over))):
        assert abs(v - grid_box[k]) <= 1.5, (k, v, grid_box)
    # hover: a tip with both layers and the value at once, the cell outlined
    i, j = 1, 2
    cell = heatmap_cell(page, i, j)
    cell.hover(force=True)
    tip = fig.locator(".cnnlens-heatmap-tip")
    tip.wait_for(timeout=300)
    assert tip.inner_text() == cmp.heatmap.tooltip_text(i, j)
    assert fig.get_attribute("data-hover-cell") == f"{i},{j}"
    assert fig.locator("rect.cnnlens-hover-cell").get_attribute("visibility") == "visible"
    # keyboard: arrows move the selected cell, and the panes and spectrum follow
    cell.click(force=True)
    page.locator(f".cnnlens-spectrum[data-pair='{i},{j}']").wait_for()
    fig.press("ArrowLeft")
    page.locator(f".cnnlens-spectrum[data-pair='{i},{j - 1}']").wait_for()
    fig.press("ArrowUp")
    page.locator(f".cnnlens-spectrum[data-pair='{i - 1},{j - 1}']").wait_for()
    pane_b = page.locator(".cnnlens-compare .cnnlens-lens").nth(1)
    pane_b.locator(f".cnnlens-grid{attr('data-layer', cmp.heatmap.layers_b[j - 1])}[data-rendered='1']").wait_for()


LINES = """(fig) => Array.from(fig.querySelectorAll('path.line')).map((p) => ({
    d: p.getAttribute('d') || '', stroke: getComputedStyle(p).stroke,
    dash: getComputedStyle(p).strokeDasharray, shown: getComputedStyle(p).visibility !== 'hidden'
      && getComputedStyle(p.closest('g.mark') || p).visibility !== 'hidden'
      && (p.closest('g.mark')?.style.display !== 'none') }))"""


def test_spectrum_says_what_it_shows_with_legend_outside(laptop, compare_page_path):
    cmp, path = compare_page_path
    page = laptop
    open_compare(page, path)
    spectrum = page.locator(".cnnlens-spectrum")
    texts = lambda: spectrum.locator("svg text").evaluate_all("ts => ts.map(t => t.textContent)")
    # before a click: what to do, and no empty axes
    assert "click a heatmap cell to see its spectrum" in texts()
    assert not [a for a in spectrum.locator(".axis").all() if a.is_visible()], "empty axes shown"
    # the legend is beside the plot, not inside it; bqplot's own legend is gone
    legend = page.locator(".cnnlens-spectrum-legend")
    assert legend.is_visible() and not boxes_overlap(legend.bounding_box(), spectrum.bounding_box())
    assert not [g for g in spectrum.locator(".legend").all() if g.is_visible()]
    # a cell: the title names the pair and what is drawn; the note says why under CKA
    i, j = 0, 0  # the same architecture's first conv: correlations near 1, baseline too
    heatmap_cell(page, i, j).click(force=True)
    spectrum.and_(page.locator(f"[data-pair='{i},{j}']")).wait_for()
    a, b = cmp.heatmap.layers_a[i], cmp.heatmap.layers_b[j]
    assert f"real {a} × synthetic {b}" in texts() and "SVCCA canonical correlation" in texts()
    assert [a for a in spectrum.locator(".axis").all() if a.is_visible()], "axes hidden"
    assert "linear CKA, which has no spectrum" in legend.inner_text()
    lines = spectrum.evaluate(LINES)
    drawn = [ln for ln in lines if ln["d"] and "NaN" not in ln["d"] and ln["shown"]]
    assert len(drawn) == 2, lines
    curve, base = drawn  # the baseline is drawn last: on top where both sit at 1.0
    assert base["dash"] not in ("none", "") and curve["dash"] in ("none", "")
    assert base["stroke"] != curve["stroke"]


def test_static_page_offers_only_what_it_holds(laptop, compare_page_path):
    _, path = compare_page_path
    page = laptop
    open_compare(page, path)
    pane_a = full_lens(page, 0)
    grid = pane_a.locator(".cnnlens-grid")
    held = {"0", "1", "3", "7"}  # the fixture exported these layers and images 0 and 1
    rows = pane_a.locator(".cnnlens-tree [data-layer-name]")
    for row in rows.all():
        name = row.get_attribute("data-layer-name")
        disabled = row.get_attribute("aria-disabled") == "true"
        assert disabled == (name not in held), name
        if disabled:
            assert "not in this page" in row.get_attribute("title")
    # clicking one left out changes nothing and never shows a spinner that cannot end
    before = grid.get_attribute("data-layer")
    pane_a.locator(f".cnnlens-tree {attr('data-layer-name', '2')}").click(force=True)  # disabled: a click anyway
    page.wait_for_timeout(100)
    assert grid.get_attribute("data-layer") == before and grid.get_attribute("data-rendered") == "1"
    assert "computing" not in pane_a.inner_text()
    options = grid.locator("select").first.locator("option").evaluate_all(
        "os => os.filter(o => !o.disabled).map(o => o.value)")
    assert set(options) == held
    # images: only 0 and 1 are offered
    thumbs = pane_a.locator(".cnnlens-images .cnnlens-thumb")
    offered = [t.get_attribute("data-index") for t in thumbs.all() if t.get_attribute("aria-disabled") != "true"]
    assert offered == ["0", "1"]
    thumbs.nth(5).click(force=True)
    page.wait_for_timeout(100)
    assert grid.get_attribute("data-image") == "0" and "computing" not in pane_a.inner_text()
    # the weight histogram has an axis and stays on the page
    hist = pane_a.locator(".cnnlens-filter-hist")
    assert hist.is_visible() and "0" in hist.locator(".cnnlens-hist-axis").inner_text().split()
    assert hist.bounding_box()["x"] + hist.bounding_box()["width"] <= 1280


def in_window(box, width, height):
    return box and box["x"] >= -1 and box["y"] >= -1 and box["x"] + box["width"] <= width + 1 \
        and box["y"] + box["height"] <= height + 1


def test_compare_fits_one_laptop_screen_and_degrades_narrow(laptop, compare_page_path):
    _, path = compare_page_path
    page = laptop
    open_compare(page, path)
    heatmap_cell(page, 1, 1).click(force=True)
    page.locator(".cnnlens-spectrum[data-pair='1,1']").wait_for()
    panes = page.locator(".cnnlens-compare .cnnlens-lens")
    for k in (0, 1):
        panes.nth(k).locator(".cnnlens-grid[data-rendered='1']").wait_for()
    # one screen: heatmap, spectrum, both panes' grids and their neuron details
    shown = {"heatmap": page.locator(".cnnlens-heatmap"), "spectrum": page.locator(".cnnlens-spectrum"),
             "grid A": panes.nth(0).locator(".cnnlens-grid canvas.cnnlens-canvas"),
             "grid B": panes.nth(1).locator(".cnnlens-grid canvas.cnnlens-canvas"),
             "detail A": panes.nth(0).locator(".cnnlens-detail"),
             "detail B": panes.nth(1).locator(".cnnlens-detail")}
    outside = {k: v.bounding_box() for k, v in shown.items() if not in_window(v.bounding_box(), 1280, 800)}
    assert not outside, f"not on the 1280 x 800 screen: {outside}"
    # the full Lens is one click away, and back
    toggle = panes.nth(0).locator("xpath=ancestor::*[contains(@class, 'cnnlens-compare-pane')][1]").locator(
        ".cnnlens-pane-toggle")
    tree = panes.nth(0).locator(".cnnlens-tree")
    assert not tree.is_visible()
    toggle.click()
    assert tree.is_visible() and panes.nth(0).locator(".cnnlens-filters").is_visible()
    toggle.click()
    assert not tree.is_visible()
    # 460 px wide (a narrow split view): panes stack, nothing runs off to the side, the
    # spectrum keeps its plot (it used to shrink to its y axis)
    page.set_viewport_size({"width": 460, "height": 800})
    page.wait_for_timeout(300)  # reflow (ResizeObserver repaints the grids)
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 470, f"the page is {width} px wide at 460"
    a, b = (panes.nth(k).bounding_box() for k in (0, 1))
    assert b["y"] >= a["y"] + a["height"] - 1, "panes not stacked"
    assert shown["spectrum"].bounding_box()["width"] >= 300
