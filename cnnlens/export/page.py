"""Writing an offline page: widget state, the vendored loader and the AMD bundles it needs.

Assets folder (``<stem>_files/`` next to the page, shared by every page in that folder):
``require.js``; ``html-manager/`` (``embed-amd.js``, the Jupyter widget manager for static
pages, and its fonts, vendored from npm into ``cnnlens/static/vendor/`` at build time); and
one ``<module>/index.js`` per third-party widget module in the state (anywidget, bqplot,
bqscales), copied from the AMD bundles their wheels install under
``<prefix>/share/jupyter/nbextensions/``, so versions always match the Python packages.
"""
from __future__ import annotations

import html
import json
import pathlib
import re
import shutil
import site
import sys
from dataclasses import dataclass, field
from urllib.parse import quote

MB = 1 << 20
DEFAULT_MAX_BYTES = 25 * MB
VENDOR = pathlib.Path(__file__).resolve().parent.parent / "static" / "vendor"
BUILTIN_MODULES = ("@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output")
_MODEL_REF = re.compile(r"IPY_MODEL_([0-9a-f]{32})")


class ExportBudgetError(ValueError):
    """The page would exceed ``max_bytes``; the message names the overrun and its causes."""


@dataclass
class ExportReport:
    """What an export wrote; ``str()`` states the sizes."""

    path: pathlib.Path
    """The page."""
    assets: pathlib.Path
    """Its sibling assets folder, ``<stem>_files/``."""
    page_bytes: int
    """Size of the page (state included)."""
    assets_bytes: int
    """Size of the assets folder (the same for every page; about 5 MB)."""
    state_bytes: int
    """Size of the embedded widget state, the part ``max_bytes`` bounds."""
    left_out: list = field(default_factory=list)
    """What the page could have held but does not, one line each (e.g. feature
    visualisations beyond the time or page budget); the footer says it too."""

    def __str__(self):
        return (f"wrote {self.path.name} ({_mb(self.page_bytes)}) + {self.assets.name}/ "
                f"({_mb(self.assets_bytes)} of shared assets)")


def _mb(n):
    return f"{n / MB:.1f} MB" if n >= MB / 10 else f"{n / 1024:.0f} kB"


def _json_for_script(obj) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can end the element or open a comment."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _nbextension_dirs():
    dirs = [pathlib.Path(sys.prefix) / "share/jupyter/nbextensions",
            pathlib.Path(site.getuserbase()) / "share/jupyter/nbextensions"]
    try:
        from jupyter_core.paths import jupyter_path
        dirs += [pathlib.Path(p) for p in jupyter_path("nbextensions")]
    except ImportError:  # jupyter_core is optional at run time
        pass
    return dirs


def _module_bundle(module: str) -> pathlib.Path:
    for base in _nbextension_dirs():
        if (base / module / "index.js").is_file():
            return base / module
    raise FileNotFoundError(
        f"no offline bundle for widget module {module!r}: looked for {module}/index.js in "
        f"{[str(d) for d in _nbextension_dirs()]}; reinstall the Python package that provides it")


def write_assets(folder, modules) -> int:
    """Copy the loader and the AMD bundles of `modules` into `folder`; returns its size."""
    folder = pathlib.Path(folder)
    if not (VENDOR / "html-manager" / "embed-amd.js").is_file():
        raise FileNotFoundError(f"{VENDOR} lacks the widget manager; build the JS first: "
                                "cd js && npm install && npm run build")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(VENDOR, folder, dirs_exist_ok=True)
    for module in modules:
        shutil.copytree(_module_bundle(module), folder / module, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.map", "extension.js"))
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _loader_head(assets_url: str, modules) -> str:
    paths = {m: f"{assets_url}/{m}/index" for m in modules}
    # The manager's webpack chunks load their fonts next to their AMD module's URL; map the
    # module names into the folder that holds embed-amd.js and the fonts (one copy for all).
    paths["@jupyter-widgets"] = paths["@jupyter-widgets/html-manager/dist"] = \
        f"{assets_url}/html-manager"
    return (f'<script src="{html.escape(assets_url)}/require.js"></script>\n'
            f"<script>require.config({{paths: {_json_for_script(paths)}}});</script>\n"
            # the CDN fallback of the manager goes to this folder too: never to the internet
            f'<script src="{html.escape(assets_url)}/html-manager/embed-amd.js" '
            f'data-jupyter-widgets-cdn="{html.escape(assets_url)}/cdn/"></script>\n'
            # no kernel here: Run, uploads and the like would do nothing (the views also
            # hide them when they find no kernel; this covers browsers without CSS :has)
            "<style>.cnnlens-needs-kernel { display: none !important; }</style>")


def _modules(state: dict):
    found = {s["model_module"] for s in state.values()} | {s.get("state", {}).get(
        "_view_module") for s in state.values()}
    return sorted(m for m in found if m and m not in BUILTIN_MODULES)


def _state_of(views) -> dict:
    """State of `views` and every widget they reference, however deeply nested."""
    from ipywidgets.embed import dependency_state
    from ipywidgets.widgets.widget import _instances

    state = dependency_state(views, drop_defaults=False)  # anywidget needs its defaults (#339)
    while True:
        missing = set(_MODEL_REF.findall(json.dumps(state, default=lambda _: None))) - set(state)
        if not missing:
            return state
        for model_id in missing:
            state.update(dependency_state([_instances[model_id]], drop_defaults=False))


def _patch_traits(state: dict, traits: dict) -> None:
    """Put precomputed tables into the embedded state without touching the live widgets.

    ``traits``: widget -> {trait: value}, e.g. ActivationGrid -> {"frames": {"layer|image":
    payload}}. Setting the traits instead would push every frame to a displayed notebook
    view too, and leave them behind in it.
    """
    from base64 import standard_b64encode

    from ipywidgets.widgets.widget import _remove_buffers

    for widget, values in traits.items():
        entry = state[widget.model_id]
        plain, paths, buffers = _remove_buffers(dict(values))
        entry["state"].update(plain)
        kept = [b for b in entry.get("buffers", []) if b["path"][0] not in values]
        entry["buffers"] = kept + [
            {"encoding": "base64", "path": path, "data": standard_b64encode(buf).decode("ascii")}
            for path, buf in zip(paths, buffers)]


def frame_bytes(frames: dict) -> dict:
    """Page bytes (base64) per layer over all grids and images, largest first."""
    per_layer = {}
    for payloads in frames.values():
        for key, p in payloads.items():
            layer = key.rsplit("|", 1)[0]
            raw = sum(len(v) for v in p.values() if isinstance(v, (bytes, bytearray)))
            per_layer[layer] = per_layer.get(layer, 0) + raw * 4 // 3
    return dict(sorted(per_layer.items(), key=lambda kv: -kv[1]))


def budget_error(total: int, max_bytes: int, frames: dict, per=None) -> ExportBudgetError:
    """The error naming the overrun; ``per`` says what the layer sizes cover (an estimate)."""
    per_layer = frame_bytes(frames)
    top = ", ".join(f"{name!r} {_mb(n)}" for name, n in list(per_layer.items())[:5])
    return ExportBudgetError(
        f"the page would hold {'about ' if per else ''}{_mb(total)} of widget state, over "
        f"max_bytes={_mb(max_bytes)} by {_mb(total - max_bytes)}"
        + (f"; largest layers ({per or 'all exported images'}): {top}" if top else "")
        + "; export fewer layers or images, or raise max_bytes")


def export_widgets(views, path, *, title="cnnlens", max_bytes=DEFAULT_MAX_BYTES, frames=None,
                   traits=None, drop=(), note="") -> ExportReport:
    """Write `views` (widgets, shown in this order) as an offline page at `path`.

    Parameters
    ----------
    views : widget or list of widgets
    path : str or Path
        The page; its assets go to ``<stem>_files/`` beside it.
    title : str
    max_bytes : int or None
        Budget for the embedded widget state; :class:`ExportBudgetError` when exceeded.
    frames : dict, optional
        ActivationGrid -> ``{"layer|image": payload}`` to embed as that grid's ``frames``.
    traits : dict, optional
        widget -> ``{trait: value}`` to embed as well (the filter and detail views' tables);
        counted in ``max_bytes`` like everything in the state.
    drop : list of widgets
        Views left out of the page's layout (their models stay in the state): the Lens's
        bqplot weight histogram, which the filter view redraws from its frames instead.
    note : str
        A line for the page's footer.
    """
    from ipywidgets.embed import embed_data

    views = list(views) if isinstance(views, (list, tuple)) else [views]
    path = pathlib.Path(path)
    state = _state_of(views)
    patches = {w: dict(v) for w, v in (traits or {}).items()}
    for grid, payloads in (frames or {}).items():
        patches.setdefault(grid, {})["frames"] = payloads
    _patch_traits(state, patches)
    gone = {f"IPY_MODEL_{w.model_id}" for w in drop}
    for entry in state.values():
        kids = entry["state"].get("children")
        if isinstance(kids, list) and gone & set(kids):
            entry["state"]["children"] = [c for c in kids if c not in gone]
    data = embed_data(views, drop_defaults=False, state=state)
    state_json = _json_for_script(data["manager_state"])
    if max_bytes is not None and len(state_json) > max_bytes:
        raise budget_error(len(state_json), max_bytes, frames or {})
    modules = _modules(state)
    assets = path.with_name(f"{path.stem}_files")
    assets_bytes = write_assets(assets, modules)
    assets_url = quote(assets.name)
    views_html = "\n".join(
        f'<script type="application/vnd.jupyter.widget-view+json">{_json_for_script(v)}</script>'
        for v in data["view_specs"])
    footer = f"{html.escape(note)} · " if note else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="cnnlens">
<title>{html.escape(title)}</title>
{_loader_head(assets_url, modules)}
<style>body {{ font-family: sans-serif; margin: 1em; }}
.cnnlens-export-note {{ color: #666; font-size: 12px; margin-top: 1em; }}</style>
</head><body>
<script type="application/vnd.jupyter.widget-state+json">{state_json}</script>
{views_html}
<p class="cnnlens-export-note">{footer}widget state {_mb(len(state_json))}; exported with
cnnlens; works offline, no kernel (assets in {html.escape(assets.name)}/).</p>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return ExportReport(path=path, assets=assets, page_bytes=path.stat().st_size,
                        assets_bytes=assets_bytes, state_bytes=len(state_json))
