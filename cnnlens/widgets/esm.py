"""Where each widget's JS comes from: the esbuild output in ``cnnlens/static/``."""

from __future__ import annotations

import pathlib

__all__ = ["STATIC", "bundle"]

STATIC = pathlib.Path(__file__).resolve().parent.parent / "static"


def bundle(name: str):
    """Path of the esbuild output for one entry, or a stub that says how to build it.

    anywidget raises FileNotFoundError at class creation for a missing path; a source
    checkout without ``npm run build`` should still import and explain itself instead.
    """
    path = STATIC / f"{name}.js"
    if path.is_file():
        return path
    return (
        "export default { render({ el }) { el.textContent = "
        f"'cnnlens: JS bundle {name}.js missing; run: cd js && npm run build'; }} }};\n"
    )
