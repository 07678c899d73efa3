"""The notebooks in notebooks/ execute without error under nbclient (a real kernel).

The demo models are trained once per session into a temporary cache
(CNNLENS_CACHE), which every notebook kernel inherits; the full-budget models'
accuracies are checked here too, since this is where they get trained.
"""
import html.parser
import os
import pathlib
import shutil
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from cnnlens import demo

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_quickstart.ipynb", "02_synthetic_vs_real.ipynb", "03_teaching.ipynb"]
CELL_TIMEOUT = 600  # generous: a loaded 2-core CI machine is slow, but a hang must end

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """A cache folder holding the three full-budget demo models, trained once."""
    folder = tmp_path_factory.mktemp("cnnlens-cache")
    with pytest.MonkeyPatch.context() as mp:  # only while training: no leak into other tests
        mp.setenv("CNNLENS_CACHE", str(folder))
        nets = demo.models(progress=False)
    return {"folder": folder, "nets": nets}


@pytest.fixture
def run_notebook(demo_cache, tmp_path, monkeypatch):
    """Execute a copy of a notebook in tmp_path with the session cache; return it."""
    monkeypatch.setenv("CNNLENS_CACHE", str(demo_cache["folder"]))
    # The kernel spec runs plain `python`: make it this venv's.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])

    def run(name):
        path = tmp_path / name
        shutil.copy(NOTEBOOKS / name, path)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}})
        client.execute()  # raises CellExecutionError, naming the cell, on any error
        return nb

    return run


def test_demo_models_reach_their_accuracy(demo_cache):
    test = demo.data().test
    acc = {name: demo.accuracy(net, test) for name, net in demo_cache["nets"].items()}
    assert acc["real"] > 0.9 and acc["real_seed1"] > 0.9, acc
    assert acc["synthetic"] > 0.6, acc  # generalises from synthetic to real digits
    assert acc["synthetic"] < acc["real"], acc


def test_cached_models_load_fast(demo_cache, monkeypatch):
    monkeypatch.setenv("CNNLENS_CACHE", str(demo_cache["folder"]))
    t0 = time.perf_counter()
    demo.models(progress=lambda *a: pytest.fail("a cached model was retrained"))
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stripped(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "strip the outputs"


def test_quickstart_executes(run_notebook):
    nb = run_notebook("01_quickstart.ipynb")
    text = _stream_text(nb)
    assert "accuracy on the real test digits" in text
    assert "layer2.0.conv1" in text  # the resnet18 Lens was driven from Python


def test_study_executes_and_has_one_row_per_layer(run_notebook, demo_cache):
    nb = run_notebook("02_synthetic_vs_real.ipynb")
    (cell,) = [c for c in nb.cells if "per-layer-table" in c.metadata.get("tags", [])]
    html_out = [o["data"]["text/html"] for o in cell.outputs
                if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert html_out, "the per-layer table cell must display a table"
    rows = _table_rows(html_out[0])

    from cnnlens.probe import layer_tree

    net = demo_cache["nets"]["real"]
    compared = layer_tree(net, demo.data().test.images[:2]).select(None)
    assert [r[0] for r in rows] == [layer.name for layer in compared]
    for row in rows:
        assert len(row) == 1 + 10, row  # layer + 2 test sets x (score_b, score_c, gap, low, high)
        values = [float(v) for v in row[1:]]
        assert all(-1.0 <= v <= 1.0 for v in values), row
        for gap in (2, 7):  # each gap lies in its interval (low, high follow it; 3 decimals)
            assert values[gap + 1] - 1e-3 <= values[gap] <= values[gap + 2] + 1e-3, row
    # the reading is computed from the tables: it names their layers, on both test sets
    text = _stream_text(nb)
    names = [r[0] for r in rows]
    for images in ("real digits", "synthetic digits"):
        (line,) = [x for x in text.splitlines() if x.startswith(f"On {images} (")]
        assert "linear_cka" in line
    assert "the domain gap opens at" in text or "no domain gap" in text
    assert any(f"opens at {n} " in text for n in names) or "no domain gap" in text


def test_teaching_executes(run_notebook, tmp_path):
    nb = run_notebook("03_teaching.ipynb")
    assert "same numbers: True" in _stream_text(nb)
    if any("to_html" in c.source for c in nb.cells if c.cell_type == "code"):
        pages = list(tmp_path.glob("exported/lesson_*.html"))  # a gitignored folder
        assert len(pages) == 2 and all(p.stat().st_size > 0 for p in pages)


def _stream_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream")


class _Rows(html.parser.HTMLParser):
    """Cells of each <tbody> row of a pandas HTML table."""

    def __init__(self):
        super().__init__()
        self.rows, self._in_body, self._cell = [], False, None

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif self._in_body and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _table_rows(text: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(text)
    return parser.rows
