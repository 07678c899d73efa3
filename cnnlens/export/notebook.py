"""Notebooks saved with widget state -> offline page, with the loader of :mod:`.page`.

``python -m cnnlens.export NOTEBOOK.ipynb OUT.html [--execute]``
"""
from __future__ import annotations

import json
import pathlib
from urllib.parse import quote

from .page import ExportReport, _loader_head, _modules, write_assets

_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{{ resources.cnnlens_loader }}{%- endblock -%}
{%- block jupyter_widgets -%}{%- endblock -%}
{%- block html_head_js_mathjax -%}{%- endblock -%}
{%- block html_head_js_mermaidjs -%}{%- endblock -%}
"""
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def export_notebook(notebook, path, *, execute=False, timeout=600) -> ExportReport:
    """Render a notebook with saved widget state as an offline page (same loader as above).

    Parameters
    ----------
    notebook : path
        An ``.ipynb`` whose metadata holds widget state: saved by JupyterLab with
        "Save Widget State Automatically" on (Settings menu), or executed with
        ``execute=True`` (nbclient stores the state it saw).
    path : path
        The page to write; assets go to ``<stem>_files/`` next to it.
    execute : bool
        Run the notebook first (in its own folder) and use the state it leaves.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    notebook, path = pathlib.Path(notebook), pathlib.Path(path)
    nb = nbformat.read(notebook, as_version=4)
    if execute:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=timeout, store_widget_state=True,
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    saved = nb.metadata.get("widgets", {}).get(_WIDGET_STATE, {}).get("state")
    if not saved:
        raise ValueError(f"{notebook} holds no widget state: save it from JupyterLab with "
                         "Settings > Save Widget State Automatically on, or pass execute=True "
                         "(--execute)")
    nb.metadata["widgets"][_WIDGET_STATE]["state"] = saved
    modules = _modules(saved)
    assets = path.with_name(f"{path.stem}_files")
    assets_bytes = write_assets(assets, modules)
    exporter = HTMLExporter(template_name="lab", template_file="cnnlens_offline.html.j2",
                            extra_loaders=[DictLoader({"cnnlens_offline.html.j2":
                                                       _OFFLINE_TEMPLATE})])
    body, _ = exporter.from_notebook_node(
        nb, resources={"cnnlens_loader": _loader_head(quote(assets.name), modules)})
    path.write_text(body, encoding="utf-8")
    state_bytes = len(json.dumps(nb.metadata["widgets"]))
    return ExportReport(path=path, assets=assets, page_bytes=path.stat().st_size,
                        assets_bytes=assets_bytes, state_bytes=state_bytes)


def main(argv=None):
    """``python -m cnnlens.export NOTEBOOK.ipynb OUT.html [--execute]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m cnnlens.export",
        description="Render a notebook with saved widget state as an offline HTML page "
                    "(plus a sibling <name>_files/ folder of assets).")
    parser.add_argument("notebook", type=pathlib.Path)
    parser.add_argument("output", type=pathlib.Path)
    parser.add_argument("--execute", action="store_true",
                        help="run the notebook first and keep the widget state it leaves")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell with --execute")
    args = parser.parse_args(argv)
    try:
        report = export_notebook(args.notebook, args.output, execute=args.execute,
                                 timeout=args.timeout)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    print(report)
    return 0

