"""Tier 3 fixtures: Debian Chromium + Playwright against real JupyterLab, Voila and exported pages.

Run: ``PATH=.venv/bin:$PATH .venv/bin/python -m pytest -q -m browser tests/ui``.
One Lab server and one Voila server per session (started on first use), tests run serially;
readiness is always a ``data-*`` attribute or a kernel event, never a sleep. Without Chromium
or Playwright the tests skip, except under ``CI=true`` where that is a failure.
Screenshots land in ``.ci-artifacts/ui/`` (gitignored) for people to look at.
"""
from __future__ import annotations

import os
import pathlib
import shutil

import pytest
from harness import CHROMIUM, Guard, JupyterServer, LabNotebook, launch_browser, screenshot

NOTEBOOKS = pathlib.Path(__file__).resolve().parent / "notebooks"


def _missing(what):
    """Skip, or fail under CI=true: CI must never pass by not running the browser tier."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (required when CI=true)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        _missing(f"{CHROMIUM} not found: apt-get install -y chromium (or make chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright not installed: pip install -e '.[dev]'")
    with sync_playwright() as pw:
        b = launch_browser(pw)
        yield b
        b.close()


@pytest.fixture(scope="session")
def nbroot(tmp_path_factory):
    """A copy of tests/ui/notebooks: Lab autosave and checkpoints never touch the repo."""
    root = tmp_path_factory.mktemp("nbroot")
    for nb in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(nb, root / nb.name)
    return root


@pytest.fixture(scope="session")
def lab(browser, nbroot, tmp_path_factory):
    with JupyterServer("lab", nbroot, tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="session")
def voila(browser, nbroot, tmp_path_factory):
    with JupyterServer("voila", nbroot, tmp_path_factory.mktemp("voila")) as server:
        yield server


# A laptop-sized window: what a student sees; CNNLENS_UI_VIEWPORT=WxH overrides it.
WIDTH, HEIGHT = map(int, os.environ.get("CNNLENS_UI_VIEWPORT", "1400x900").split("x"))


def _open_page(browser, allowed_external=()):
    ctx = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    return ctx, page, Guard(page, allowed_external)


def _close_page(ctx, page, guard, name, console=True):
    try:
        screenshot(page, name)
    finally:
        ctx.close()
    problems = guard.problems(console=console)
    assert not problems, "\n".join(problems)


@pytest.fixture
def page(browser, request):
    """A fresh guarded page (own context); fails the test on network use, page or console errors."""
    ctx, pg, guard = _open_page(browser)
    pg.guard = guard
    yield pg
    _close_page(ctx, pg, guard, request.node.name)


@pytest.fixture(scope="module")
def lab_compare(browser, lab, request):
    """compare_small.ipynb run in JupyterLab once per module; tests share the live notebook.

    Each test starts from the state the previous one left (a kernel start costs ~10 s here).
    """
    ctx, page, guard = _open_page(browser)
    name = lab.copy_notebook("compare_small.ipynb", request.module.__name__.rsplit(".", 1)[-1])
    nb = LabNotebook(page, lab, name).open()
    since = lab.log.mark()
    nb.run_all()
    lab.log.wait(lambda e: e["src"] == "ready", since=since, timeout=120)
    page.wait_for_selector(".cnnlens-grid[data-rendered='1']", timeout=60_000)
    nb.guard = guard
    yield nb
    _close_page(ctx, page, guard, f"{request.module.__name__.rsplit('.', 1)[-1]}-final")


@pytest.fixture
def no_kernel_errors(lab_compare):
    """Fails the test on a kernel traceback, a network request, a page or console error."""
    since = lab_compare.log.mark()
    yield
    tbs = lab_compare.log.tracebacks(since)
    assert not tbs, "kernel raised:\n" + tbs[0]
    problems = lab_compare.guard.problems()
    assert not problems, "\n".join(problems)
