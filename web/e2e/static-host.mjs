// A static web host, as a user would publish web/dist to one: files from a
// folder under a path prefix, with the content types and caching a host
// gives (no CSP header: the page's own meta tag is what holds). Also makes a
// "next build" of a published copy, as a new release would be.

import { createHash } from "node:crypto";
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".webmanifest": "application/manifest+json",
};

/** Serves `root` at `http://127.0.0.1:<port><prefix>`; resolves once listening. */
export function staticHost(root, port, prefix) {
  const requests = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url, "http://host");
    requests.push(url.pathname);
    if (url.pathname === prefix.replace(/\/$/, "")) {
      response.writeHead(301, { Location: prefix }).end();
      return;
    }
    if (!url.pathname.startsWith(prefix)) return response.writeHead(404).end();
    const relative = normalize(url.pathname.slice(prefix.length) || "index.html");
    const file = join(root, relative.endsWith("/") || relative === "." ? "index.html" : relative);
    if (relative.startsWith("..") || !existsSync(file) || !statSync(file).isFile()) return response.writeHead(404).end();
    const immutable = /\/app\.[0-9a-f]{12}\./.test(url.pathname);
    response.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Cache-Control": immutable ? "public, max-age=31536000, immutable" : "no-cache" });
    response.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ server, requests })));
}

/** Copies `dist` to `to`, ready to be served. */
export function publish(dist, to) {
  cpSync(dist, to, { recursive: true });
}

const sha = (algorithm, bytes, encoding) => createHash(algorithm).update(bytes).digest(encoding);

/** Turns the copy in `dir` into a next build: a changed script under its new
 * content name, the page naming it, and a worker of a new build id. Returns
 * the new build id of the script. */
export function nextBuild(dir) {
  const page = readFileSync(join(dir, "index.html"), "utf8");
  const [, oldName] = page.match(/assets\/(app\.[0-9a-f]{12}\.js)/);
  const script = Buffer.concat([readFileSync(join(dir, "assets", oldName)), Buffer.from("\n// the next release\n")]);
  const id = sha("sha256", script, "hex").slice(0, 12);
  const newName = `app.${id}.js`;
  writeFileSync(join(dir, "assets", newName), script);
  const oldIntegrity = page.match(/src="assets\/app\.[0-9a-f]{12}\.js" integrity="([^"]+)"/)[1];
  writeFileSync(join(dir, "index.html"), page.replace(oldName, newName).replace(oldIntegrity, `sha384-${sha("sha384", script, "base64")}`));
  const worker = readFileSync(join(dir, "sw.js"), "utf8");
  const [, oldBuild] = worker.match(/loopsy-([0-9a-f]{12})/);
  writeFileSync(join(dir, "sw.js"), worker.replace(oldName, newName).replace(`loopsy-${oldBuild}`, `loopsy-${id}`));
  return id;
}
