"""Issue 11 in real JupyterLab at 1280 x 800: clicks leave the notebook where it is, the dark
theme stays readable, and the Compare is screenshotted in both themes for people to look at.

The module shares one live compare_small.ipynb (the conftest's lab_compare); a test that
switches the theme switches it back.
"""
from __future__ import annotations

import pytest
from harness import ARTIFACTS, attr, full_lens

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_kernel_errors")]

SCROLL_TOLERANCE = 5  # px the notebook may move on a click (none is expected)

# The notebook's scroll box: the nearest scrolling ancestor of the Compare.
SCROLLER = """() => { let el = document.querySelector('.cnnlens-compare');
    for (; el; el = el.parentElement) { const oy = getComputedStyle(el).overflowY;
      if ((oy === 'auto' || oy === 'scroll') && el.scrollHeight > el.clientHeight) return el; }
    return document.scrollingElement; }"""


@pytest.fixture(scope="module")
def lab_laptop(lab_compare):
    lab_compare.page.set_viewport_size({"width": 1280, "height": 800})
    return lab_compare


def scroll_top(page):
    return page.evaluate(f"() => ({SCROLLER})().scrollTop")


def scroll_to(page, locator, offset=0):
    """Put `locator`'s top `offset` px below the top of the notebook's scroll box."""
    page.evaluate(f"""([el, offset]) => {{ const s = ({SCROLLER})();
        s.scrollTop += el.getBoundingClientRect().top - s.getBoundingClientRect().top - offset; }}""",
                  [locator.element_handle(), offset])
    page.wait_for_timeout(50)  # let the scroll settle before reading it back


def pane(page, side):
    """A pane as a full Lens (tree, images, filters); opening it is a click, which scrolls."""
    return full_lens(page, {"a": 0, "b": 1}[side])


def lens(page, side):
    """A pane as it is (compact by default): its grid and detail, nothing clicked."""
    return page.locator(".cnnlens-compare .cnnlens-lens").nth({"a": 0, "b": 1}[side])


def cell(page, a, b):
    """Heatmap cell (a, b) in cnnlens's overlay, found by its data; the overlay lets the
    pointer through: click it with ``force=True`` and bqplot's cell under it gets the click."""
    page.locator(".cnnlens-heatmap rect.heatmapcell").first.wait_for()
    found = page.locator(f".cnnlens-heatmap rect.cnnlens-cell{attr('data-row', a)}{attr('data-col', b)}")
    assert found.count() == 1, f"no heatmap cell ({a}, {b})"
    return found


def assert_still(page, before, what):
    page.wait_for_timeout(150)  # the jump came within 40 ms of the click
    after = scroll_top(page)
    assert abs(after - before) <= SCROLL_TOLERANCE, f"{what} scrolled the notebook {before} -> {after}"


def test_no_click_scrolls_the_notebook(lab_laptop):
    nb, page = lab_laptop, lab_laptop.page
    rows, cols = nb.eval("cmp.heatmap.layers_a"), nb.eval("cmp.heatmap.layers_b")
    cur = nb.eval("[cmp.lens_a.layer, cmp.lens_b.layer]")
    i, j = next((i, j) for i in reversed(range(len(rows))) for j in reversed(range(len(cols)))
                if rows[i] != cur[0] and cols[j] != cur[1])
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    heatmap = page.locator(".cnnlens-heatmap")
    # the heatmap at the top of the notebook, both panes' trees below the fold (notebook 02
    # jumped 824 -> 1959 px on such a click)
    scroll_to(page, heatmap, offset=10)
    before = scroll_top(page)
    since = nb.log.mark()
    cell(page, i, j).click(force=True)
    nb.log.wait(lambda e: e["src"] == "heatmap" and e["pair"] == [i, j], since=since)
    lens(page, "b").locator(f".cnnlens-grid{attr('data-layer', cols[j])}[data-rendered='1']").wait_for()
    assert_still(page, before, "a heatmap cell click")

    a = pane(page, "a")
    target = next(n for n in rows if n != rows[i])
    scroll_to(page, a, offset=10)
    before = scroll_top(page)
    a.locator(f".cnnlens-tree {attr('data-layer-name', target)}").click()
    a.locator(f".cnnlens-grid{attr('data-layer', target)}[data-rendered='1']").wait_for()
    assert_still(page, before, "a layer click")

    canvas = a.locator(".cnnlens-grid canvas.cnnlens-canvas")
    scroll_to(page, canvas, offset=10)
    before = scroll_top(page)
    since = nb.log.mark()
    canvas.click(position={"x": 3, "y": 3})
    nb.log.wait(lambda e: e["src"] == "grid" and e["side"] == "a" and e["name"] == "neuron", since=since)
    a.locator(".cnnlens-detail[data-rendered='1']").wait_for()
    assert_still(page, before, "a channel click")


# WCAG contrast of an element's text against what is behind it: the element's own and its
# ancestors' backgrounds composited until one is opaque (the notebook's, at the latest).
CONTRAST = """(el) => {
  const rgba = (s) => { const m = s.match(/[\\d.]+/g) || [0, 0, 0, 0];
    return [+m[0], +m[1], +m[2], m.length > 3 ? +m[3] : 1]; };
  const over = (top, bottom) => { const a = top[3] + bottom[3] * (1 - top[3]);
    return a === 0 ? [0, 0, 0, 0] : [0, 1, 2].map((k) =>
      (top[k] * top[3] + bottom[k] * bottom[3] * (1 - top[3])) / a).concat([a]); };
  let bg = [0, 0, 0, 0];
  for (let n = el; n && bg[3] < 1; n = n.parentElement) bg = over(bg, rgba(getComputedStyle(n).backgroundColor));
  bg = over(bg, [255, 255, 255, 1]);
  const style = getComputedStyle(el);
  const fg = over(rgba(style.color).map((v, k) => k === 3 ? v * (+style.opacity) : v), bg);
  const lum = (c) => { const l = c.slice(0, 3).map((v) => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return {ratio: (hi + 0.05) / (lo + 0.05), text: (el.textContent || el.value || '').slice(0, 30),
          color: style.color, background: `rgb(${bg.slice(0, 3).map(Math.round)})`};
}"""

# the text a student reads: tree labels, notes, the detail header, the status line, pickers
TEXTS = [".cnnlens-tree .cnnlens-tree-name", ".cnnlens-tree .cnnlens-dim", ".cnnlens-tree .cnnlens-kind",
         ".cnnlens-note", ".cnnlens-detail .cnnlens-toolbar", ".cnnlens-compare-status",
         ".cnnlens-grid select", ".cnnlens-dim"]


# the values printed in heatmap cells against their cell, dimmed cells blended over the page
CELL_VALUES = r"""() => {
  const rgb = (s) => (s.match(/[\d.]+/g) || [0, 0, 0]).slice(0, 3).map(Number);
  const lum = (c) => { const l = c.map((v) => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  let page = [255, 255, 255];
  for (let n = document.querySelector('.cnnlens-heatmap'); n; n = n.parentElement) {
    const bg = getComputedStyle(n).backgroundColor; const m = bg.match(/[\d.]+/g) || [];
    if (m.length === 3 || (m.length === 4 && +m[3] > 0.5)) { page = rgb(bg); break; } }
  // each printed value over the bqplot cell under it (its centre inside the cell's box)
  const cells = Array.from(document.querySelectorAll('.cnnlens-heatmap rect.heatmapcell'));
  return Array.from(document.querySelectorAll('.cnnlens-heatmap text.cnnlens-cell-value')).map((t) => {
    if (!t.textContent) return null;
    const tb = t.getBoundingClientRect(), x = tb.x + tb.width / 2, y = tb.y + tb.height / 2;
    const c = cells.find((r) => { const b = r.getBoundingClientRect();
      return x >= b.left && x < b.right && y >= b.top && y < b.bottom; });
    if (!c) return {text: t.textContent, ratio: 0};
    const a = Number(getComputedStyle(c).opacity);
    const cell = rgb(getComputedStyle(c).fill).map((v, k) => a * v + (1 - a) * page[k]);
    const [hi, lo] = [lum(rgb(getComputedStyle(t).fill)), lum(cell)].sort((x, y) => y - x);
    return {text: t.textContent, ratio: (hi + 0.05) / (lo + 0.05)};
  }).filter(Boolean); }"""


def set_theme(page, name, light):
    page.evaluate("(t) => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", name)
    page.wait_for_function("(light) => document.body.dataset.jpThemeLight === String(light)", arg=light)
    # the theme's stylesheet is swapped in after the flag: wait for its variables to apply
    page.wait_for_function("""(light) => { const c = getComputedStyle(document.body)
        .getPropertyValue('--jp-layout-color0').trim().toLowerCase();
        return light ? c === 'white' || c === '#fff' || c === '#ffffff' : c === '#111' || c === '#111111'; }""",
                           arg=light)


def low_contrast(page, minimum=4.5):
    found = []
    for sel in TEXTS:
        for el in page.locator(f".cnnlens-compare {sel}").all():
            if not el.is_visible() or not el.evaluate("e => e.textContent.trim() || e.value"):
                continue
            c = el.evaluate(CONTRAST)
            if c["ratio"] < minimum:
                found.append(f"{sel} {c['text']!r}: {c['ratio']:.2f} ({c['color']} on {c['background']})")
    return found


def compact(page):
    """Both panes compact (earlier tests opened the full Lens) and Lab's side bar closed:
    the notebook gets the window's width, as a student reading a Compare would set it."""
    full = page.locator(".cnnlens-compare-pane:not(.cnnlens-compact) .cnnlens-pane-toggle")
    while full.count():
        full.first.click()
    if not page.evaluate("() => window.jupyterapp.shell.leftCollapsed"):
        page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
        page.wait_for_function("() => window.jupyterapp.shell.leftCollapsed")
    page.wait_for_timeout(300)  # reflow (the grids repaint for their new width)


def shoot_compare(page, theme):
    """The Compare at the top of the notebook's window, as a student sees it at 1280 x 800."""
    scroll_to(page, page.locator(".cnnlens-compare"), offset=0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"compare-1280x800-{theme}.png"
    page.screenshot(path=str(path))
    return path


def test_dark_theme_text_is_readable_and_compare_screenshots(lab_laptop):
    nb, page = lab_laptop, lab_laptop.page
    page.locator(".cnnlens-compare-link[data-rendered='1']").wait_for()
    # a selected neuron: the detail header, its range note and top images are on screen
    nb.execute("cmp.pair = (0, 0); cmp.lens_a.neuron = 1; cmp.lens_b.neuron = 1")
    page.locator(".cnnlens-detail[data-neuron='1'][data-rendered='1']").first.wait_for()
    compact(page)
    scroll_to(page, page.locator(".cnnlens-compare"), offset=0)
    # one screen: the heatmap, the spectrum and both panes' grids (issue 11, item 2)
    window = page.evaluate(f"() => ({SCROLLER})().getBoundingClientRect().bottom")
    for what in (".cnnlens-heatmap", ".cnnlens-spectrum", ".cnnlens-compare-pane .cnnlens-grid canvas"):
        for el in page.locator(what).all():
            box = el.bounding_box()
            assert box["x"] + box["width"] <= 1281 and box["y"] + box["height"] <= window + 1, \
                f"{what} is off the 1280 x 800 screen: {box}, window bottom {window}"
    bad = low_contrast(page)
    assert bad == [], "light theme: text under 4.5:1 contrast\n" + "\n".join(bad)
    shoot_compare(page, "light")
    try:
        set_theme(page, "JupyterLab Dark", light=False)
        bad = low_contrast(page)
        bad += [f"cell value {v['text']}: {v['ratio']:.2f}" for v in page.evaluate(CELL_VALUES)
                if v["ratio"] < 3]  # 3:1, large-text contrast: the values are 10-13 px bold digits
        shoot_compare(page, "dark")
        assert bad == [], "dark theme: text under 4.5:1 contrast\n" + "\n".join(bad)
    finally:
        set_theme(page, "JupyterLab Light", light=True)


def test_linear_unit_shows_value_and_distribution_not_a_map(lab_laptop):
    nb, page = lab_laptop, lab_laptop.page
    a = pane(page, "a")
    detail = a.locator(".cnnlens-detail")
    nb.execute("cmp.pair = None; cmp.lens_a.layer = '3'; cmp.lens_a.neuron = 11")
    detail.and_(page.locator("[data-layer='3'][data-neuron='11'][data-rendered='1']")).wait_for()
    assert a.locator("canvas.cnnlens-detail-channel").is_visible()
    # a click on the linear layer: channel 11 of a conv is no unit of it, the kernel clears it
    a.locator(f".cnnlens-tree {attr('data-layer-name', '7')}").click()
    detail.and_(page.locator("[data-layer='7'][data-neuron='-1']")).wait_for()
    assert nb.eval("cmp.lens_a.neuron") == -1
    assert not a.locator("canvas.cnnlens-detail-channel").is_visible(), "stale conv map shown"
    a.locator(".cnnlens-grid[data-layer='7'][data-rendered='1'] canvas.cnnlens-canvas").click(
        position={"x": 2, "y": 2})
    detail.and_(page.locator("[data-layer='7'][data-neuron='0'][data-topk='ready']")).wait_for()
    assert not a.locator(".cnnlens-detail-stage").is_visible()
    dist = detail.locator(".cnnlens-dist")
    assert dist.is_visible() and dist.get_attribute("data-count") == str(nb.eval("len(cmp.lens_a.images)"))
    assert dist.get_attribute("data-marker") is not None


def test_upload_is_selected_in_view_and_controls_say_what_they_do(lab_laptop, tmp_path):
    from PIL import Image

    nb, page = lab_laptop, lab_laptop.page
    # tooltips that say what a control does, not only its name
    assert "every layer pair" in page.locator(".cnnlens-compare .widget-button").first.get_attribute("title")
    a = pane(page, "a")
    grid = a.locator(".cnnlens-grid")
    assert all(s.get_attribute("title") for s in grid.locator(".cnnlens-toolbar select").all())
    # an uploaded image joins the set, is selected, and is scrolled into the picker's view
    n = nb.eval("len(cmp.lens_a.images)")
    png = tmp_path / "mine.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(png)
    strip = a.locator(".cnnlens-images .cnnlens-thumbs")
    scroll_to(page, a.locator(".cnnlens-images"), offset=10)
    before = scroll_top(page)
    with page.expect_file_chooser() as chooser:
        a.locator(".widget-upload").click()
    chooser.value.set_files(str(png))
    grid.and_(page.locator(f"[data-image='{n}'][data-rendered='1']")).wait_for(timeout=30_000)
    thumb = strip.locator(f".cnnlens-thumb[data-index='{n}']")
    assert thumb.get_attribute("aria-selected") == "true"
    page.wait_for_function("""([t, s]) => { const a = t.getBoundingClientRect(), b = s.getBoundingClientRect();
        return a.top >= b.top - 1 && a.bottom <= b.bottom + 1; }""",
                           arg=[thumb.element_handle(), strip.element_handle()], timeout=2000)
    assert_still(page, before, "an upload")


def test_a_slow_layer_shows_progress_then_the_tiles(lab_laptop):
    nb, page = lab_laptop, lab_laptop.page
    a = pane(page, "a")
    grid = a.locator(".cnnlens-grid")
    # the kernel takes 1.5 s for this pane's activations (a big model on a slow machine)
    nb.execute("import time as _t; _act = cmp.lens_a.inspector.activations\n"
               "cmp.lens_a.inspector.activations = lambda *a, **k: (_t.sleep(1.5), _act(*a, **k))[1]")
    try:
        target = next(n for n in nb.eval("cmp.lens_a.grid.layers") if n != nb.eval("cmp.lens_a.layer"))
        a.locator(f".cnnlens-tree {attr('data-layer-name', target)}").click()
        # within the wait, after about 0.5 s: a progress bar, not 1.5 s of nothing
        grid.locator("progress.cnnlens-busy").wait_for(state="visible", timeout=1300)
        assert grid.get_attribute("data-busy") == "1"
        grid.and_(page.locator(f"{attr('data-layer', target)}[data-rendered='1']")).wait_for()
        assert not grid.locator("progress.cnnlens-busy").is_visible()
    finally:
        nb.execute("cmp.lens_a.inspector.activations = _act")
