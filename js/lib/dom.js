// Small DOM helpers shared by the views: element creation, listener bookkeeping
// (so render() can return a cleanup that removes everything), debouncing, and
// resolving a referenced widget model ("IPY_MODEL_<id>").

/**
 * Create an element. props: className, text, style (object), attrs (object), any DOM property.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {(Node|string|null)[]} [children]
 */
export function h(tag, props = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === "className") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "style") Object.assign(el.style, v);
    else if (k === "attrs") for (const [a, x] of Object.entries(v)) el.setAttribute(a, String(x));
    else el[k] = v;
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

/** Collects DOM and model listeners; `dispose()` removes all of them. */
export class Listeners {
  constructor() {
    /** @type {(() => void)[]} */
    this.undo = [];
  }

  /** addEventListener, remembered. */
  dom(target, type, fn, opts) {
    target.addEventListener(type, fn, opts);
    this.undo.push(() => target.removeEventListener(type, fn, opts));
  }

  /** model.on("change:x", fn), remembered. */
  model(model, event, fn) {
    model.on(event, fn);
    this.undo.push(() => model.off(event, fn));
  }

  /** Calls `fn` when `el`'s width changes by more than 8 px (views reflow to the width they get). */
  width(el, fn) {
    if (typeof ResizeObserver === "undefined") return;
    let width = el.clientWidth;
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w && Math.abs(w - width) > 8) { width = w; fn(); }
    });
    ro.observe(el);
    this.undo.push(() => ro.disconnect());
  }

  /** Any other teardown (timers, observers). */
  add(fn) {
    this.undo.push(fn);
  }

  dispose() {
    for (const fn of this.undo.splice(0).reverse()) fn();
  }
}

/**
 * Trailing-edge debounce with cancel().
 * @template {(...a: any[]) => void} F
 * @param {F} fn
 * @param {number} ms
 */
export function debounce(fn, ms) {
  let timer = null;
  const d = (...args) => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => { timer = null; fn(...args); }, ms);
  };
  d.cancel = () => { if (timer !== null) clearTimeout(timer); timer = null; };
  return d;
}

/**
 * The model a widget-reference trait points to (Instance(Widget) + widget_serialization
 * arrives as "IPY_MODEL_<id>"); the model itself if the trait already holds one.
 * @param {any} model
 * @param {string} name
 */
export async function refModel(model, name) {
  const v = model.get(name);
  if (!v) return null;
  if (typeof v === "object" && typeof v.get === "function") return v;
  if (typeof v === "string" && v.startsWith("IPY_MODEL_")) {
    return await model.widget_manager.get_model(v.slice("IPY_MODEL_".length));
  }
  return null;
}

/**
 * Whether a kernel stands behind this view. JupyterLab's, Notebook 7's and Voila's widget
 * managers expose the kernel; the html-manager of an exported page has none, and there a
 * change saved from the page reaches nothing. No manager at all (a bare model) counts as live.
 * @param {any} model
 */
export function hasKernel(model) {
  const wm = model && model.widget_manager;
  return !wm || !!wm.kernel;
}

/** Set (or, for null, remove) an attribute only when it differs: no needless DOM writes. */
export function setIfChanged(node, attr, value) {
  if (value == null) { if (node.hasAttribute(attr)) node.removeAttribute(attr); return; }
  if (node.getAttribute(attr) !== String(value)) node.setAttribute(attr, String(value));
}

/**
 * Send a model's local changes to the kernel, when there is one: without a kernel (an
 * exported page) there is no comm and saving would throw.
 * @param {any} model
 */
export function save(model) {
  if (model && hasKernel(model) && model.comm_live !== false) model.save_changes();
}

/**
 * Keep a tooltip inside its box: to the lower right of (x, y), flipped left/up near the edges.
 * @param {HTMLElement} tip absolutely positioned in a box `width` x `height` CSS px
 */
export function placeTip(tip, x, y, width, height) {
  tip.hidden = false;
  const w = tip.offsetWidth || 0, h = tip.offsetHeight || 0;
  const left = x + 12 + w > width && x - 12 - w >= 0 ? x - 12 - w : x + 12;
  const top = y + 12 + h > height && y - 12 - h >= 0 ? y - 12 - h : y + 12;
  Object.assign(tip.style, { left: `${left}px`, top: `${top}px` });
}

/**
 * Scroll `item` into view inside its own scroll box only: the nearest ancestor up to `stop`
 * (inclusive) that scrolls. Never scrollIntoView: it scrolls every ancestor, the notebook
 * and the page included, and a selection made elsewhere (a heatmap click) made the page
 * jump to the tree (issue 11). Does nothing when no box up to `stop` scrolls.
 * @param {HTMLElement} item
 * @param {HTMLElement} stop
 */
export function revealWithin(item, stop) {
  let box = item.parentElement;
  for (; box; box = box.parentElement) {
    const oy = typeof getComputedStyle === "function" ? getComputedStyle(box).overflowY : "";
    if ((oy === "auto" || oy === "scroll") && box.scrollHeight > box.clientHeight) break;
    if (box === stop) return;
  }
  if (!box) return;
  const top = item.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
  const bottom = top + item.offsetHeight;
  if (top < box.scrollTop) box.scrollTop = top;
  else if (bottom > box.scrollTop + box.clientHeight) box.scrollTop = bottom - box.clientHeight;
}

/** Show an error text in place (the .cnnlens-error area), hidden when empty. */
export function showError(box, text) {
  box.textContent = text || "";
  box.hidden = !text;
  box.style.display = text ? "" : "none";
}

/** Compact numbers for labels: 3 significant digits. */
export function fmt(x) {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(3)).toString();
}

/** 1234567 -> "1.2M" for parameter counts. */
export function fmtCount(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** A <select> with options; value preselected. */
export function select(options, value, className) {
  const s = h("select", { className });
  for (const o of options) {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    s.append(h("option", { value: v, text: label }));
  }
  s.value = value;
  return s;
}

/** Canvas 2D context or null (no canvas support, e.g. happy-dom). */
export function context2d(canvas) {
  try {
    return canvas.getContext ? canvas.getContext("2d") : null;
  } catch {
    return null;
  }
}
