// One stylesheet for all cnnlens views, inserted once per document (also in exported pages).

const CSS = `
.cnnlens-view { font: 12px/1.4 system-ui, sans-serif; color: #222; box-sizing: border-box; }
.cnnlens-view canvas { image-rendering: pixelated; display: block; }
.cnnlens-toolbar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin-bottom: 4px; }
.cnnlens-toolbar select, .cnnlens-toolbar button { font: inherit; padding: 1px 4px; }
.cnnlens-note { color: #555; margin: 2px 0 4px; min-height: 1.4em; }
.cnnlens-error { color: #a00; background: #fff0f0; border: 1px solid #e3b0b0; padding: 4px 6px;
  margin: 4px 0; white-space: pre-wrap; }
.cnnlens-error[hidden] { display: none; }
.cnnlens-wrap { position: relative; display: inline-block; background: #ddd; }
.cnnlens-mark { position: absolute; pointer-events: none; box-sizing: border-box; }
.cnnlens-mark.sel { outline: 2px solid #e6194b; }
.cnnlens-mark.hover { outline: 1px solid #fff; }
.cnnlens-tip { position: absolute; pointer-events: none; background: rgba(20,20,20,.85); color: #fff;
  padding: 2px 6px; border-radius: 3px; white-space: nowrap; z-index: 2; }
.cnnlens-tree { outline: none; user-select: none; }
.cnnlens-tree-row { display: flex; gap: 6px; align-items: baseline; padding: 1px 4px; cursor: pointer;
  white-space: nowrap; border-radius: 3px; }
.cnnlens-tree-row[aria-selected="true"] { background: #d7e7fb; }
.cnnlens-tree-row.focus { box-shadow: inset 0 0 0 1px #6a9fe0; }
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
`;

export function ensureStyle() {
  if (typeof document === "undefined" || document.getElementById("cnnlens-style")) return;
  const s = document.createElement("style");
  s.id = "cnnlens-style";
  s.textContent = CSS;
  document.head.append(s);
}
