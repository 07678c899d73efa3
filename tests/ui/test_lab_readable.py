"""Issue 11 in real JupyterLab at 1280 x 800: clicks leave the notebook where it is, the dark
theme stays readable, and the Compare is screenshotted in both themes for people to look at.

The module shares one live compare_small.ipynb (the conftest's lab_compare); a test that
switches the theme switches it back.
"""
from __future__ import annotations

import pytest
from harness import ARTIFACTS, attr

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_kernel_errors")]

SCROLL_TOLERANCE = 5  # px the notebook may move on a click (none is expected)

# The notebook's scroll box: the nearest scrolling ancestor of the Compare.
SCROLLER = """() => { let el = document.querySelector('.cnnlens-compare');
    for (; el; el = el.parentElement) { const oy = getComputedStyle(el).overflowY;
      if ((oy === 'auto' || oy === 'scroll') && el.scrollHeight > el.clientHeight) return el; }
    return document.scrollingElement; }"""


@pytest.fixture(scope="module")
def lab_laptop(lab_compare):
    lab_compare.page.set_viewport_size({"width": 1280, "height": 800})
    return lab_compare


def scroll_top(page):
    return page.evaluate(f"() => ({SCROLLER})().scrollTop")


def scroll_to(page, locator, offset=0):
    """Put `locator`'s top `offset` px below the top of the notebook's scroll box."""
    page.evaluate(f"""([el, offset]) => {{ const s = ({SCROLLER})();
        s.scrollTop += el.getBoundingClientRect().top - s.getBoundingClientRect().top - offset; }}""",
                  [locator.element_handle(), offset])
    page.wait_for_timeout(50)  # let the scroll settle before reading it back


def pane(page, side):
    return page.locator(".cnnlens-compare .cnnlens-lens").nth({"a": 0, "b": 1}[side])


def cell(page, a, b):
    index = page.evaluate("""([a, b]) => Array.from(document.querySelectorAll(
            '.cnnlens-heatmap rect.heatmapcell')).findIndex(
            c => (c.querySelector('title')?.textContent || '').startsWith(`A: ${a}\\nB: ${b}\\n`))""",
                          [a, b])
    assert index >= 0, f"no heatmap cell for {a} x {b}"
    return page.locator(".cnnlens-heatmap rect.heatmapcell").nth(index)


def assert_still(page, before, what):
    page.wait_for_timeout(150)  # the jump came within 40 ms of the click
    after = scroll_top(page)
    assert abs(after - before) <= SCROLL_TOLERANCE, f"{what} scrolled the notebook {before} -> {after}"


def test_no_click_scrolls_the_notebook(lab_laptop):
    nb, page = lab_laptop, lab_laptop.page
    rows, cols = nb.eval("cmp.heatmap.layers_a"), nb.eval("cmp.heatmap.layers_b")
    cur = nb.eval("[cmp.lens_a.layer, cmp.lens_b.layer]")
    i, j = next((i, j) for i in reversed(range(len(rows))) for j in reversed(range(len(cols)))
                if rows[i] != cur[0] and cols[j] != cur[1])
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    heatmap = page.locator(".cnnlens-heatmap")
    # the heatmap at the top of the notebook, both panes' trees below the fold (notebook 02
    # jumped 824 -> 1959 px on such a click)
    scroll_to(page, heatmap, offset=10)
    before = scroll_top(page)
    since = nb.log.mark()
    cell(page, rows[i], cols[j]).click()
    nb.log.wait(lambda e: e["src"] == "heatmap" and e["pair"] == [i, j], since=since)
    pane(page, "b").locator(f".cnnlens-grid{attr('data-layer', cols[j])}[data-rendered='1']").wait_for()
    assert_still(page, before, "a heatmap cell click")

    a = pane(page, "a")
    target = next(n for n in rows if n != rows[i])
    scroll_to(page, a, offset=10)
    before = scroll_top(page)
    a.locator(f".cnnlens-tree {attr('data-layer-name', target)}").click()
    a.locator(f".cnnlens-grid{attr('data-layer', target)}[data-rendered='1']").wait_for()
    assert_still(page, before, "a layer click")

    canvas = a.locator(".cnnlens-grid canvas.cnnlens-canvas")
    scroll_to(page, canvas, offset=10)
    before = scroll_top(page)
    since = nb.log.mark()
    canvas.click(position={"x": 3, "y": 3})
    nb.log.wait(lambda e: e["src"] == "grid" and e["side"] == "a" and e["name"] == "neuron", since=since)
    a.locator(".cnnlens-detail[data-rendered='1']").wait_for()
    assert_still(page, before, "a channel click")
