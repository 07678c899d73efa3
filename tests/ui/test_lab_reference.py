"""cl.Compare with a reference model (issue 13) in real JupyterLab, with its kernel.

tests/ui/notebooks/compare_reference.ipynb (three tiny seeded CNNs) runs once per module.
A click on a gap-chart point selects that layer's heatmap cell in Python (bqplot #1632 is
worked around by the heatmap's own ``selected``) and both panes follow; the difference
mode reaches Python, recolours the heatmap with A~B minus A~C, survives a metric switch
made in the kernel, and goes back. Readiness is a kernel event or a data-* attribute.
"""
from __future__ import annotations

import pytest
from harness import Guard, LabNotebook, attr, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab_reference(browser, lab, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    guard = Guard(page)
    name = lab.copy_notebook("compare_reference.ipynb", "lab_reference")
    nb = LabNotebook(page, lab, name).open()
    since = lab.log.mark()
    nb.run_all()
    lab.log.wait(lambda e: e["src"] == "ready", since=since, timeout=120)
    page.locator(".cnnlens-trust[data-ready='1']").wait_for(timeout=60_000)
    nb.guard = guard
    yield nb
    try:
        screenshot(page, "lab-reference-final")
    finally:
        ctx.close()
    problems = guard.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture(autouse=True)
def _no_kernel_errors(lab_reference):
    since = lab_reference.log.mark()
    yield
    tbs = lab_reference.log.tracebacks(since)
    assert not tbs, "kernel raised:\n" + tbs[0]


def heading(page):
    return page.evaluate("() => document.querySelector('.cnnlens-heatmap .mainheading')"
                         "?.textContent || ''")


def test_point_click_selects_cell_in_python_and_both_panes_follow(lab_reference):
    nb, page = lab_reference, lab_reference.page
    layers_a = nb.eval("cmp.heatmap.layers_a")
    layers_b = nb.eval("cmp.heatmap.layers_b")
    chart = page.locator(".cnnlens-gap-chart")
    chart.locator(".dot").nth(2 * len(layers_a) - 1).wait_for()  # B's and the reference's
    assert chart.locator(".dot").count() == 2 * len(layers_a)
    k = 1
    since = nb.log.mark()
    chart.locator(".dot").nth(k).click()
    hit = nb.log.wait(lambda e: e["src"] == "heatmap" and e["pair"] == [k, k], since=since)
    assert hit["pair"] == [k, k]
    for side, name in (("a", layers_a[k]), ("b", layers_b[k])):
        nb.log.wait(lambda e, side=side, name=name: e["src"] == "grid" and e["side"] == side
                    and e["name"] == "layer" and e["new"] == name, since=since)
    assert nb.eval("cmp.pair") == [k, k]
    assert nb.eval("cmp.spectrum.pair") == [k, k]
    page.locator(f".cnnlens-gap-chart{attr('data-selected', k)}").wait_for()
    screenshot(page, "lab-reference-point-click", show=chart)


def test_difference_mode_reaches_python_and_follows_a_metric_switch(lab_reference):
    nb, page = lab_reference, lab_reference.page
    trust = page.locator(".cnnlens-trust")
    since = nb.log.mark()
    trust.locator("button[data-mode='difference']").click()
    nb.log.wait(lambda e: e["src"] == "mode" and e["mode"] == "difference", since=since)
    page.wait_for_function("() => (document.querySelector('.cnnlens-heatmap .mainheading')"
                           "?.textContent || '').includes('synthetic − seed1')")
    # a metric switch made in the kernel repaints scores; the difference mode repaints over it
    nb.execute("cmp.metric = 'svcca'")
    page.wait_for_function("() => (document.querySelector('.cnnlens-heatmap .mainheading')"
                           "?.textContent || '') === 'SVCCA: synthetic − seed1'", timeout=20_000)
    screenshot(page, "lab-reference-difference")
    since = nb.log.mark()
    trust.locator("button[data-mode='scores']").click()
    nb.log.wait(lambda e: e["src"] == "mode" and e["mode"] == "scores", since=since)
    page.wait_for_function("() => (document.querySelector('.cnnlens-heatmap .mainheading')"
                           "?.textContent || '') === 'SVCCA'")
    assert heading(page) == "SVCCA"
    nb.execute("cmp.metric = 'linear_cka'")
