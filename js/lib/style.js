// One stylesheet for all cnnlens views, inserted once per document (also in exported pages).

const CSS = `
/* Colours come from JupyterLab's theme variables (light fallbacks for pages without them:
   exported pages, Voila's classic template); text never gets a fixed colour (issue 11:
   near-black on black in the dark theme). Data colours (colour maps) are the only fixed ones. */
.cnnlens-view { font: 12px/1.4 var(--jp-ui-font-family, system-ui, sans-serif);
  color: var(--jp-ui-font-color1, #222); box-sizing: border-box; }
/* [hidden] must win over the display rules below (a hidden overlay canvas kept showing) */
.cnnlens-view [hidden], .cnnlens-view[hidden] { display: none !important; }
.cnnlens-view canvas { image-rendering: pixelated; display: block; }
.cnnlens-view canvas:focus { outline: none; }
.cnnlens-view canvas:focus-visible { outline: 2px solid var(--jp-brand-color1, #6a9fe0); outline-offset: 1px; }
/* The grid lays its tiles out for the width it is given: inline-size containment keeps the
   canvas it paints from widening its own box (a resize loop that ran it under its neighbours). */
.cnnlens-grid, .cnnlens-filters { contain: inline-size; min-width: 160px; }
.cnnlens-toolbar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin-bottom: 4px; }
.cnnlens-view select, .cnnlens-view button, .cnnlens-view input {
  font: inherit; color: var(--jp-ui-font-color1, #222);
  background: var(--jp-input-background, var(--jp-layout-color1, #fff));
  border: 1px solid var(--jp-border-color1, #bdbdbd); border-radius: 2px; }
.cnnlens-toolbar select, .cnnlens-toolbar button { padding: 1px 4px; max-width: 100%; }
.cnnlens-view button:disabled { color: var(--jp-ui-font-color3, #999); }
.cnnlens-static-badge { margin-left: auto; color: var(--jp-ui-font-color2, #666); font-size: 10px;
  border: 1px solid var(--jp-border-color2, #ddd); border-radius: 6px; padding: 0 5px; cursor: help; }
.cnnlens-busy { display: block; width: 160px; height: 6px; margin: 2px 0 4px; }
.cnnlens-note { color: var(--jp-ui-font-color2, #555); margin: 2px 0 4px; min-height: 1.4em; }
.cnnlens-error { color: var(--jp-ui-font-color1, #222);
  background: color-mix(in srgb, var(--jp-error-color1, #d32f2f) 14%, transparent);
  border: 1px solid var(--jp-error-color1, #d32f2f); padding: 4px 6px; margin: 4px 0; white-space: pre-wrap; }
.cnnlens-error[hidden] { display: none; }
.cnnlens-wrap { position: relative; display: inline-block; max-width: 100%; vertical-align: top; }
.cnnlens-mark { position: absolute; pointer-events: none; box-sizing: border-box; }
.cnnlens-mark.sel { outline: 2px solid #e6194b; }  /* on the data: one accent for every theme */
.cnnlens-mark.hover { outline: 1px solid #fff; }
.cnnlens-tip { position: absolute; pointer-events: none; background: var(--jp-inverse-layout-color1, #222);
  color: var(--jp-ui-inverse-font-color0, #fff); opacity: .92;
  padding: 2px 6px; border-radius: 3px; white-space: nowrap; z-index: 2; }
.cnnlens-tree { outline: none; user-select: none; }
.cnnlens-tree-row { display: flex; gap: 6px; align-items: baseline; padding: 1px 4px; cursor: pointer;
  white-space: nowrap; border-radius: 3px; overflow: hidden; }
/* a narrow tree shortens the text (the row's title has all of it): the parameter count
   first, then the name; the shape stays whole */
.cnnlens-tree-row > span { flex: 0 0 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; }
.cnnlens-tree-row > .cnnlens-tree-name { flex-shrink: 1; min-width: 3em; }
.cnnlens-tree-row > .cnnlens-tree-params { flex-shrink: 100; }
.cnnlens-tree-row:hover { background: color-mix(in srgb, var(--jp-layout-color2, #eee) 60%, transparent); }
/* selected: the theme's raised background, an accent bar, and full-strength text (the
   dimmed colour falls under 4.5:1 on a raised background in the dark theme) */
.cnnlens-tree-row[aria-selected="true"] { background: var(--jp-layout-color2, #e3edf9);
  box-shadow: inset 3px 0 0 var(--jp-brand-color1, #2196f3); }
.cnnlens-tree-row[aria-selected="true"] > span { color: var(--jp-ui-font-color1, #222); }
/* the keyboard cursor, only while the keyboard drives the tree (a click leaves no ring) */
.cnnlens-tree:focus-visible .cnnlens-tree-row.focus { box-shadow: inset 0 0 0 1px var(--jp-brand-color1, #6a9fe0); }
.cnnlens-tree-row.disabled { color: var(--jp-ui-font-color3, #999); cursor: default; }
.cnnlens-toggle { width: 1em; display: inline-block; color: var(--jp-ui-font-color2, #666); }
.cnnlens-kind { font-size: 10px; padding: 0 4px; border-radius: 6px; background: var(--jp-layout-color2, #eee);
  border: 1px solid var(--jp-border-color2, #e0e0e0); color: var(--jp-ui-font-color1, #333); }
.cnnlens-dim { color: var(--jp-ui-font-color2, #666); font-size: 11px; }
.cnnlens-thumbs { display: flex; flex-wrap: wrap; gap: 3px; max-height: 220px; overflow: auto; }
.cnnlens-thumb { border: 2px solid transparent; cursor: pointer; position: relative; }
.cnnlens-thumb[aria-selected="true"] { border-color: #e6194b; }
.cnnlens-thumb.disabled { opacity: .35; cursor: not-allowed; }
/* the caption goes under the image: over it, it covered the digits (issue 11) */
.cnnlens-thumb .cnnlens-dim { display: block; text-align: center; font-size: 10px; line-height: 1.2; }
.cnnlens-detail-stage { position: relative; overflow: hidden; }  /* its canvases never spill onto the top images */
/* colour bars (lib/colorbar.js): a ramp with its ticks under it and a label above */
.cnnlens-colorbar { margin: 2px 0 6px; max-width: 260px; }
.cnnlens-colorbar-label { color: var(--jp-ui-font-color2, #555); font-size: 11px; }
.cnnlens-colorbar-body { position: relative; padding-bottom: 14px; }
.cnnlens-colorbar-ramp { width: 100%; height: 10px; border: 1px solid var(--jp-border-color1, #bdbdbd);
  box-sizing: border-box; }
.cnnlens-colorbar-ticks span { position: absolute; top: 11px; transform: translateX(-50%); font-size: 10px;
  color: var(--jp-ui-font-color2, #555); white-space: nowrap; }
.cnnlens-colorbar-ticks span.start, .cnnlens-hist-axis span.start { transform: none; }
.cnnlens-colorbar-ticks span.end, .cnnlens-hist-axis span.end { transform: translateX(-100%); }
/* the weight histogram (js/filter_grid.js): a bounded width, an x axis with its ends and zero */
.cnnlens-filter-hist { max-width: 360px; }
.cnnlens-filter-hist svg { display: block; }
.cnnlens-hist-axis { position: relative; height: 14px; }
.cnnlens-hist-axis span { position: absolute; top: 1px; transform: translateX(-50%); font-size: 10px;
  color: var(--jp-ui-font-color2, #555); white-space: nowrap; }
.cnnlens-hist-xlabel { text-align: center; }
.cnnlens-dist-bar { fill: var(--jp-brand-color1, #31688e); }
.cnnlens-dist-axis { stroke: var(--jp-border-color1, #bdbdbd); }
.cnnlens-dist-mark { stroke: #e6194b; stroke-width: 2; }  /* the selection accent, as on the grid */
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
/* the heatmap (js/compare_link.js): a fast hover tip; the figure takes keyboard focus */
.cnnlens-heatmap-tip { white-space: pre; z-index: 5; font: 11px/1.35 var(--jp-ui-font-family, system-ui, sans-serif); }
.cnnlens-heatmap:focus { outline: none; }
.cnnlens-heatmap:focus-visible { outline: 2px solid var(--jp-brand-color1, #6a9fe0); }
/* the spectrum's legend (cnnlens/widgets/spectrum.py), beside the plot, not over the data */
.cnnlens-spectrum-legend { padding: 0 8px 0 55px; max-width: 320px; box-sizing: border-box;
  font-size: 11px; line-height: 1.3; }
.cnnlens-legend-row { display: flex; gap: 6px; align-items: center; }
/* Compare panes (cnnlens/widgets/compare.py): compact by default, the selected layer's grid
   and the neuron detail, so one 1280 x 800 screen holds heatmap, spectrum and both grids;
   the pane's "full Lens" button (js/compare_link.js) brings back the tree, images and filters. */
/* the lower row holds a bqplot histogram: out of sight but laid out (display:none gives it a
   0 x 0 box, and bqplot then draws negative sizes: console errors) */
.cnnlens-compact .cnnlens-lens-lower { position: absolute !important; left: -99999px; width: 900px;
  visibility: hidden; }
.cnnlens-compact .cnnlens-lens-tree,
.cnnlens-compact .cnnlens-detail > .cnnlens-row, .cnnlens-compact .cnnlens-detail-filterbox,
.cnnlens-compact .cnnlens-detail .cnnlens-top, .cnnlens-compact .cnnlens-detail .cnnlens-top-status {
  display: none !important; }
/* one line each: the grid's toolbar keeps layer and scale (order and colours are in the full
   Lens), the colour bar's label is cut (its tooltip has it whole) */
.cnnlens-compact .cnnlens-grid .cnnlens-sort, .cnnlens-compact .cnnlens-grid .cnnlens-cmap { display: none; }
.cnnlens-compact .cnnlens-colorbar-label { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.cnnlens-compact .cnnlens-lens-detail { flex: 0 1 230px !important; width: 230px !important; min-width: 0; }
.cnnlens-compact .cnnlens-detail-stage { zoom: .65; }
.cnnlens-compact .cnnlens-lens-main { flex-wrap: nowrap !important; }
/* the top row (heatmap | spectrum | canonical maps) stays within the screen's upper half;
   a taller view scrolls inside itself */
.cnnlens-compare .cnnlens-canonical { max-height: 360px; max-width: 380px; overflow: auto; }
.cnnlens-pane-head { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.cnnlens-pane-toggle { font: inherit; font-size: 11px; color: var(--jp-ui-font-color1, #222);
  background: var(--jp-layout-color2, #eee); border: 1px solid var(--jp-border-color1, #bdbdbd);
  border-radius: 3px; padding: 0 6px; cursor: pointer; }
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
