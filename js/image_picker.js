// Twin of cnnlens/widgets/image_picker.py: thumbnails of the pane's images; a click sets
// `image_index` on the referenced ActivationGrid model.

import { decodeImages } from "./lib/decode.js";
import { paintImage } from "./lib/tiles.js";
import { Listeners, context2d, h, hasKernel, refModel, revealWithin, showError } from "./lib/dom.js";
import { NOT_EXPORTED, frameCoverage } from "./lib/frames.js";
import { ensureStyle } from "./lib/style.js";

const THUMB_CSS = 48;

async function render({ model, el }) {
  ensureStyle();
  const L = new Listeners();
  const grid = await refModel(model, "grid");
  const note = h("div", { className: "cnnlens-note" });
  const error = h("div", { className: "cnnlens-error", attrs: { role: "alert" } });
  const strip = h("div", { className: "cnnlens-thumbs", attrs: { role: "listbox" } });
  const root = h("div", { className: "cnnlens-view cnnlens-images" }, [note, error, strip]);
  el.append(root);
  let current = grid ? grid.get("image_index") : 0;

  function mark() {
    current = grid ? grid.get("image_index") : current;
    root.dataset.image = String(current);
    let chosen = null;
    for (const t of strip.children) {
      const on = Number(t.dataset.index) === current;
      t.setAttribute("aria-selected", String(on));
      if (on) chosen = t;
    }
    // an upload (or a pick elsewhere) selects an image that may sit below the strip's
    // scroll: bring it into the strip's view, never scrolling the page (issue 11)
    if (chosen) revealWithin(chosen, strip);
  }

  function draw() {
    showError(error, model.get("error"));
    let imgs = null;
    try {
      imgs = decodeImages(model.get("thumbs"));
    } catch (e) {
      showError(error, String(e));
    }
    const count = model.get("count") ?? (imgs ? imgs.n : 0);
    const n = imgs ? imgs.n : 0;
    // a static page offers only the images it holds; the others stay, disabled, saying why
    const cov = grid ? frameCoverage(grid, hasKernel(grid)) : null;
    note.textContent = (n < count ? `${count} images (first ${n} shown)` : `${count} images`)
      + (cov ? ` · ${cov.images.size} in this page` : "");
    const thumbs = [];
    for (let k = 0; k < n; k++) {
      const here = !cov || cov.images.has(k);
      const c = h("canvas", { width: imgs.w, height: imgs.h });
      const z = THUMB_CSS / Math.max(imgs.w, imgs.h);
      Object.assign(c.style, { width: `${Math.round(imgs.w * z)}px`, height: `${Math.round(imgs.h * z)}px` });
      paintImage(context2d(c), imgs, k);
      const attrs = { role: "option", "data-index": k };
      if (!here) attrs["aria-disabled"] = "true";
      thumbs.push(h("div", { className: `cnnlens-thumb${here ? "" : " disabled"}`,
        title: here ? `image ${k}` : `image ${k} · ${NOT_EXPORTED}`, attrs },
      [c, h("span", { className: "cnnlens-dim", text: String(k) })]));
    }
    strip.replaceChildren(...thumbs);
    root.dataset.count = String(count);
    root.dataset.rendered = "1";
    mark();
  }

  L.dom(strip, "click", (ev) => {
    const t = ev.target.closest?.(".cnnlens-thumb");
    if (!t || t.getAttribute("aria-disabled") === "true") return;
    current = Number(t.dataset.index);
    if (grid) {
      grid.set("image_index", current);
      grid.save_changes();
    } else {
      mark();
    }
  });
  for (const name of ["thumbs", "count", "error"]) L.model(model, `change:${name}`, draw);
  if (grid) L.model(grid, "change:image_index", mark);
  draw();
  return () => { L.dispose(); root.remove(); };
}

export default { render };
