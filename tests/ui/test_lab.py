"""cl.Compare in real JupyterLab: clicks reach Python, Python reaches the page, views stay linked.

One notebook (tests/ui/notebooks/compare_small.ipynb: two tiny seeded CNNs, a 3 x 3 matrix)
is run once per module; each test starts from whatever the previous one left and picks a
target that differs from it, so every assertion observes a change. Readiness is always a
kernel event (the notebook's JSON-lines log) or a data-* attribute, never a sleep.
"""
from __future__ import annotations

import pytest
from harness import attr, full_lens, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_kernel_errors")]


def pane(page, side):
    return full_lens(page, {"a": 0, "b": 1}[side])


def painted(pane_locator, layer):
    """Wait until the pane's grid has painted `layer` (data-rendered is set by paint itself)."""
    pane_locator.locator(f".cnnlens-grid{attr('data-layer', layer)}[data-rendered='1']").wait_for()


def other_layer(nb, side, avoid=()):
    layers = nb.eval(f"cmp.lens_{side}.grid.layers")
    current = nb.eval(f"cmp.lens_{side}.layer")
    return next(n for n in reversed(layers) if n != current and n not in avoid)


def grid_event(nb, side, name, since, new=None):
    return nb.log.wait(lambda e: e["src"] == "grid" and e["side"] == side and e["name"] == name
                       and (new is None or e["new"] == new), since=since)


def test_tree_click_sets_python_layer_and_redraws_grid(lab_compare):
    nb, page = lab_compare, lab_compare.page
    a = pane(page, "a")
    target = other_layer(nb, "a")
    since = nb.log.mark()
    a.locator(f".cnnlens-tree {attr('data-layer-name', target)}").click()
    grid_event(nb, "a", "layer", since, new=target)
    painted(a, target)
    assert nb.eval("cmp.lens_a.layer") == target
    row = a.locator(f".cnnlens-tree {attr('data-layer-name', target)}")
    assert row.get_attribute("aria-selected") == "true"
    assert a.locator(".cnnlens-tree [aria-selected='true']").count() == 1
    screenshot(page, "lab-tree-click", show=a)


def test_channel_click_sets_neuron_and_updates_detail(lab_compare):
    nb, page = lab_compare, lab_compare.page
    a = pane(page, "a")
    nb.execute("cmp.lens_a.layer = cmp.lens_a.grid.layers[0]; cmp.lens_a.neuron = -1")
    layer = nb.eval("cmp.lens_a.layer")
    painted(a, layer)
    grid, canvas = a.locator(".cnnlens-grid"), a.locator(".cnnlens-grid canvas.cnnlens-canvas")
    box = canvas.bounding_box()
    # hover first: the tooltip's data-hover names the channel under the pointer
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.wait_for_function("(el) => el.dataset.hover !== undefined", arg=grid.element_handle())
    expected = int(grid.get_attribute("data-hover"))
    since = nb.log.mark()
    page.mouse.click(box["x"] + 2, box["y"] + 2)
    grid_event(nb, "a", "neuron", since, new=expected)
    assert nb.eval("cmp.lens_a.neuron") == expected
    a.locator(f".cnnlens-detail{attr('data-neuron', expected)}{attr('data-layer', layer)}"
              "[data-rendered='1']").wait_for()
    assert grid.get_attribute("data-neuron") == str(expected)

    # keyboard: the next tile is the next neuron, in Python and in the detail pane
    since = nb.log.mark()
    canvas.press("ArrowRight")
    nxt = grid_event(nb, "a", "neuron", since)["new"]
    assert nxt != expected and nb.eval("cmp.lens_a.neuron") == nxt
    a.locator(f".cnnlens-detail{attr('data-neuron', nxt)}[data-rendered='1']").wait_for()
    screenshot(page, "lab-channel-click", show=a)


def spectrum_paths(page):
    return page.eval_on_selector_all(".cnnlens-spectrum path",
                                     "ps => ps.map(p => p.getAttribute('d') || '').join('|')")


def test_heatmap_click_switches_both_panes_and_spectrum(lab_compare):
    nb, page = lab_compare, lab_compare.page
    rows, cols = nb.eval("cmp.heatmap.layers_a"), nb.eval("cmp.heatmap.layers_b")
    cur_a, cur_b = nb.eval("cmp.lens_a.layer"), nb.eval("cmp.lens_b.layer")
    pair = nb.eval("cmp.pair")
    i, j = next((i, j) for i in range(len(rows)) for j in range(len(cols))
                if rows[i] != cur_a and cols[j] != cur_b and [i, j] != pair)
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    before = spectrum_paths(page)
    # find the cell by its indices (data-row/col of cnnlens's overlay), not by DOM order (the
    # row scale is reversed); the overlay lets the click through to bqplot's cell under it
    page.locator(".cnnlens-heatmap rect.heatmapcell").first.wait_for()
    cell = page.locator(f".cnnlens-heatmap rect.cnnlens-cell{attr('data-row', i)}{attr('data-col', j)}")
    assert cell.count() == 1, "no heatmap cell has the expected indices"
    since = nb.log.mark()
    cell.click(force=True)
    nb.log.wait(lambda e: e["src"] == "heatmap" and e["pair"] == [i, j], since=since)
    painted(pane(page, "a"), rows[i])
    painted(pane(page, "b"), cols[j])
    page.locator(f".cnnlens-spectrum{attr('data-pair', f'{i},{j}')}").wait_for()
    page.wait_for_function("""([b]) => Array.from(document.querySelectorAll('.cnnlens-spectrum path'))
                              .map(p => p.getAttribute('d') || '').join('|') !== b""", arg=[before])
    assert nb.eval("[cmp.pair, cmp.lens_a.layer, cmp.lens_b.layer, list(cmp.spectrum.pair)]") == \
        [[i, j], rows[i], cols[j], [i, j]]
    assert spectrum_paths(page) != before
    assert page.get_attribute(".cnnlens-compare-link", "data-pair") == f"{i},{j}"
    screenshot(page, "lab-heatmap-click", show=page.locator(".cnnlens-heatmap"))


def test_python_sets_layer_and_page_follows(lab_compare):
    nb, page = lab_compare, lab_compare.page
    b = pane(page, "b")
    target = other_layer(nb, "b")
    nb.execute(f"cmp.lens_b.layer = {target!r}")
    painted(b, target)
    b.locator(f".cnnlens-tree {attr('data-layer-name', target)}[aria-selected='true']").wait_for()
    b.locator(f".cnnlens-detail{attr('data-layer', target)}").wait_for()
    screenshot(page, "lab-python-sets-layer", show=b)
