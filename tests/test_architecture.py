"""The house's arrows (../shared/DESIGN.md section 2), read from the source with ``ast``.

Every ``import`` counts, also the lazy ones inside functions: a lazy import
hides a circle from Python's import machinery, not from the reader.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "cnnlens"
CORE = ("probe", "layers", "capture", "inputs", "inspector", "similarity", "encode", "demo",
        "featvis", "views")


def _module_name(path: pathlib.Path) -> str:
    parts = ["cnnlens", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``path`` imports (relative imports resolved).

    ``from pkg import sub`` where ``sub`` is a module is an arrow to ``pkg.sub`` only: the
    package is already being imported when one of its modules runs it.
    """
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            name = node.module or ""
            if node.level:
                name = f"{base}.{name}" if name else base
            subs = {f"{name}.{alias.name}" for alias in node.names} & modules
            found.update(subs)
            if len(subs) < len(node.names):  # some names are not modules: the package itself
                found.add(name)
    return found & modules


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    return {mod: _imports(path, set(files)) - {mod} for mod, path in files.items()}


GRAPH = _graph()


def test_graph_sees_the_package():
    assert {"cnnlens.probe", "cnnlens.capture", "cnnlens.widgets.lens"} <= set(GRAPH)
    assert "cnnlens.probe" in GRAPH["cnnlens.inspector"]


def _circles(graph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan): the import circles."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(mod):
        index[mod] = low[mod] = len(index)
        stack.append(mod)
        on.add(mod)
        for dep in graph[mod]:
            if dep not in index:
                visit(dep)
                low[mod] = min(low[mod], low[dep])
            elif dep in on:
                low[mod] = min(low[mod], index[dep])
        if low[mod] == index[mod]:
            comp = set()
            while True:
                x = stack.pop()
                on.discard(x)
                comp.add(x)
                if x == mod:
                    break
            if len(comp) > 1:
                out.append(comp)

    for mod in sorted(graph):
        if mod not in index:
            visit(mod)
    return out


KNOWN_CIRCLES: list[set] = []  # none: a new circle fails the test


def test_circles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [{"a", "b", "c"}]


def test_no_import_cycle():
    circles = [sorted(c) for c in _circles(GRAPH) if c not in KNOWN_CIRCLES]
    assert not circles, " | ".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("layer", [*CORE, "export"])
def test_core_and_export_never_import_widgets(layer):
    mods = [m for m in GRAPH if m == f"cnnlens.{layer}" or m.startswith(f"cnnlens.{layer}.")]
    assert mods, f"cnnlens.{layer} not found"
    bad = {m: sorted(d for d in GRAPH[m] if d.startswith("cnnlens.widgets"))
           for m in mods}
    assert not {m: d for m, d in bad.items() if d}


def _third_party(layer: str) -> dict[str, set[str]]:
    """Top-level packages outside cnnlens that each module of ``cnnlens.<layer>`` imports."""
    out = {}
    for path in (ROOT / layer).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names.add((node.module or "").split(".")[0])
        out[_module_name(path)] = names - {"cnnlens"}
    return out


def test_widgets_import_no_torch():
    """Views compute nothing: tensors are turned into payloads below the widgets."""
    bad = {m: sorted(n & {"torch", "torchvision"}) for m, n in _third_party("widgets").items()}
    assert not {m: n for m, n in bad.items() if n}


def test_views_layer_imports_no_widget_library():
    """cnnlens.views is what both the widgets and the offline pages call: no Jupyter in it."""
    jupyter = {"ipywidgets", "anywidget", "bqplot", "bqscales", "traitlets", "IPython"}
    bad = {m: sorted(n & jupyter) for m, n in _third_party("views").items()}
    assert not {m: n for m, n in bad.items() if n}
