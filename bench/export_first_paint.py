"""Size and first paint of an exported demo Compare page, opened over file:// (issue 6).

    PATH=.venv/bin:$PATH .venv/bin/python bench/export_first_paint.py [--loads 5]

Exports `Compare(real, synthetic)` of the demo models on 200 real test digits with three
images, then opens the page in Debian Chromium (network guard on) and times navigation ->
both activation grids painted and the heatmap complete (`data-rendered`).
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "ui"))
from harness import launch_browser
from playwright.sync_api import sync_playwright

import cnnlens as cl

PAINTED = """document.querySelector(".cnnlens-compare-link[data-rendered='1']") &&
             document.querySelectorAll(".cnnlens-grid[data-rendered='1']").length >= 2"""


def main(loads: int) -> None:
    nets, test = cl.demo.models(), cl.demo.data().test
    cmp = cl.Compare(nets["real"], nets["synthetic"], test.images[:200], metric="svcca")
    cmp.wait()
    out = pathlib.Path(tempfile.mkdtemp(prefix="cnnlens-export-"))
    print(cmp.to_html(out / "compare.html", images=[0, 1, 2]))
    page_mb = (out / "compare.html").stat().st_size / 1e6
    assets_mib = sum(f.stat().st_size for f in (out / "compare_files").rglob("*")
                     if f.is_file()) / 2**20
    times = []
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        for _ in range(loads):
            page, errors = browser.new_page(), []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            start = time.perf_counter()
            page.goto((out / "compare.html").as_uri())
            page.wait_for_function(PAINTED, timeout=30000)
            times.append(time.perf_counter() - start)
            page.close()
            if errors:
                raise SystemExit(f"page errors: {errors}")
        browser.close()
    print(f"| page | shared assets | first paint median | min | loads |\n|---|---|---|---|---|\n"
          f"| {page_mb:.2f} MB | {assets_mib:.1f} MiB | {statistics.median(times):.2f} s "
          f"| {min(times):.2f} s | {loads} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5)
    main(parser.parse_args().loads)
