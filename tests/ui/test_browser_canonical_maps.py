"""Compare's canonical maps in a real browser (issue 14): a heatmap click shows the pair's
paired maps, a pane's image picker repaints them, a spectrum point selects a direction --
in JupyterLab (the kernel computes; Python state asserted) and in an exported page over
file:// (no kernel; the view picks precomputed frames). Readiness: data-* attributes and
the notebook's event log, never a sleep.
"""
from __future__ import annotations

import pytest
import torch
from harness import attr, full_lens, screenshot
from torch import nn

import cnnlens as cl

pytestmark = pytest.mark.browser

MAPS = ".cnnlens-canonical"


def tiny_cnn(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10)).eval()


def map_pixels(page):
    """Every painted map of the view, as data URLs (what a repaint changes)."""
    return page.locator(f"{MAPS} canvas[data-side]").evaluate_all(
        "cs => cs.map(c => c.toDataURL()).join('|')")


def click_cell(page, i, j):
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    page.locator(".cnnlens-heatmap rect.heatmapcell").first.wait_for()
    # the cell by its indices in cnnlens's overlay; the click goes through to bqplot's cell
    page.locator(f".cnnlens-heatmap rect.cnnlens-cell{attr('data-row', i)}{attr('data-col', j)}").click(force=True)


def pick_image(page, k):
    """Pane A's image picker (the full Lens shows it): click thumbnail k."""
    full_lens(page, 0).locator(f".cnnlens-images .cnnlens-thumb{attr('data-index', k)}").click()


def click_direction_dot(page, d):
    """Point d of the spectrum (the Scatter over its curve; bqplot draws one path.dot each)."""
    dots = page.locator(".cnnlens-spectrum .dot")
    dots.nth(d).click(force=True)  # transparent until selected: visible to the pointer all the same


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    images = torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    cmp = cl.Compare(tiny_cnn(0), tiny_cnn(1), images, metric="svcca")
    assert cmp.wait(120)
    report = cmp.to_html(tmp_path_factory.mktemp("maps") / "compare.html", images=[0, 1, 2],
                         featvis=False)
    assert report.left_out == []
    return cmp, report


def test_exported_page_click_shows_maps_image_pick_repaints_dot_selects(page, exported):
    _, report = exported
    page.goto(report.path.as_uri())
    page.locator(".cnnlens-grid[data-rendered='1']").first.wait_for()
    click_cell(page, 1, 1)
    view = page.locator(f"{MAPS}[data-rendered='1']{attr('data-pair', '1,1')}")
    view.wait_for()
    k = int(view.get_attribute("data-k"))
    assert page.locator(f"{MAPS} canvas[data-side='a']").count() == k
    assert page.locator(f"{MAPS} canvas[data-side='b']").count() == k
    assert view.get_attribute("data-image") == "0"
    before = map_pixels(page)
    pick_image(page, 2)
    page.locator(f"{MAPS}[data-rendered='1']{attr('data-image', '2')}").wait_for()
    assert map_pixels(page) != before
    click_direction_dot(page, 1)
    page.locator(f"{MAPS}{attr('data-direction', '1')}").wait_for()
    assert "direction 2" in page.locator(f"{MAPS} .cnnlens-canonical-tops").inner_text()
    # the overlay toggle: maps alone, at their own resolution
    page.locator(f"{MAPS} input.cnnlens-canonical-overlay").uncheck()
    page.locator(f"{MAPS}[data-overlay='0'][data-rendered='1']").wait_for()
    assert page.evaluate("window.scrollY") == 0  # no click scrolled the page
    screenshot(page, "offline-canonical-maps", show=page.locator(MAPS))


@pytest.mark.usefixtures("no_kernel_errors")
def test_lab_click_shows_maps_and_image_pick_repaints_without_a_pass(lab_compare):
    nb, page = lab_compare, lab_compare.page
    click_cell(page, 1, 1)
    page.locator(f"{MAPS}[data-rendered='1']{attr('data-pair', '1,1')}").wait_for(timeout=60_000)
    assert nb.eval("[cmp.maps.status, cmp.maps.pair, cmp.maps.image_data['image']]") == \
        ["ready", [1, 1], nb.eval("cmp.lens_a.image_index")]
    # the notebook's metric is linear CKA: the view says where the maps come from
    assert "SVCCA of the same pair" in page.locator(f"{MAPS} .cnnlens-canonical-note").inner_text()
    # the directions come from the statistics the matrix pass kept (maps=True by default)
    assert "no extra pass over the data" in page.locator(f"{MAPS} .cnnlens-canonical-cost").inner_text()
    passes = nb.eval("cmp.maps_job.passes")
    before = map_pixels(page)
    target = 3 if nb.eval("cmp.lens_a.image_index") != 3 else 4
    pick_image(page, target)
    page.locator(f"{MAPS}[data-rendered='1']{attr('data-image', target)}").wait_for(timeout=30_000)
    assert map_pixels(page) != before
    assert nb.eval("[cmp.maps.image_data['image'], cmp.maps_job.passes]") == [target, passes]
    click_direction_dot(page, 1)
    page.locator(f"{MAPS}{attr('data-direction', '1')}").wait_for()
    # the saved direction reaches the kernel a round trip later: ask until it has
    assert any(nb.eval("cmp.maps.direction") == 1 for _ in range(50))
    screenshot(page, "lab-canonical-maps", show=page.locator(MAPS))
