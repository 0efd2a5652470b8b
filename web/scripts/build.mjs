// Builds the app into dist/: one JS and one CSS bundle (esbuild), each also
// precompressed (brotli and gzip), and an index.html that names both by their
// content (app.<hash>.js, so they can be cached for good) with Subresource
// Integrity hashes, so the relay can serve it under a CSP without inline
// scripts or third-party origins. The relay computes the same names from the
// bytes it embeds (relay/src/webapp.rs).

import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
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
// The first 12 hex digits of the SHA-256 of a file: its name's content part.
const contentName = (file, extension) => `app.${createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 12)}.${extension}`;
for (const file of ["dist/assets/app.js", "dist/assets/app.css"]) {
  const bytes = readFileSync(file);
  writeFileSync(`${file}.br`, brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
  writeFileSync(`${file}.gz`, gzipSync(bytes, { level: 9 }));
}
const html = readFileSync("src/index.html", "utf8")
  .replace("%JS_PATH%", `/app/assets/${contentName("dist/assets/app.js", "js")}`)
  .replace("%CSS_PATH%", `/app/assets/${contentName("dist/assets/app.css", "css")}`)
  .replace("%JS_INTEGRITY%", integrity("dist/assets/app.js"))
  .replace("%CSS_INTEGRITY%", integrity("dist/assets/app.css"));
writeFileSync("dist/index.html", html);
copyFileSync("src/manifest.webmanifest", "dist/manifest.webmanifest");
copyFileSync("src/icon.svg", "dist/assets/icon.svg");
