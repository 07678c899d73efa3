"""A Compare with a reference model (issue 13), exported and opened over file:// in Chromium.

No kernel: the gap chart renders under the heatmap, a click on one of its points selects
that layer's heatmap cell and both panes follow (links in js/trust_link.js and
js/compare_link.js); the difference mode recolours the heatmap with A~B minus A~C and
back; cells not above chance are dimmed; the warnings show above the heatmap.
"""
from __future__ import annotations

import pytest
import torch
from harness import attr, screenshot
from torch import nn

import cnnlens as cl

pytestmark = pytest.mark.browser


def tiny_cnn(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10)).eval()


IMAGES = torch.rand(24, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def reference_export(tmp_path_factory):
    cmp = cl.Compare(tiny_cnn(0), tiny_cnn(1), IMAGES, metric="linear_cka",
                     reference=tiny_cnn(2), names=("real", "synthetic", "seed1"))
    report = cmp.to_html(tmp_path_factory.mktemp("ref") / "reference.html", images=[0])
    return cmp, report


def open_page(page, report):
    page.goto(report.path.as_uri())
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    page.locator(".cnnlens-trust[data-ready='1']").wait_for()


def fills(page):
    return page.locator(".cnnlens-heatmap rect.heatmapcell").evaluate_all(
        "cs => cs.map(c => getComputedStyle(c).fill)")


def test_gap_chart_point_selects_the_cell_and_both_panes_follow(page, reference_export):
    cmp, report = reference_export
    open_page(page, report)
    chart = page.locator(".cnnlens-gap-chart")
    layers = cmp.heatmap.layers_a
    page.locator(f".cnnlens-gap-chart{attr('data-points', len(layers))}").wait_for()
    dots = chart.locator(".dot")
    dots.nth(2 * len(layers) - 1).wait_for()  # B's and the reference's points
    assert dots.count() == 2 * len(layers)
    assert "real by depth: synthetic vs seed1" in chart.inner_text()
    k = len(layers) - 1  # the last layer (fc): its cell is (k, k), names match
    scroll = page.evaluate("() => [scrollX, scrollY]")
    dots.nth(k).click()
    link = page.locator(".cnnlens-compare-link")
    page.locator(f".cnnlens-compare-link{attr('data-pair', f'{k},{k}')}").wait_for()
    page.locator(f".cnnlens-gap-chart{attr('data-selected', k)}").wait_for()
    for n, name in ((0, layers[k]), (1, cmp.heatmap.layers_b[k])):
        pane = page.locator(".cnnlens-compare .cnnlens-compare-pane").nth(n)
        pane.locator(f".cnnlens-grid{attr('data-layer', name)}").wait_for()
    assert link.get_attribute("data-highlight-row") == str(k)
    assert page.evaluate("() => [scrollX, scrollY]") == scroll  # no click scrolls the page
    # and back: a heatmap click moves the chart's selection
    page.locator(f".cnnlens-heatmap rect.cnnlens-cell{attr('data-row', 0)}{attr('data-col', 0)}").click(force=True)
    page.locator(f".cnnlens-gap-chart{attr('data-selected', 0)}").wait_for()
    screenshot(page, "offline-reference-chart", show=chart)


def test_difference_mode_recolours_the_heatmap_and_back(page, reference_export):
    _, report = reference_export
    open_page(page, report)
    trust = page.locator(".cnnlens-trust")
    before = fills(page)
    trust.locator("button[data-mode='difference']").click()
    page.locator(".cnnlens-trust[data-mode='difference']").wait_for()
    page.wait_for_function(
        "() => (document.querySelector('.cnnlens-heatmap .mainheading')?.textContent || '')"
        ".includes('synthetic − seed1')")
    page.wait_for_function("b => { const f = Array.from(document.querySelectorAll("
                           "'.cnnlens-heatmap rect.heatmapcell'), c => getComputedStyle(c).fill);"
                           " return f.join() !== b.join(); }", arg=before)
    # a cell's tooltip gives both scores and the error
    cell = page.locator(f".cnnlens-heatmap rect.cnnlens-cell{attr('data-row', 0)}{attr('data-col', 0)}")
    tip = cell.get_attribute("aria-label")
    assert "synthetic" in tip and "seed1" in tip and "±" in tip, tip
    assert "linear CKA: synthetic − seed1 = " in tip, tip  # the value shown is the difference
    screenshot(page, "offline-reference-difference")
    # a metric switch keeps the mode (recoloured from that metric's difference)
    page.locator(".cnnlens-compare select").first.select_option(label="SVCCA")
    page.wait_for_function(
        "() => (document.querySelector('.cnnlens-heatmap .mainheading')?.textContent || '')"
        ".includes('SVCCA: synthetic − seed1')")
    trust.locator("button[data-mode='scores']").click()
    page.wait_for_function(
        "() => (document.querySelector('.cnnlens-heatmap .mainheading')?.textContent || '') === 'SVCCA'")
    # the gap chart follows the metric without a kernel: its y axis names it
    page.locator(".cnnlens-gap-chart .axis", has_text="SVCCA").first.wait_for()


def test_warnings_and_chance_dimming_show(page, reference_export):
    cmp, report = reference_export
    open_page(page, report)
    warnings = cmp.trust.link.warnings
    items = page.locator(".cnnlens-trust .cnnlens-warnings li")
    assert items.count() == len(warnings)
    if warnings:
        assert items.first.inner_text() == warnings[0]
    faint = cmp.trust.link.per_metric["linear_cka"]["faint"]
    page.locator(f".cnnlens-trust{attr('data-faint', len(faint))}").wait_for()
    hatched = page.locator(".cnnlens-heatmap rect.cnnlens-cell[data-chance='below']")
    assert hatched.count() == len(faint)
    assert sorted(f"{c.get_attribute('data-row')},{c.get_attribute('data-col')}" for c in hatched.all()) == \
        sorted(faint)


@pytest.fixture(scope="module")
def datasets_export(tmp_path_factory):
    cmp = cl.Compare(tiny_cnn(0), tiny_cnn(1), {"bright": IMAGES, "dark": IMAGES ** 4},
                     metric="linear_cka", reference=tiny_cnn(2))
    report = cmp.to_html(tmp_path_factory.mktemp("sets") / "datasets.html", images=[0])
    return cmp, report


def test_dataset_switch_works_on_the_exported_page(page, datasets_export):
    cmp, report = datasets_export
    open_page(page, report)
    trust = page.locator(".cnnlens-trust[data-dataset='bright']")
    trust.wait_for()

    def values():
        return page.locator(".cnnlens-heatmap text.cnnlens-cell-value").evaluate_all(
            "ts => ts.map(t => t.textContent)")

    bright = values()
    assert bright == [f"{v:.2f}" for v in cmp.result["bright"].matrix("linear_cka").ravel()]
    page.locator(".cnnlens-trust button[data-dataset='dark']").click()
    page.locator(".cnnlens-trust[data-dataset='dark']").wait_for()
    want = [f"{v:.2f}" for v in cmp.result["dark"].matrix("linear_cka").ravel()]
    assert want != bright
    page.wait_for_function("w => Array.from(document.querySelectorAll("
                           "'.cnnlens-heatmap text.cnnlens-cell-value'), t => t.textContent)"
                           ".join() === w.join()", arg=want)
    assert "spectrum: the bright images" in page.locator(".cnnlens-datasets-note").inner_text()
    # the difference mode reads the selected dataset's difference
    page.locator(".cnnlens-trust button[data-mode='difference']").click()
    diff = cmp.result["dark"].difference("linear_cka")
    want = [f"{v:.2f}" for v in diff.ravel()]
    page.wait_for_function("w => Array.from(document.querySelectorAll("
                           "'.cnnlens-heatmap text.cnnlens-cell-value'), t => t.textContent)"
                           ".join() === w.join()", arg=want)
    screenshot(page, "offline-reference-datasets")
