// One build command: every top-level js/*.js is an anywidget entry -> cnnlens/static/<name>.js,
// then the offline-export loader is vendored into cnnlens/static/vendor/ (see cnnlens/export/page.py):
// users of the exported pages never fetch it at run time.
import { build } from "esbuild";
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";

const entryPoints = readdirSync(".")
  .filter((f) => f.endsWith(".js"))
  .map((f) => `./${f}`);

await build({
  entryPoints,
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  outdir: "../cnnlens/static",
  logLevel: "warning",
});

// Widget manager for static pages (AMD) + the fonts its CSS loads relative to itself.
// .eot/.svg fonts are for browsers that predate woff; maps and the non-AMD build are not used.
const vendor = "../cnnlens/static/vendor";
const manager = "node_modules/@jupyter-widgets/html-manager/dist";
rmSync(vendor, { recursive: true, force: true });
mkdirSync(`${vendor}/html-manager`, { recursive: true });
for (const f of readdirSync(manager)) {
  if (f === "embed-amd.js" || f.endsWith(".LICENSE.txt") || /\.(woff2?|ttf)$/.test(f)) cpSync(`${manager}/${f}`, `${vendor}/html-manager/${f}`);
}
cpSync("node_modules/requirejs/require.js", `${vendor}/require.js`);
