"""The neuron pane's "visualise" button in real JupyterLab (issue 14, item 3).

Clicking it reaches Python (the job runs off the kernel thread), the progress and then the
image show in the pane; Python's state says the same. Readiness is a data-* attribute.
"""
from __future__ import annotations

import pytest
from harness import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_kernel_errors")]


def test_visualise_click_shows_the_image_and_python_agrees(lab_compare):
    nb, page = lab_compare, lab_compare.page
    nb.execute("cmp.lens_a._featvis.steps = 48; cmp.lens_a.layer = '3'; cmp.lens_a.neuron = 4")
    a = page.locator(".cnnlens-compare .cnnlens-lens").nth(0)
    panel = a.locator(".cnnlens-detail[data-neuron='4'][data-layer='3'] .cnnlens-featvis")
    panel.wait_for()
    assert panel.get_attribute("data-vis") == "none"
    panel.locator("button.cnnlens-featvis-run").click()
    done = a.locator(".cnnlens-featvis[data-vis='ready'][data-vis-source='live']")
    done.wait_for(timeout=60_000)
    assert done.locator("canvas.cnnlens-featvis-image").is_visible()
    assert "activation" in done.locator(".cnnlens-featvis-note").inner_text()
    state = nb.eval("[cmp.lens_a.detail.vis_status, cmp.lens_a.detail.vis['layer'], "
                    "cmp.lens_a.detail.vis['neuron'], cmp.lens_a.detail.vis['steps']]")
    assert state == ["ready", "3", 4, 48]
    screenshot(page, "lab-featvis", show=a)
