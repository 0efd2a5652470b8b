// Builds the app into dist/: one JS and one CSS bundle (esbuild) and an
// index.html that names both with Subresource Integrity hashes, so the relay
// can serve it under a CSP without inline scripts or third-party origins.

import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

mkdirSync("dist/assets", { recursive: true });
await build({
  entryPoints: { app: "src/app.ts" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  outdir: "dist/assets",
  logLevel: "warning",
});
const integrity = (file) => "sha384-" + createHash("sha384").update(readFileSync(file)).digest("base64");
const html = readFileSync("src/index.html", "utf8")
  .replace("%JS_INTEGRITY%", integrity("dist/assets/app.js"))
  .replace("%CSS_INTEGRITY%", integrity("dist/assets/app.css"));
writeFileSync("dist/index.html", html);
copyFileSync("src/manifest.webmanifest", "dist/manifest.webmanifest");
copyFileSync("src/icon.svg", "dist/assets/icon.svg");
