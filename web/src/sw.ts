// The service worker: keeps one build of the app (its page, script, style,
// manifest and icon) so the app opens offline and without a round trip, and
// never swaps in a new build by itself. A new build's worker installs beside
// this one and waits; the page shows "new version available", and only a tap
// there tells it to take over (then the page reloads). Nothing but the app's
// own files goes through the cache: no WebSocket, no other origin, no request
// that is not a GET.

// The build script fills these in (web/scripts/build.mjs).
declare const __LOOPSY_BUILD__: string;
declare const __LOOPSY_FILES__: string[];

// The few worker types used here (the project's typecheck uses the DOM library).
interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}
interface WorkerScope {
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", listener: (event: FetchEvent) => void): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  skipWaiting(): Promise<void>;
  readonly registration: { readonly scope: string };
  readonly clients: { claim(): Promise<void> };
}

const scope = self as unknown as WorkerScope;
const CACHE = `loopsy-${__LOOPSY_BUILD__}`;
const base = new URL(scope.registration.scope);
const page = new URL("./", base).href;

scope.addEventListener("install", (event) => {
  // `reload`: the browser's HTTP cache may still hold an older page.
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(__LOOPSY_FILES__.map((file) => new Request(new URL(file, base), { cache: "reload" })))));
});

scope.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name.startsWith("loopsy-") && name !== CACHE).map((name) => caches.delete(name))))
      .then(() => scope.clients.claim()),
  );
});

scope.addEventListener("message", (event) => {
  if (event.data?.type === "take-over") void scope.skipWaiting();
});

scope.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== base.origin || !url.href.startsWith(base.href)) return;
  // Any page of the app (with or without `index.html`) is this build's page.
  const key = request.mode === "navigate" || url.pathname.endsWith("/index.html") ? page : url.href.split(/[?#]/)[0] ?? url.href;
  event.respondWith(
    caches
      .open(CACHE)
      .then((cache) => cache.match(key))
      .then((cached) => cached ?? fetch(request)),
  );
});
