// The service worker (sw.ts) and the "new version available" bar. The worker
// keeps this build for offline and fast opens. A new build's worker installs
// beside it and waits: this bar says so, and only a tap on it lets the new
// build take over (then the page reloads into it). Nothing swaps silently.
// Browsers allow workers only in secure contexts (https, or this machine):
// on a laptop's plain-http LAN address the app runs without one.

import { el } from "./dom.js";

/** Shows the bar above the page (outside `main`, which screens replace). */
function offer(waiting: ServiceWorker): void {
  if (document.getElementById("update")) return;
  const take = el("button", { type: "button", id: "update-now" }, "Update");
  const bar = el("div", { id: "update", className: "update-bar", role: "status" } as Partial<HTMLDivElement>, el("span", {}, "A new version of loopsy is available."), take);
  take.onclick = () => {
    take.disabled = true;
    waiting.postMessage({ type: "take-over" });
  };
  document.body.prepend(bar);
}

export function keepUpToDate(): void {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  const workers = navigator.serviceWorker;
  // Only after a tap (see `offer`): the new worker took over; load its build.
  let reloading = false;
  const hadController = Boolean(workers.controller);
  workers.addEventListener("controllerchange", () => {
    // The first install claims the page too: that is no new build.
    if (!hadController || reloading) return;
    reloading = true;
    location.reload();
  });
  void workers
    .register("sw.js", { scope: "./" })
    .then((registration) => {
      const waitFor = (worker: ServiceWorker | null) => {
        worker?.addEventListener("statechange", () => {
          if (worker.state === "installed" && workers.controller) offer(worker);
        });
      };
      if (registration.waiting && workers.controller) offer(registration.waiting);
      waitFor(registration.installing);
      registration.addEventListener("updatefound", () => waitFor(registration.installing));
    })
    .catch(() => undefined);
}
