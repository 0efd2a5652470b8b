// Builds the app into dist/, ready for any static host and for embedding:
// - one JS and one CSS bundle (esbuild), written under their content names
//   (app.<first 12 hex of SHA-256>.js, so they can be cached for good) and
//   under plain names for the Rust embed (web/embed/lib.rs computes the same
//   content names from the same bytes), each also precompressed (brotli, gzip);
// - index.html naming both by relative path with Subresource Integrity
//   hashes, under a CSP meta tag (for hosts that send no CSP header), so it
//   works from any folder without inline scripts or third-party origins;
// - sw.js, the service worker, holding this build's id and its file list.

import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { build } from "esbuild";

rmSync("dist", { recursive: true, force: true });
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
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const integrity = (bytes) => "sha384-" + createHash("sha384").update(bytes).digest("base64");
const named = {};
for (const extension of ["js", "css"]) {
  const file = `dist/assets/app.${extension}`;
  const bytes = readFileSync(file);
  const contentName = `app.${sha256(bytes).slice(0, 12)}.${extension}`;
  const brotli = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
  const gzip = gzipSync(bytes, { level: 9 });
  for (const name of [`app.${extension}`, contentName]) {
    writeFileSync(`dist/assets/${name}`, bytes);
    writeFileSync(`dist/assets/${name}.br`, brotli);
    writeFileSync(`dist/assets/${name}.gz`, gzip);
  }
  named[extension] = { path: `assets/${contentName}`, integrity: integrity(bytes) };
}
const html = readFileSync("src/index.html", "utf8")
  .replace("%JS_PATH%", named.js.path)
  .replace("%CSS_PATH%", named.css.path)
  .replace("%JS_INTEGRITY%", named.js.integrity)
  .replace("%CSS_INTEGRITY%", named.css.integrity);
writeFileSync("dist/index.html", html);
copyFileSync("src/manifest.webmanifest", "dist/manifest.webmanifest");
copyFileSync("src/icon.svg", "dist/assets/icon.svg");
// The worker's build id changes whenever the page does (the page names the bundles).
await build({
  entryPoints: { sw: "src/sw.ts" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  outdir: "dist",
  logLevel: "warning",
  define: {
    __LOOPSY_BUILD__: JSON.stringify(sha256(html).slice(0, 12)),
    __LOOPSY_FILES__: JSON.stringify(["./", named.js.path, named.css.path, "manifest.webmanifest", "assets/icon.svg"]),
  },
});
