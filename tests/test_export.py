"""Teaching export without a browser: page layout, embedded state, budget, escaping, CLI.

The real-browser checks of the same pages (offline rendering, clicks) are in
tests/ui/test_offline_page.py.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest

import cnnlens as cl
from cnnlens.export import ExportBudgetError, export_lens
from cnnlens.export.page import _json_for_script

STATE = re.compile(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>',
                   re.DOTALL)


@pytest.fixture(scope="module")
def lens(model, images):
    return cl.Lens(model, images)


def embedded_state(path):
    (text,) = STATE.findall(path.read_text(encoding="utf-8"))
    return json.loads(text)["state"]


def test_page_and_one_assets_folder_with_local_loader(lens, tmp_path):
    report = export_lens(lens, tmp_path / "lesson.html", images=[0, 3])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.html", "lesson_files"]
    for asset in ["require.js", "html-manager/embed-amd.js", "anywidget/index.js",
                  "bqplot/index.js", "bqscales/index.js"]:
        assert (tmp_path / "lesson_files" / asset).is_file(), asset
    page = report.path.read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("lesson_files/") for s in sources), sources
    assert 'data-jupyter-widgets-cdn="lesson_files/cdn/"' in page  # no CDN fallback
    # no kernel behind the page: what needs one is hidden (also without CSS :has support)
    assert ".cnnlens-needs-kernel { display: none !important; }" in page
    upload = next(s for s in embedded_state(report.path).values() if s["model_name"] == "FileUploadModel")
    assert "cnnlens-needs-kernel" in upload["state"]["_dom_classes"]
    assert report.page_bytes == report.path.stat().st_size
    assert f"widget state {report.state_bytes / (1 << 20):.1f} MB" in page \
        or f"widget state {report.state_bytes / 1024:.0f} kB" in page
    assert "lesson.html" in str(report) and "lesson_files/" in str(report)


def test_frames_cover_layers_x_images_as_binary_tiles(lens, tmp_path):
    report = export_lens(lens, tmp_path / "p.html", layers=["0", "4"], images=[1, 2])
    state = embedded_state(report.path)
    (grid,) = [s for s in state.values() if s["state"].get("frames") and "sort" in s["state"]]
    assert sorted(grid["state"]["frames"]) == ["0|1", "0|2", "4|1", "4|2"]
    paths = {tuple(b["path"]) for b in grid["buffers"]}
    assert ("frames", "4|2", "data") in paths  # uint8 tiles travel as buffers, not JSON lists
    assert all(b["encoding"] == "base64" for b in grid["buffers"])
    assert lens.grid.frames == {}  # the live widget is left as it was


def _view_state(state, trait):
    (found,) = [s for s in state.values() if trait in s["state"] and s["state"].get("frames")]
    return found


def test_filter_and_top_k_frames_cover_every_exported_layer(lens, tmp_path):
    import numpy as np

    small = export_lens(lens, tmp_path / "small.html", layers=["0"], images=[0])
    report = export_lens(lens, tmp_path / "p.html", layers=["0", "1", "4"], images=[0])
    state = embedded_state(report.path)
    filters, detail = _view_state(state, "frame_weights"), _view_state(state, "frame_images")
    wanted = {"0", "1", "4", lens.layer}
    assert set(filters["state"]["frames"]) == wanted
    # conv "0" and the ReLU "1" after it share one weights payload: stored once
    assert filters["state"]["frames"]["1"]["weights_layer"] == "0"
    used = {f["weights_layer"] for f in filters["state"]["frames"].values()} - {""}
    assert set(filters["state"]["frame_weights"]) == used
    fbufs = {tuple(b["path"]) for b in filters["buffers"]}
    assert ("frame_weights", "0", "data") in fbufs  # uint8 tiles, not JSON lists
    assert ("frames", "4", "histogram", "counts") in fbufs
    assert set(detail["state"]["frames"]) == wanted
    dbufs = {tuple(b["path"]): b["data"] for b in detail["buffers"]}
    assert ("frame_images", "images", "data") in dbufs
    for layer in ["0", "1", "4"]:
        f = detail["state"]["frames"][layer]
        assert f["error"] == "" and f["channels"] == lens.activations(layer).shape[1]
        raw = __import__("base64").b64decode(dbufs[("frames", layer, "indices")])
        idx = np.frombuffer(raw, np.int32).reshape(f["channels"], f["k"])
        want, _ = lens.inspector.top_images(layer, 2, k=f["k"], by=f["by"])
        assert idx[2].tolist() == want.tolist()  # ranked as the live detail ranks
    # counted in the budget: more layers, more state; and the budget check sees it
    assert report.state_bytes > small.state_bytes
    with pytest.raises(ExportBudgetError):
        export_lens(lens, tmp_path / "q.html", layers=["0", "1", "4"], images=[0],
                    max_bytes=report.state_bytes - 1)
    assert lens.filters.frames == {} and lens.detail.frames == {}  # live widgets untouched


def test_selection_is_validated(lens, tmp_path):
    with pytest.raises(KeyError, match="not shown by this Lens"):
        export_lens(lens, tmp_path / "p.html", layers=["nope"])
    with pytest.raises(IndexError, match="has 24 images"):
        export_lens(lens, tmp_path / "p.html", images=[24])


def test_budget_error_names_the_overrun_and_writes_nothing(lens, tmp_path):
    with pytest.raises(ExportBudgetError) as err:
        export_lens(lens, tmp_path / "p.html", images=list(range(24)), max_bytes=50_000)
    msg = str(err.value)
    assert "over max_bytes=49 kB by" in msg and "largest layers" in msg and "'0'" in msg
    assert not list(tmp_path.iterdir())


def test_state_json_cannot_end_the_script_element():
    hostile = {"name": "</script><script>alert(1)</script><!-- & </SCRIPT >"}
    text = _json_for_script(hostile)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == hostile


def test_cli_explains_a_notebook_without_widget_state(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(nb, tmp_path / "plain.ipynb")
    out = subprocess.run([sys.executable, "-m", "cnnlens.export", str(tmp_path / "plain.ipynb"),
                          str(tmp_path / "plain.html")], capture_output=True, text=True,
                         check=False, timeout=60)
    assert out.returncode == 2
    assert "holds no widget state" in out.stderr and "--execute" in out.stderr
    assert not (tmp_path / "plain.html").exists()
