// Whether this app is the build the laptop embeds. Each daemon embeds the app
// it was built with and reports that build's id (`status` → daemon.webApp);
// this page knows its own from its script's content name (app.<id>.js). A
// mismatch means a stale copy (an old static host, a cached page) or a
// changed one. A guard rail, not a boundary: code served by a hostile origin
// can make this check say anything (docs/security.md).

import type { Connection, Laptop } from "./channel.js";
import { el } from "./dom.js";

/** This page's build id, from its script's name; null when it has none. */
export function ownBuild(): string | null {
  const script = document.querySelector<HTMLScriptElement>('script[type="module"][src]');
  return script?.src.match(/app\.([0-9a-f]{12})\.js$/)?.[1] ?? null;
}

/** A warning when `laptop` embeds another build than this page; null when they agree or one is unknown. */
export async function buildWarning(connection: Connection, laptop: Laptop): Promise<HTMLElement | null> {
  const answer = await connection.call("status");
  const laptops = (answer.result as { daemon?: { webApp?: unknown } } | undefined)?.daemon?.webApp;
  const own = ownBuild();
  if (typeof laptops !== "string" || !laptops || !own || laptops === own) return null;
  const warning = el(
    "p",
    { className: "warning", id: "build-mismatch", role: "status" } as Partial<HTMLParagraphElement>,
    `This app (build ${own}) is not the one ${laptop.name} was built with (build ${laptops}). It may be an old copy, or changed. Reload it, or open the app your laptop serves.`,
  );
  warning.dataset.own = own;
  warning.dataset.laptop = laptops;
  return warning;
}
