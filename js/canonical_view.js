// Twin of cnnlens/widgets/canonical_view.py: Compare's canonical maps, beside the spectrum.
// The top k directions of the selected pair as paired maps (A over B, rho_i on each pair),
// over the input image or not (a toggle); the selected direction's top dataset images on
// each side. A click on a spectrum point (the `dots` Scatter) or on a map selects a
// direction. With a kernel the payloads come from Python; in an exported page this view
// picks them out of `frames` when a heatmap cell or a pane's image changes.
import { decodeImage, decodePair, directionOf, frameFor, overlayPixels, mapPixels, topOf, caption } from "./lib/canonical.js";
import { drawColorBar, colorBarBox } from "./lib/colorbar.js";
import { lut } from "./lib/colormap.js";
import { context2d, h, hasKernel, Listeners, refModel, save, showError } from "./lib/dom.js";
import { lastPair } from "./compare_link.js";
import { ensureStyle } from "./lib/style.js";

const CSS = `
.cnnlens-canonical { font: 12px/1.35 var(--jp-ui-font-family, system-ui, sans-serif);
  color: var(--jp-ui-font-color1, #222); max-width: 420px; padding: 0 8px; }
.cnnlens-canonical-head { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.cnnlens-canonical-title { font-weight: 600; }
.cnnlens-canonical .cnnlens-note { color: var(--jp-ui-font-color2, #555); font-size: 11px; }
.cnnlens-canonical-maps { display: grid; gap: 3px 6px; align-items: center; margin: 4px 0; }
.cnnlens-canonical-maps .cnnlens-dir { display: contents; }
.cnnlens-canonical-col { display: flex; flex-direction: column; align-items: center; gap: 2px;
  padding: 2px; border: 2px solid transparent; border-radius: 3px; cursor: pointer;
  background: none; color: inherit; font: inherit; }
.cnnlens-canonical-col[aria-pressed="true"] { border-color: #ff9900; }
.cnnlens-canonical-col { min-width: 0; }
.cnnlens-canonical-col canvas { width: 100%; max-width: 64px; height: auto; aspect-ratio: 1 / 1;
  image-rendering: pixelated;
  border: 1px solid var(--jp-border-color1, #bdbdbd); }
.cnnlens-canonical-cap { font-size: 11px; white-space: nowrap; text-align: center; line-height: 1.2; }
.cnnlens-canonical-cap small { display: block; color: var(--jp-ui-font-color2, #555); font-size: 10px; }
.cnnlens-canonical-side { font-size: 11px; color: var(--jp-ui-font-color2, #555); width: 70px;
  overflow-wrap: break-word; text-align: right; }
.cnnlens-canonical-top { display: flex; gap: 4px; align-items: center; flex-wrap: wrap; margin: 2px 0; }
.cnnlens-canonical-top canvas { width: 36px; height: 36px; border: 1px solid var(--jp-border-color1, #bdbdbd); }
.cnnlens-canonical-top figure { margin: 0; text-align: center; font-size: 10px; }
.cnnlens-canonical progress { width: 160px; }
.cnnlens-canonical details { font-size: 11px; color: var(--jp-ui-font-color2, #555); }
`;

function ensureOwnStyle() {
  ensureStyle();
  if (typeof document === "undefined" || document.getElementById("cnnlens-canonical-style")) return;
  document.head.append(h("style", { id: "cnnlens-canonical-style", text: CSS }));
}

/** Paint RGBA pixels into a canvas sized to them (CSS scales it). */
function paint(canvas, px) {
  canvas.width = px.w; canvas.height = px.h;
  const ctx = context2d(canvas);
  if (!ctx) return false;
  const img = ctx.createImageData(px.w, px.h);
  img.data.set(px.data);
  ctx.putImageData(img, 0, 0);
  return true;
}

/** Paint image k of a decodeImages() result. */
function paintThumb(canvas, imgs, k) {
  const { h: H, w: W, c: C, data } = imgs;
  const out = new Uint8ClampedArray(4 * H * W);
  for (let j = 0; j < H * W; j++) {
    const s = (k * H * W + j) * C;
    out[4 * j] = data[s]; out[4 * j + 1] = data[s + (C === 3 ? 1 : 0)];
    out[4 * j + 2] = data[s + (C === 3 ? 2 : 0)]; out[4 * j + 3] = 255;
  }
  return paint(canvas, { w: W, h: H, data: out });
}

async function render({ model, el }) {
  ensureOwnStyle();
  const L = new Listeners();
  el.classList.add("cnnlens-canonical");
  const toggle = h("input", { type: "checkbox", className: "cnnlens-canonical-overlay" });
  const title = h("span", { className: "cnnlens-canonical-title", text: "Where the layers agree" });
  const head = h("div", { className: "cnnlens-canonical-head" },
    [title, h("label", {}, [toggle, " over the image"])]);
  const bar = h("progress", { max: 1, value: 0 });
  const statusText = h("span", { className: "cnnlens-note" });
  const status = h("div", { className: "cnnlens-row cnnlens-canonical-status" }, [bar, statusText]);
  const note = h("div", { className: "cnnlens-note cnnlens-canonical-note" });
  const error = h("div", { className: "cnnlens-error" });
  const grid = h("div", { className: "cnnlens-canonical-maps" });
  const colorbar = colorBarBox();
  const top = h("div", { className: "cnnlens-canonical-tops" });
  const cost = h("div", { className: "cnnlens-note cnnlens-canonical-cost" });
  const conv = h("details", {}, [h("summary", { text: "convention" }), h("div")]);
  el.replaceChildren(head, status, note, error, grid, colorbar, top, cost, conv);

  const refs = {};
  for (const n of ["heatmap", "grid_a", "grid_b", "dots", "curve"]) refs[n] = await refModel(model, n).catch(() => null);
  const live = hasKernel(model);
  // no kernel: only the exported frames (the traits hold whatever was shown at export time)
  const offline = () => !live;
  el.classList.toggle("cnnlens-static", !live);
  const table = lut("rdbu");
  // the page's own selection when it has no kernel: pair from the heatmap, image from the
  // pane whose picker moved last
  const local = { pair: null, image: refs.grid_a?.get("image_index") ?? 0, missing: "" };
  const memo = { pairRaw: undefined, imageRaw: undefined, pair: null, image: null };

  function payloads() {
    if (!offline()) return [model.get("pair_data"), model.get("image_data"), ""];
    const f = frameFor(model.get("frames"), local.pair, local.image);
    return "missing" in f ? [null, null, f.missing] : [f.pairData, f.imageData, ""];
  }

  function drawMaps(pd, id, d) {
    const cols = [];
    grid.style.gridTemplateColumns = `auto repeat(${pd.k}, minmax(0, 76px))`;  // shrink, never clip
    const side = (name, layer) => h("span", { className: "cnnlens-canonical-side", title: `${name} ${layer}` },
      [h("b", { text: name }), h("br"), layer]);
    const rowA = [side(pd.names[0], pd.layerA)], rowB = [side(pd.names[1], pd.layerB)];
    const heads = [h("span")];
    const over = !!model.get("overlay");
    let painted = 0;
    for (let i = 0; i < pd.k; i++) {
      const { head: capHead, sub } = caption(pd, id, i);
      const pressed = String(i === d);
      const mk = (which) => {
        const c = h("canvas", { attrs: { "data-direction": i, "data-side": which } });
        const dec = which === "a" ? id.a : id.b;
        if (i < dec.n && paint(c, over ? overlayPixels(id.input, dec, i, table) : mapPixels(dec, i, table))) painted++;
        return h("button", { className: "cnnlens-canonical-col", attrs: { "aria-pressed": pressed,
          "data-direction": i, title: `direction ${i + 1}: select it (its top images below)` } }, [c]);
      };
      heads.push(h("div", { className: "cnnlens-canonical-cap", attrs: { "data-direction": i } },
        [capHead, sub ? h("small", { text: sub }) : null]));
      rowA.push(mk("a")); rowB.push(mk("b"));
      cols.push(i);
    }
    grid.replaceChildren(...heads, ...rowA, ...rowB);
    drawColorBar(colorbar, { colormap: "rdbu", relative: true,
      label: "projection on the direction (std of its variate; each map its own range)" });
    return painted;
  }

  function drawTops(pd, d) {
    if (d >= pd.k) {
      top.replaceChildren(h("div", { className: "cnnlens-note",
        text: `direction ${d + 1}: only the top ${pd.k} directions are mapped here (cmp.canonical_maps(i, j, k=${d + 1}) gives more)` }));
      return;
    }
    const row = (side, name) => {
      const items = topOf(pd, side, d).map(({ slot, index }) => {
        const c = h("canvas");
        if (pd.thumbs) paintThumb(c, pd.thumbs, slot);
        return h("figure", { attrs: { "data-image": index } }, [c, h("figcaption", { text: `#${index}` })]);
      });
      return h("div", { className: "cnnlens-canonical-top", attrs: { "data-side": side } },
        [h("span", { className: "cnnlens-note", text: `${name}:` }), ...items]);
    };
    top.replaceChildren(h("div", { className: "cnnlens-note", text: `images highest on direction ${d + 1}` }),
      row("a", pd.names[0]), row("b", pd.names[1]));
  }

  function draw() {
    const st = offline() ? (local.pair ? "ready" : "empty") : model.get("status");
    const running = st === "running";
    bar.hidden = !running;
    bar.value = model.get("progress") || 0;
    statusText.textContent = running ? "computing the directions: one pass over the data for this pair…"
      : st === "empty" ? "click a heatmap cell to see where its two layers agree" : "";
    note.textContent = model.get("note") || "";
    note.hidden = !model.get("note");
    const leftOut = offline() ? model.get("frames_left_out") : "";
    cost.textContent = (model.get("cost") || "") + (leftOut ? ` · this page: ${leftOut}` : "");
    toggle.checked = !!model.get("overlay");
    const [pRaw, iRaw, missing] = payloads();
    showError(error, missing || (offline() ? "" : model.get("error")));
    if (pRaw !== memo.pairRaw) { memo.pairRaw = pRaw; memo.pair = decodePair(pRaw); }
    if (iRaw !== memo.imageRaw) { memo.imageRaw = iRaw; memo.image = decodeImage(iRaw); }
    const pd = memo.pair, id = memo.image;
    const d = Math.max(0, model.get("direction") || 0);
    el.dataset.status = missing ? "missing" : st;
    el.dataset.direction = String(d);
    el.dataset.overlay = model.get("overlay") ? "1" : "0";
    const shown = pd && id && st !== "empty" && !missing;
    if (!shown) {
      grid.replaceChildren(); top.replaceChildren(); colorbar.hidden = true;
      el.dataset.rendered = "0";
      delete el.dataset.pair; delete el.dataset.image;
      return;
    }
    const painted = drawMaps(pd, id, d);
    drawTops(pd, d);
    conv.lastChild.textContent = pd.convention;
    el.dataset.pair = pd.pair.join(",");
    el.dataset.image = String(id.image);
    el.dataset.k = String(pd.k);
    el.dataset.rendered = painted > 0 || !context2d(h("canvas")) ? "1" : "0";
  }
  let queued = false;
  const schedule = () => { if (!queued) { queued = true; queueMicrotask(() => { queued = false; draw(); }); } };

  function select(d) {
    if (model.get("direction") !== d) { model.set("direction", d); save(model); }
    const dots = refs.dots;
    if (dots && directionOf(dots.get("selected")) !== d) { dots.set("selected", Int32Array.of(d)); save(dots); }
    schedule();
  }

  L.dom(grid, "click", (ev) => {
    const b = ev.target.closest?.("button.cnnlens-canonical-col");
    if (!b) return;
    ev.preventDefault();  // a button in a form or a focus jump must not scroll the page
    select(Number(b.dataset.direction));
  });
  L.dom(toggle, "change", () => { model.set("overlay", toggle.checked); save(model); schedule(); });
  // a direction set from Python (cmp.maps.direction = 2) highlights its spectrum point too
  L.model(model, "change:direction", () => select(Math.max(0, model.get("direction") || 0)));
  for (const k of ["pair_data", "image_data", "status", "progress", "error", "note", "cost", "direction", "overlay", "frames"]) {
    L.model(model, `change:${k}`, schedule);
  }
  if (refs.dots) {
    L.model(refs.dots, "change:selected", () => {
      const d = directionOf(refs.dots.get("selected"));
      if (d != null) select(d);
    });
  }
  if (!live) {
    // no kernel: follow the heatmap and the panes' pickers here, and keep the spectrum's
    // points on the curve that compare_link.js redraws from precomputed spectra
    const onPair = () => { local.pair = lastPair(refs.heatmap.get("selected")); schedule(); };
    if (refs.heatmap) { L.model(refs.heatmap, "change:selected", onPair); local.pair = lastPair(refs.heatmap.get("selected")); }
    for (const g of [refs.grid_a, refs.grid_b]) {
      if (g) L.model(g, "change:image_index", () => { local.image = g.get("image_index"); schedule(); });
    }
    const follow = () => {
      const c = refs.curve;
      if (refs.dots && c) for (const k of ["x", "y", "visible"]) refs.dots.set(k, c.get(k));
    };
    if (refs.curve) { L.model(refs.curve, "change:y", follow); L.model(refs.curve, "change:visible", follow); }
  }
  draw();
  return () => L.dispose();
}

export default { render };
