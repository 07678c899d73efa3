import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeModel, manager, mapsPayload, mockCanvas, sleep } from "./helpers.js";
import widget from "../canonical_view.js";
import { caption, decodeImage, decodePair, directionOf, frameFor, mapPixels, overlayPixels, topOf } from "../lib/canonical.js";
import { lut } from "../lib/colormap.js";
import { decodeMaps } from "../lib/decode.js";

const bytes = (Arr, values) => new DataView(Arr.from(values).buffer);

/** A pair payload like cnnlens.encode.encode_canonical_pair makes (k directions, n tops). */
function pairPayload({ k = 2, n = 2, pair = [1, 0] } = {}) {
  const thumbs = new Uint8Array(3 * 4 * 4 * 1).fill(200);
  return {
    rho: bytes(Float32Array, [0.95, 0.6].slice(0, k)), k, n, metric: "svcca", convention: "SVCCA: test",
    layer_a: "conv2", layer_b: "conv2", names: ["real", "synthetic"], pair,
    top_a: bytes(Int32Array, [0, 1, 2, 0].slice(0, k * n)), top_b: bytes(Int32Array, [1, -1, 2, 1].slice(0, k * n)),
    thumb_index: bytes(Int32Array, [7, 3, 9]), thumbs: { format: 1, kind: "images", shape: [3, 4, 4, 1], data: new DataView(thumbs.buffer) },
  };
}

function imagePayload({ k = 2, image = 0 } = {}) {
  const input = new Uint8Array(8 * 8).fill(100);
  return {
    image, maps_a: mapsPayload({ n: k, h: 4, w: 4 }), maps_b: mapsPayload({ n: k, h: 2, w: 2 }),
    corr: bytes(Float32Array, [0.9, NaN].slice(0, k)),
    input: { format: 1, kind: "images", shape: [1, 8, 8, 1], data: new DataView(input.buffer) },
  };
}

test("decodePair and topOf read the top images of a direction, -1 slots dropped", () => {
  const pd = decodePair(pairPayload());
  assert.equal(pd.k, 2);
  assert.ok(Math.abs(pd.rho[0] - 0.95) < 1e-6);
  assert.deepEqual(topOf(pd, "a", 0).map((t) => t.index), [7, 3]);
  assert.deepEqual(topOf(pd, "b", 0).map((t) => t.index), [3]);
  assert.deepEqual(topOf(pd, "b", 1).map((t) => t.index), [9, 3]);
  assert.equal(decodePair({}), null);
  assert.equal(decodeImage({}), null);
});

test("frameFor finds a pair's image and says what the page lacks", () => {
  const frames = { "1,0": { ...pairPayload(), images: { 0: imagePayload(), 4: imagePayload({ image: 4 }) } } };
  assert.equal(frameFor(frames, [1, 0], 4).imageData.image, 4);
  assert.match(frameFor(frames, [0, 0], 0).missing, /not in this page/);
  assert.match(frameFor(frames, [1, 0], 2).missing, /image 2 .*0, 4/);
  assert.equal(frameFor(frames, null, 0).missing, "");
});

test("directionOf reads bqplot Scatter selections", () => {
  assert.equal(directionOf(null), null);
  assert.equal(directionOf([]), null);
  assert.equal(directionOf([3]), 3);
  assert.equal(directionOf(Int32Array.of(1, 2)), 2);
});

test("maps are centred on zero; the overlay blends them onto the grey image at its resolution", () => {
  // one tile from -1 to +1: q=0 is -1 (blue end), q=255 is +1 (red end), 127.5 is white
  const dec = decodeMaps(mapsPayload({ n: 1, h: 1, w: 2, offsets: [-1], scales: [2 / 255], fill: (i) => [0, 255][i] }));
  const table = lut("rdbu");
  const px = mapPixels(dec, 0, table);
  assert.deepEqual([px.w, px.h], [2, 1]);
  assert.deepEqual(Array.from(px.data.slice(0, 3)), Array.from(table.slice(0, 3)));
  assert.deepEqual(Array.from(px.data.slice(4, 7)), Array.from(table.slice(4 * 255, 4 * 255 + 3)));
  const input = { n: 1, h: 2, w: 4, c: 1, data: new Uint8Array(8).fill(0) };
  const ov = overlayPixels(input, dec, 0, table, 0.5);
  assert.deepEqual([ov.w, ov.h], [4, 2]);
  assert.equal(ov.data[0], Math.round(0.5 * table[0]));                // left half: map cell 0
  assert.equal(ov.data[4 * 3], Math.round(0.5 * table[4 * 255]));      // right half: map cell 1
  assert.equal(overlayPixels(null, dec, 0, table).w, 2);  // no image: the map alone
});

test("caption gives rho and the maps' correlation when defined", () => {
  const pd = decodePair(pairPayload()), id = decodeImage(imagePayload());
  assert.deepEqual(caption(pd, id, 0), { head: "ρ1 0.95", sub: "maps r 0.90" });
  assert.equal(caption(pd, id, 1).sub, "");
});

async function mount(state, refs = {}, kernel = false) {
  const el = document.createElement("div");
  document.body.append(el);
  const wm = { ...manager(refs), ...(kernel ? { kernel: {} } : {}) };
  const model = new FakeModel({ pair_data: {}, image_data: {}, frames: {}, status: "empty", progress: 0,
    error: "", note: "", cost: "one extra pass", direction: 0, overlay: true, k: 2, ...state }, wm);
  const cleanup = await widget.render({ model, el });
  await sleep(0);
  return { el, model, cleanup };
}

test("live: paints k paired maps from the traits, progress while running, errors in place", async () => {
  const restore = mockCanvas();
  try {
    const { el, model, cleanup } = await mount({ status: "running", progress: 0.4 }, {}, true);
    assert.equal(el.dataset.status, "running");
    assert.equal(el.querySelector("progress").hidden, false);
    assert.equal(el.dataset.rendered, "0");
    model.remote({ pair_data: pairPayload(), image_data: imagePayload(), status: "ready" });
    await sleep(0);
    assert.equal(el.dataset.rendered, "1");
    assert.equal(el.dataset.pair, "1,0");
    assert.equal(el.querySelectorAll("canvas[data-side='a']").length, 2);
    assert.equal(el.querySelectorAll("canvas[data-side='b']").length, 2);
    assert.match(el.textContent, /ρ1 0.95/);
    assert.equal(el.querySelectorAll(".cnnlens-canonical-top figure").length, 3);  // 2 on A, 1 on B
    // a click on direction 2's map selects it and is saved for the kernel
    el.querySelector("button.cnnlens-canonical-col[data-direction='1']").click();
    await sleep(0);
    assert.equal(model.get("direction"), 1);
    assert.equal(el.dataset.direction, "1");
    assert.deepEqual(model.saved.at(-1), { direction: 1 });
    // the toggle: maps without the image
    const box = el.querySelector("input.cnnlens-canonical-overlay");
    box.checked = false;
    box.dispatchEvent(new Event("change"));
    await sleep(0);
    assert.equal(el.dataset.overlay, "0");
    model.remote({ status: "error", error: "pair conv2 x fc: ValueError: boom" });
    await sleep(0);
    assert.match(el.querySelector(".cnnlens-error").textContent, /boom/);
    const before = model.listenerCount();
    cleanup();
    assert.equal(model.listenerCount(), 0, `left ${before} listeners`);
  } finally { restore(); }
});

test("exported page: a heatmap click and an image pick choose the frame; a spectrum point selects a direction", async () => {
  const restore = mockCanvas();
  try {
    const heatmap = new FakeModel({ selected: null });
    const grid_a = new FakeModel({ image_index: 0 });
    const grid_b = new FakeModel({ image_index: 0 });
    const dots = new FakeModel({ selected: null });
    const curve = new FakeModel({ x: [1, 2], y: [0.9, 0.5], visible: true });
    const frames = { "1,0": { ...pairPayload(), images: { 0: imagePayload(), 4: imagePayload({ image: 4 }) } } };
    const { el, model, cleanup } = await mount({ frames, heatmap: "IPY_MODEL_h", grid_a: "IPY_MODEL_ga",
      grid_b: "IPY_MODEL_gb", dots: "IPY_MODEL_d", curve: "IPY_MODEL_c" },
    { h: heatmap, ga: grid_a, gb: grid_b, d: dots, c: curve });
    assert.equal(el.dataset.rendered, "0");
    heatmap.set("selected", [[1, 0]]);
    await sleep(0);
    assert.equal(el.dataset.rendered, "1");
    assert.equal(el.dataset.image, "0");
    grid_b.set("image_index", 4);        // pane B's picker
    await sleep(0);
    assert.equal(el.dataset.image, "4");
    grid_a.set("image_index", 2);        // not exported: said in place
    await sleep(0);
    assert.equal(el.dataset.status, "missing");
    assert.match(el.querySelector(".cnnlens-error").textContent, /image 2/);
    grid_a.set("image_index", 0);
    dots.set("selected", [1]);           // a click on the second spectrum point
    await sleep(0);
    assert.equal(model.get("direction"), 1);
    assert.equal(model.saved.length, 0); // no kernel: nothing saved
    assert.match(el.querySelector(".cnnlens-canonical-tops").textContent, /direction 2/);
    curve.set("y", [0.8, 0.3, 0.1]);     // compare_link.js redrew the spectrum: the points follow
    assert.deepEqual(dots.get("y"), [0.8, 0.3, 0.1]);
    heatmap.set("selected", [[0, 0]]);   // a pair the page lacks
    await sleep(0);
    assert.match(el.querySelector(".cnnlens-error").textContent, /not in this page/);
    cleanup();
    for (const m of [model, heatmap, grid_a, grid_b, dots, curve]) assert.equal(m.listenerCount(), 0);
  } finally { restore(); }
});

test("a page exported without maps says so instead of showing the maps saved at export", async () => {
  const restore = mockCanvas();
  try {
    const heatmap = new FakeModel({ selected: [[1, 0]] });
    const { el, cleanup } = await mount({ pair_data: pairPayload(), image_data: imagePayload(), status: "ready",
      heatmap: "IPY_MODEL_h" }, { h: heatmap });
    assert.equal(el.dataset.rendered, "0");
    assert.match(el.querySelector(".cnnlens-error").textContent, /not in this page/);
    cleanup();
  } finally { restore(); }
});
