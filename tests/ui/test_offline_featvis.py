"""Feature visualisations in an exported Lens page over file:// (issue 14, item 4): no kernel.

The page opens on a selected neuron whose visualisation was exported; clicking another
channel in the grid shows that channel's (every channel of the layer was exported); the
button (kernel only) is hidden. Network guard and console checks come from the `page` fixture.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlens as cl

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def featvis_page(tmp_path_factory):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()).eval()
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    lens = cl.Lens(net, images, layer="3", neuron=4)
    lens._featvis.steps = 8  # what the page shows is what the pane would compute
    report = lens.to_html(tmp_path_factory.mktemp("featvis") / "lens.html", layers=["3"],
                          featvis=True, featvis_seconds=None)
    assert report.left_out == []
    return report


def test_exported_visualisations_show_and_follow_the_selection(page, featvis_page):
    page.goto(featvis_page.path.as_uri())
    panel = page.locator(".cnnlens-detail[data-neuron='4'] .cnnlens-featvis[data-vis='ready']")
    panel.wait_for()
    assert panel.get_attribute("data-vis-source") == "frame"
    assert panel.locator("canvas.cnnlens-featvis-image").is_visible()
    assert not panel.locator("button.cnnlens-featvis-run").is_visible()  # needs a kernel
    assert "activation" in panel.locator(".cnnlens-featvis-note").inner_text()
    box = page.locator(".cnnlens-grid canvas.cnnlens-canvas").bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + 2)  # the first tile: channel 0
    other = page.locator(".cnnlens-detail[data-neuron='0'] .cnnlens-featvis[data-vis='ready']")
    other.wait_for()
    assert other.get_attribute("data-vis-source") == "frame"
    assert "feature visualisations: 16 of 16 channels" in page.locator(
        ".cnnlens-export-note").inner_text()
