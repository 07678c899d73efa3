// Twin of cnnlens/widgets/layer_tree.py: collapsible module hierarchy; click or keyboard
// selects a layer by writing `layer` into the referenced ActivationGrid model.

import { Listeners, debounce, fmtCount, h, hasKernel, refModel, revealWithin } from "./lib/dom.js";
import { NOT_EXPORTED, frameCoverage } from "./lib/frames.js";
import { ensureStyle } from "./lib/style.js";

const KEY_MS = 120;  // arrow keys: the selection follows, but the kernel sees only the last stop

/**
 * Children lists and visibility of tree rows.
 * @param {{name:string, parent:number}[]} nodes
 */
export function children(nodes) {
  const kids = nodes.map(() => []);
  nodes.forEach((n, i) => { if (n.parent >= 0) kids[n.parent].push(i); });
  return kids;
}

/** Indices of rows whose ancestors are all expanded, in order. */
export function visibleRows(nodes, collapsed) {
  const out = [];
  nodes.forEach((n, i) => {
    for (let p = n.parent; p >= 0; p = nodes[p].parent) if (collapsed.has(p)) return;
    out.push(i);
  });
  return out;
}

/** Expand every ancestor of row i (so a selection made elsewhere is visible). */
export function reveal(nodes, collapsed, i) {
  for (let p = i >= 0 ? nodes[i].parent : -1; p >= 0; p = nodes[p].parent) collapsed.delete(p);
}

function shapeText(shape) {
  return shape ? `(${shape.join("×")})` : "not run";
}

/** Everything a row says, in full: its tooltip (a narrow tree cuts the row's text short). */
export function rowTitle(n) {
  const params = n.params ? ` · ${n.params.toLocaleString("en-US")} parameters` : "";
  return `${n.name} · ${n.type} · ${shapeText(n.shape)}${params}`;
}

async function render({ model, el }) {
  ensureStyle();
  const L = new Listeners();
  const grid = (await refModel(model, "grid")) ?? null;
  const root = h("div", { className: "cnnlens-view cnnlens-tree", tabIndex: 0, attrs: { role: "tree" } });
  el.append(root);

  let nodes = model.get("nodes") || [];
  let kids = children(nodes);
  // Start with the top level open and deeper blocks closed.
  let collapsed = new Set(nodes.map((n, i) => (kids[i].length && n.depth >= 2 ? i : -1)).filter((i) => i >= 0));
  let focus = -1;
  const selected = () => (grid ? grid.get("layer") : root.dataset.layer || "");
  // a static page offers only the layers it holds; the others stay listed, disabled, saying why
  const offered = (n) => { const cov = frameCoverage(grid, hasKernel(grid)); return !cov || cov.layers.has(n.name); };

  function draw() {
    const sel = selected();
    const si = nodes.findIndex((n) => n.name === sel);
    root.dataset.layer = sel;
    const rows = visibleRows(nodes, collapsed).map((i) => {
      const n = nodes[i];
      const label = n.name.split(".").pop();
      const open = kids[i].length ? !collapsed.has(i) : null;
      const here = !n.shape || offered(n);
      const attrs = {
        role: "treeitem", "data-layer-name": n.name, "data-index": i, "data-kind": n.kind,
        "aria-selected": i === si ? "true" : "false", "aria-level": n.depth,
        title: here ? rowTitle(n) : `${rowTitle(n)} · ${NOT_EXPORTED}`,
      };
      if (!here) attrs["aria-disabled"] = "true";
      if (open !== null) attrs["aria-expanded"] = String(open);
      return h("div", {
        className: `cnnlens-tree-row${n.shape && here ? "" : " disabled"}${i === focus ? " focus" : ""}`,
        style: { paddingLeft: `${4 + 12 * Math.max(0, n.depth - 1)}px` }, attrs,
      }, [
        h("span", { className: "cnnlens-toggle", text: open === null ? "" : open ? "▾" : "▸" }),
        h("span", { className: "cnnlens-tree-name", text: label }),
        h("span", { className: "cnnlens-kind", text: n.kind }),
        h("span", { className: "cnnlens-dim cnnlens-tree-shape", text: shapeText(n.shape) }),
        n.params ? h("span", { className: "cnnlens-dim cnnlens-tree-params", text: `${fmtCount(n.params)} p` }) : null,
      ]);
    });
    root.replaceChildren(...rows);
  }

  function choose(i, now = true) {
    const n = nodes[i];
    if (!n || !n.shape || !offered(n)) return;
    focus = i;
    if (!grid) { root.dataset.layer = n.name; draw(); return; }
    grid.set("layer", n.name);  // local change event: every view of the pane follows at once
    if (now) grid.save_changes(); else keySave();
  }
  const keySave = debounce(() => grid && grid.save_changes(), KEY_MS);

  L.dom(root, "click", (ev) => {
    const row = ev.target.closest?.("[data-layer-name]");
    if (!row) return;
    const i = Number(row.dataset.index);
    if (ev.target.classList.contains("cnnlens-toggle") && kids[i].length) {
      collapsed.has(i) ? collapsed.delete(i) : collapsed.add(i);
      focus = i;
      draw();
      return;
    }
    choose(i);
  });
  L.dom(root, "keydown", (ev) => {
    const vis = visibleRows(nodes, collapsed);
    if (!vis.length) return;
    if (focus < 0) focus = Math.max(0, nodes.findIndex((n) => n.name === selected()));
    const at = Math.max(0, vis.indexOf(focus));
    const move = (j) => { const i = vis[Math.max(0, Math.min(vis.length - 1, j))]; focus = i; choose(i, false); draw(); };
    switch (ev.key) {
      case "ArrowDown": move(at + 1); break;
      case "ArrowUp": move(at - 1); break;
      case "Home": move(0); break;
      case "End": move(vis.length - 1); break;
      case "ArrowRight":
        if (kids[focus].length && collapsed.has(focus)) { collapsed.delete(focus); draw(); } else if (kids[focus].length) move(at + 1);
        break;
      case "ArrowLeft":
        if (kids[focus].length && !collapsed.has(focus)) { collapsed.add(focus); draw(); } else if (nodes[focus].parent >= 0) move(vis.indexOf(nodes[focus].parent));
        break;
      case "Enter": case " ": choose(focus); draw(); break;
      default: return;
    }
    ev.preventDefault();
  });
  const follow = () => {
    const si = nodes.findIndex((n) => n.name === selected());
    // the keyboard cursor follows a selection made elsewhere (grid, heatmap, Python), or
    // a stale cursor would mark a second row
    if (si >= 0) focus = si;
    reveal(nodes, collapsed, si);
    draw();
    const row = root.querySelector('[aria-selected="true"]');
    if (row) revealWithin(row, el);  // the tree's own box only: the page stays put
  };
  if (grid) L.model(grid, "change:layer", follow);
  L.model(model, "change:nodes", () => {
    nodes = model.get("nodes") || [];
    kids = children(nodes);
    collapsed = new Set();
    draw();
  });
  L.add(() => keySave.cancel());
  follow();
  return () => { L.dispose(); root.remove(); };
}

export default { render };
