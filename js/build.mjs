// One esbuild call: every top-level js/*.js is an anywidget entry -> cnnlens/static/<name>.js
import { build } from "esbuild";
import { readdirSync } from "node:fs";

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
