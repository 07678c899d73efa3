"""Real-browser harness shared by tests/ui and bench/ui_latency.py (no pytest in here).

Debian Chromium driven by Python Playwright, with a network guard: Chromium gets a dead
proxy and a resolver that maps every host but 127.0.0.1 to nothing, so a page that reaches
for the internet fails fast, and :class:`Guard` records the attempt so the test can fail on it.
Jupyter servers run from this venv, bound to 127.0.0.1, in their own process group, with
private config/runtime/settings dirs, and an IPython startup file that mirrors every kernel
traceback (including those raised inside comm handlers, which Lab never shows in a cell) into
a JSON-lines event log that the tests wait on.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = pathlib.Path(os.environ.get("CNNLENS_ARTIFACTS", ROOT / ".ci-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
    # network guard; `<-loopback>` in the bypass list would break 127.0.0.1 itself
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1;localhost",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

KERNEL_STARTUP = r'''
# cnnlens ui tests: mirror kernel tracebacks into the event log (comm handler errors included)
import json as _json, os as _os, sys as _sys, time as _time, traceback as _traceback
_ip = get_ipython()
_orig_showtraceback = _ip.showtraceback
def _cnnlens_ui_showtraceback(*args, **kwargs):
    with open(_os.environ["CNNLENS_UI_LOG"], "a") as f:
        err = "".join(_traceback.format_exception(*_sys.exc_info()))[-4000:]
        f.write(_json.dumps({"src": "traceback", "t": _time.time(), "error": err}) + "\n")
    return _orig_showtraceback(*args, **kwargs)
_ip.showtraceback = _cnnlens_ui_showtraceback
import threading as _threading
def _cnnlens_ui_thread_excepthook(args):  # background jobs (e.g. Compare's similarity pass)
    with open(_os.environ["CNNLENS_UI_LOG"], "a") as f:
        err = "".join(_traceback.format_exception(args.exc_type, args.exc_value,
                                                  args.exc_traceback))[-4000:]
        f.write(_json.dumps({"src": "traceback", "t": _time.time(),
                             "error": f"in thread {args.thread.name}:\n{err}"}) + "\n")
    _threading.__excepthook__(args)
_threading.excepthook = _cnnlens_ui_thread_excepthook
'''


def attr(name, value):
    """A CSS attribute selector with a safely quoted value (names may hold quotes)."""
    return f"[{name}={json.dumps(str(value))}]"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EventLog:
    """The JSON-lines file that kernels append to (tracebacks + the notebooks' observers)."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.path.touch()

    def events(self):
        lines = self.path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def mark(self):
        return len(self.events())

    def tracebacks(self, since=0):
        return [e["error"] for e in self.events()[since:] if e["src"] == "traceback"]

    def wait(self, pred, since=0, timeout=20):
        """First event after `since` matching `pred`; raises at once on a kernel traceback."""
        deadline = time.perf_counter() + timeout
        while True:
            new = self.events()[since:]
            tbs = [e["error"] for e in new if e["src"] == "traceback"]
            if tbs:
                raise AssertionError("kernel raised:\n" + tbs[0])
            hit = next((e for e in new if pred(e)), None)
            if hit is not None:
                return hit
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no matching kernel event in {timeout}s; got {new[-10:]}")
            time.sleep(0.02)


class JupyterServer:
    """A `jupyter lab` or `voila` process on 127.0.0.1 serving `root`; use as a context manager."""

    def __init__(self, kind, root, tmp):
        assert kind in ("lab", "voila"), kind
        self.kind, self.root, self.tmp = kind, pathlib.Path(root).resolve(), pathlib.Path(tmp).resolve()
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.token, self.port = secrets.token_hex(16), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = EventLog(self.tmp / "kernel-events.jsonl")
        self.server_log = self.tmp / "server.log"
        self.proc = None

    def _env(self):
        env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}")
        for var, sub in [("JUPYTER_CONFIG_DIR", "cfg"), ("JUPYTER_RUNTIME_DIR", "rt"),
                         ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "ws"), ("IPYTHONDIR", "ipy")]:
            (self.tmp / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(self.tmp / sub)
        settings = {
            "@jupyterlab/apputils-extension/notification":
                {"fetchNews": "false", "checkForUpdates": False},
            # windowing would detach off-screen outputs (and their widgets) from the DOM
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        }
        for name, value in settings.items():
            target = self.tmp / "settings" / f"{name}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(value))
        startup = self.tmp / "ipy/profile_default/startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-cnnlens-ui.py").write_text(KERNEL_STARTUP)
        env["CNNLENS_UI_LOG"] = str(self.log.path)
        env.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: kernels must not fight
        return env

    def _command(self):
        if self.kind == "voila":
            return ["voila", str(self.root), f"--port={self.port}", "--no-browser",
                    "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
                    f"--Voila.token={self.token}",
                    # what the README tells teachers to run: Voila's lab template minus its
                    # CDN links (share/jupyter/voila/templates/cnnlens)
                    "--template=cnnlens"]
        return ["jupyter", "lab", f"--port={self.port}", "--no-browser", "--allow-root",
                "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
                "--LabApp.extension_manager=readonly",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]

    def __enter__(self):
        probe = (f"{self.base}/voila/static/voila.js" if self.kind == "voila"
                 else f"{self.base}/api/status?token={self.token}")
        out = open(self.server_log, "w")
        self.proc = subprocess.Popen(self._command(), cwd=self.root, env=self._env(), stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.perf_counter() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited:\n{self.server_log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(probe, timeout=2)
                return self
            except OSError:
                if time.perf_counter() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"{self.kind} did not answer {probe} within 60 s")
                time.sleep(0.1)

    def __exit__(self, *exc):
        # own process group: the server and every kernel it started go together
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def copy_notebook(self, name, tag):
        """A private copy of root/name (own kernel, own Lab workspace); returns its file name."""
        stem = pathlib.Path(name).stem
        copy = f"{stem}_{tag}_{secrets.token_hex(3)}.ipynb"
        shutil.copy(self.root / name, self.root / copy)
        return copy

    def url(self, notebook):
        if self.kind == "voila":
            return f"{self.base}/voila/render/{notebook}?token={self.token}"
        return f"{self.base}/lab/workspaces/{notebook[:-6]}/tree/{notebook}?token={self.token}"


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def is_loopback(url):
    if not url.startswith(("http:", "https:", "ws:", "wss:")):
        return True  # file:, data:, blob:, about:
    host = url.split("/")[2].rsplit("@", 1)[-1]
    host = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
    return host in ("127.0.0.1", "localhost", "::1")


class Guard:
    """Records what a page must never do: reach the network, throw, log errors."""

    def __init__(self, page, allowed_external=()):
        self.external, self.page_errors, self.console_errors = [], [], []
        self.allowed_external = tuple(allowed_external)
        page.on("request", self._on_request)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(
            f"{m.text} @ {m.location.get('url', '')}"))

    def _on_request(self, request):
        url = request.url
        if not is_loopback(url) and not any(a in url for a in self.allowed_external):
            self.external.append(url)

    def problems(self, console=True):
        found = []
        if self.external:
            found.append(f"non-loopback requests: {self.external}")
        if self.page_errors:
            found.append(f"uncaught page errors: {self.page_errors}")
        if console and self.console_errors:
            found.append(f"console errors: {self.console_errors}")
        return found


class LabNotebook:
    """A notebook open in JupyterLab: run it, and talk to its kernel from the test."""

    def __init__(self, page, server, name):
        self.page, self.server, self.name = page, server, name
        self.log = server.log

    _PANEL = """(name) => { if (!window.jupyterapp) return null;
            for (const w of window.jupyterapp.shell.widgets('main')) {
            if (w.context && w.context.path.endsWith(name)) return w; } return null; }"""

    def _kernel_js(self, body):
        return f"""async ([name, arg]) => {{ const panel = ({self._PANEL})(name);
            const k = panel.sessionContext.session.kernel; {body} }}"""

    def open(self, timeout=90):
        self.page.goto(self.server.url(self.name))
        self.page.wait_for_function(
            f"""(name) => {{ const w = ({self._PANEL})(name);
                const k = w && w.sessionContext.session && w.sessionContext.session.kernel;
                return !!k && k.status === 'idle' && k.connectionStatus === 'connected'; }}""",
            arg=self.name, timeout=timeout * 1000, polling=100)
        return self

    def run_all(self):
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    def execute(self, code):
        """Run statements in the kernel (not shown in the notebook); raises on a kernel error."""
        reply = self.page.evaluate(self._kernel_js(
            """const r = await k.requestExecute({code: arg, store_history: false}).done;
               return r.content;"""), [self.name, code])
        if reply["status"] != "ok":
            raise AssertionError(f"kernel error running {code!r}: {reply.get('ename')}: "
                                 f"{reply.get('evalue')}")

    def eval(self, expr):
        """Value of a JSON-serialisable Python expression, evaluated in the kernel."""
        reply = self.page.evaluate(self._kernel_js(
            """const r = await k.requestExecute({code: '', silent: false, store_history: false,
                   user_expressions: {v: '__import__("json").dumps(' + arg + ')'}}).done;
               return r.content.user_expressions.v;"""), [self.name, expr])
        if reply["status"] != "ok":
            raise AssertionError(f"kernel error evaluating {expr!r}: {reply.get('ename')}: "
                                 f"{reply.get('evalue')}")
        return json.loads(ast.literal_eval(reply["data"]["text/plain"]))


def full_lens(page, index):
    """Pane `index` of the Compare as a full Lens (tree, images, filters), its Lens locator.

    Compare panes open compact (grid + neuron detail); their "full Lens" button shows the
    rest. Tests that click the tree, the images or the filters of a pane go through here.
    """
    pane = page.locator(".cnnlens-compare .cnnlens-compare-pane").nth(index)
    pane.locator(".cnnlens-pane-toggle").wait_for()
    if "cnnlens-compact" in (pane.get_attribute("class") or "").split():
        pane.locator(".cnnlens-pane-toggle").click()
    return pane.locator(".cnnlens-lens")


def screenshot(page, name, show=None):
    """Full-page screenshot under .ci-artifacts/ui/ (artifacts for people, not comparisons).

    Lab scrolls inside its own panels, so a full-page shot is one window: `show` (a locator)
    is scrolled to the top of it first.
    """
    ARTIFACTS.joinpath("ui").mkdir(parents=True, exist_ok=True)
    if show is not None:
        show.evaluate("el => el.scrollIntoView({block: 'start'})")
    path = ARTIFACTS / "ui" / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
