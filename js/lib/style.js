// One stylesheet for all cnnlens views, inserted once per document (also in exported pages).

const CSS = `
.cnnlens-view { font: 12px/1.4 system-ui, sans-serif; color: #222; box-sizing: border-box; }
.cnnlens-view canvas { image-rendering: pixelated; display: block; }
.cnnlens-view canvas:focus { outline: none; }
.cnnlens-view canvas:focus-visible { outline: 2px solid #6a9fe0; outline-offset: 1px; }
/* The grid lays its tiles out for the width it is given: inline-size containment keeps the
   canvas it paints from widening its own box (a resize loop that ran it under its neighbours). */
.cnnlens-grid, .cnnlens-filters { contain: inline-size; min-width: 160px; }
.cnnlens-toolbar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin-bottom: 4px; }
.cnnlens-toolbar select, .cnnlens-toolbar button { font: inherit; padding: 1px 4px; max-width: 100%; }
.cnnlens-static-badge { margin-left: auto; color: #888; font-size: 10px; border: 1px solid #ddd;
  border-radius: 6px; padding: 0 5px; cursor: help; }
.cnnlens-note { color: #555; margin: 2px 0 4px; min-height: 1.4em; }
.cnnlens-error { color: #a00; background: #fff0f0; border: 1px solid #e3b0b0; padding: 4px 6px;
  margin: 4px 0; white-space: pre-wrap; }
.cnnlens-error[hidden] { display: none; }
.cnnlens-wrap { position: relative; display: inline-block; max-width: 100%; vertical-align: top; }
.cnnlens-mark { position: absolute; pointer-events: none; box-sizing: border-box; }
.cnnlens-mark.sel { outline: 2px solid #e6194b; }
.cnnlens-mark.hover { outline: 1px solid #fff; }
.cnnlens-tip { position: absolute; pointer-events: none; background: rgba(20,20,20,.85); color: #fff;
  padding: 2px 6px; border-radius: 3px; white-space: nowrap; z-index: 2; }
.cnnlens-tree { outline: none; user-select: none; }
.cnnlens-tree-row { display: flex; gap: 6px; align-items: baseline; padding: 1px 4px; cursor: pointer;
  white-space: nowrap; border-radius: 3px; overflow: hidden; }
/* a narrow tree shortens the text (the row's title has all of it): the parameter count
   first, then the name; the shape stays whole */
.cnnlens-tree-row > span { flex: 0 0 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; }
.cnnlens-tree-row > .cnnlens-tree-name { flex-shrink: 1; min-width: 3em; }
.cnnlens-tree-row > .cnnlens-tree-params { flex-shrink: 100; }
.cnnlens-tree-row:hover { background: #f4f6f9; }
.cnnlens-tree-row[aria-selected="true"] { background: #d7e7fb; }
/* the keyboard cursor, only while the keyboard drives the tree (a click leaves no ring) */
.cnnlens-tree:focus-visible .cnnlens-tree-row.focus { box-shadow: inset 0 0 0 1px #6a9fe0; }
.cnnlens-tree-row.disabled { color: #999; cursor: default; }
.cnnlens-toggle { width: 1em; display: inline-block; color: #666; }
.cnnlens-kind { font-size: 10px; padding: 0 4px; border-radius: 6px; background: #eee; color: #444; }
.cnnlens-dim { color: #777; font-size: 11px; }
.cnnlens-thumbs { display: flex; flex-wrap: wrap; gap: 3px; max-height: 220px; overflow: auto; }
.cnnlens-thumb { border: 2px solid transparent; cursor: pointer; position: relative; }
.cnnlens-thumb[aria-selected="true"] { border-color: #e6194b; }
.cnnlens-thumb .cnnlens-dim { position: absolute; bottom: 0; right: 1px; background: rgba(255,255,255,.8);
  font-size: 9px; }
.cnnlens-detail-stage { position: relative; }
.cnnlens-detail-stage canvas { position: absolute; left: 0; top: 0; }
.cnnlens-row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
/* Controls that only a kernel can serve (Run, uploads, paging, re-ranking) are hidden in a
   page without one; the views mark themselves .cnnlens-static there (lib/dom.js hasKernel). */
.cnnlens-static .cnnlens-needs-kernel,
:is(.cnnlens-lens, .cnnlens-compare):has(.cnnlens-static) .cnnlens-needs-kernel { display: none !important; }
/* Lens layout (cnnlens/widgets/lens.py): tree | grid | detail, the detail wrapping below the
   grid when the row is narrow; images | filters below. */
.cnnlens-lens { gap: 12px; }
.cnnlens-lens-main, .cnnlens-lens-lower { gap: 8px 16px; }
.cnnlens-compare .cnnlens-static-badge { display: none; }  /* said once, in the status line */
.cnnlens-lens-main > .cnnlens-lens-mid { min-width: 0; }
`;

export function ensureStyle() {
  if (typeof document === "undefined" || document.getElementById("cnnlens-style")) return;
  const s = document.createElement("style");
  s.id = "cnnlens-style";
  s.textContent = CSS;
  document.head.append(s);
}
