"""Voila (the teaching front end): the Compare notebook renders, and a click reaches the kernel.

Voila gives the page no handle on the kernel, so the kernel's side is read from the
notebook's JSON-lines event log (the same log that mirrors kernel tracebacks). The server runs
the command the README gives (`voila --template=cnnlens`), and the page must make no
non-loopback request and log no console error.
"""
from __future__ import annotations

import pytest
from harness import Guard, attr, full_lens, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def voila_page(browser, voila, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    guard = Guard(page)  # no allow-list: the page must work with no network
    since = voila.log.mark()
    yield page, since
    try:
        screenshot(page, request.node.name)
    finally:
        ctx.close()
    problems = guard.problems()  # the cnnlens template drops what logged RUNTIME-012
    assert not problems, "\n".join(problems)
    tbs = voila.log.tracebacks(since)
    assert not tbs, "kernel raised:\n" + tbs[0]


def test_voila_renders_compare_and_tree_click_reaches_kernel(voila, voila_page):
    page, since = voila_page
    name = voila.copy_notebook("compare_small.ipynb", "voila")
    page.goto(voila.url(name))
    ready = voila.log.wait(lambda e: e["src"] == "ready", since=since, timeout=120)
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for(timeout=60_000)
    rows, cols = ready["layers_a"], ready["layers_b"]
    # every cell drawn (bqplot draws them on its own time, after the figure is attached)
    page.wait_for_function("n => document.querySelectorAll('.cnnlens-heatmap rect.heatmapcell').length === n",
                           arg=len(rows) * len(cols))
    # Font Awesome comes from Voila's own bundle, not from the CDN the lab template links
    icon = page.locator(".cnnlens-compare button i.fa-play").first
    drawn = icon.evaluate("""async (i) => { await document.fonts.ready;
        return {family: getComputedStyle(i).fontFamily, width: i.getBoundingClientRect().width,
                loaded: document.fonts.check('900 16px "Font Awesome 5 Free"')}; }""")
    assert "Font Awesome" in drawn["family"] and drawn["loaded"] and drawn["width"] > 4, drawn
    pane = full_lens(page, 0)
    grid = pane.locator(".cnnlens-grid")
    grid.and_(page.locator("[data-rendered='1']")).wait_for()
    target = next(n for n in reversed(rows) if n != grid.get_attribute("data-layer"))
    mark = voila.log.mark()
    pane.locator(f".cnnlens-tree {attr('data-layer-name', target)}").click()
    voila.log.wait(lambda e: e["src"] == "grid" and e["side"] == "a" and e["name"] == "layer"
                   and e["new"] == target, since=mark)
    grid.and_(page.locator(f"{attr('data-layer', target)}[data-rendered='1']")).wait_for()
