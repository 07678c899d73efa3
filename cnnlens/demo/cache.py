"""On-disk cache of the demo models' weights.

Where: ``$CNNLENS_CACHE`` if set, else ``$XDG_CACHE_HOME/cnnlens``, else
``~/.cache/cnnlens``. One file per model, ``demo-<name>-<key>.pt``, where
``key`` hashes the training config (:meth:`TrainConfig.key_fields`) and the
code of every module that shapes the weights (data, generator, model, training
loop; comments and docstrings excluded). Change any of them and the old entry
is stale: it is ignored, retrained and replaced.

Robustness rules: a file that cannot be read, has the wrong key or shapes, or
holds non-finite weights is treated as a miss and rebuilt (with a warning);
writes go to a temporary file that is renamed into place, so a crash or a
concurrent writer never leaves half a file; an unwritable cache folder only
costs a warning and a retrain next time.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import pathlib
import tempfile
import warnings

import torch

from .net import DigitNet

# Modules whose source decides the weights; editing one invalidates the cache.
_SOURCES = ("digits.py", "strokes.py", "synth.py", "net.py", "train.py")
FORMAT = 1
"""Bump when the layout of a cache file changes."""


def cache_dir() -> pathlib.Path:
    """The cache folder (not created here)."""
    env = os.environ.get("CNNLENS_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "cnnlens"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Digest of the code (not the comments or docstrings) that shapes the weights."""
    h = hashlib.sha256(f"format={FORMAT};torch={torch.__version__.split('+')[0]}".encode())
    here = pathlib.Path(__file__).parent
    for name in _SOURCES:
        h.update(name.encode())
        try:
            h.update(_code_only((here / name).read_text(encoding="utf-8")).encode())
        except (OSError, SyntaxError):  # e.g. a zipped or bytecode-only install
            from importlib.metadata import PackageNotFoundError, version

            try:
                h.update(version("cnnlens").encode())
            except PackageNotFoundError:
                h.update(b"unknown")
    return h.hexdigest()[:16]


def _code_only(source: str) -> str:
    """The module's syntax tree without docstrings: editing prose keeps the cache valid."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def cache_key(fields: dict) -> str:
    """Hash of a config's key fields and the code version."""
    blob = json.dumps({"config": fields, "code": code_version()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_path(name: str, key: str) -> pathlib.Path:
    """Path of the cache file for model ``name`` under ``key``."""
    return cache_dir() / f"demo-{name}-{key}.pt"


def load(name: str, key: str, size: int) -> tuple[DigitNet, dict] | None:
    """The cached ``(model, info)`` for ``name``/``key``, or None on a miss.

    A present but unusable file (truncated, garbage, other key, wrong shapes,
    NaN weights) warns, is deleted, and counts as a miss.
    """
    path = entry_path(name, key)
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("key") != key:
            raise ValueError("the file belongs to another key")
        model = DigitNet(size)
        model.load_state_dict(blob["state_dict"])  # strict: missing/extra/misshaped raise
        if not all(torch.isfinite(p).all() for p in model.state_dict().values()):
            raise ValueError("non-finite weights")
        info = dict(blob["info"])
    except Exception as err:  # noqa: BLE001 - any defect means "rebuild"; never fail the caller
        warnings.warn(f"cnnlens demo cache: ignoring unusable {path} ({err}); retraining",
                      RuntimeWarning, stacklevel=3)
        _unlink(path)
        return None
    return model.eval(), info


def save(name: str, key: str, model: torch.nn.Module, info: dict) -> pathlib.Path | None:
    """Write an entry atomically and drop stale entries of the same model.

    Returns the path, or None if the folder is not writable (a warning says why).
    """
    path = entry_path(name, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save({"key": key, "state_dict": model.state_dict(), "info": info}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic on POSIX and Windows
        except BaseException:
            _unlink(pathlib.Path(tmp))
            raise
    except OSError as err:
        warnings.warn(f"cnnlens demo cache: cannot write {path} ({err}); the model will be "
                      "retrained next time. Set CNNLENS_CACHE to a writable folder.",
                      RuntimeWarning, stacklevel=3)
        return None
    for old in path.parent.glob(f"demo-{name}-*.pt"):
        if old != path:
            _unlink(old)  # stale: other config or code version
    return path


def _unlink(path: pathlib.Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
