// The app from an origin of its own, as `loopsy-relay --app-origin` has it: a
// copy of web/dist on a static host (in a folder, as GitHub Pages would put
// it), while the relay in between is hostile and serves other code at /app/.
// The phone pairs and drives a shell, and nothing it runs comes from the
// relay: its only traffic there is WebSockets (and the forget request). The
// service worker opens the app with the host down, and a new release on the
// host is offered as "new version available", never swapped in silently;
// once taken, the app says it is not the build the laptop embeds.
//
//   LOOPSY_APP_PORT=… LOOPSY_RELAY=… node e2e/app-origin.mjs <pairing url> <code> <screenshot dir>

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { finish, glyphsWhereRowsSay, laptopCli, pageFits, pairAndOpenShell, phoneBrowser, screenHas } from "./browser.mjs";
import { nextBuild, publish, staticHost } from "./static-host.mjs";

const [url, code, shots] = process.argv.slice(2);
const port = Number(process.env.LOOPSY_APP_PORT);
const relay = new URL(process.env.LOOPSY_RELAY);
const hosted = join(mkdtempSync(join(tmpdir(), "loopsy-app-")), "site");
publish(resolve("dist"), hosted);
let host = await staticHost(hosted, port, "/loopsy/");

// 390x844 unless VIEWPORT says otherwise (the suite runs it at 360x740 too).
const [width, height] = (process.env.VIEWPORT ?? "390x844").split("x").map(Number);
const { browser, page, failures, shot } = await phoneBrowser(shots, { viewport: { width, height } });
const toRelay = [];
page.on("request", (request) => {
  if (new URL(request.url()).origin === relay.origin) toRelay.push(`${request.method()} ${request.url()}`);
});
const sockets = [];
page.on("websocket", (socket) => sockets.push(socket.url()));
const ownBuild = () => page.evaluate(() => document.querySelector('script[type="module"]').src.match(/app\.([0-9a-f]{12})\.js/)?.[1]);

try {
  if (!url.startsWith(`http://127.0.0.1:${port}/loopsy/#`)) failures.push(`the link does not open the app's origin: ${url}`);
  // A link through another relay asks first, naming it, and sends nothing there until the tap.
  await page.goto(url);
  await page.locator("#pair-continue").waitFor();
  await shot("0-which-relay");
  if (sockets.length) failures.push(`the app reached the link's relay before the tap: ${sockets}`);
  const asked = await page.locator("main").textContent();
  if (!asked?.includes(relay.host)) failures.push(`the question does not name the relay: ${asked}`);
  await page.locator("#pair-continue").tap();
  const through = await page.locator("#pair-relay").textContent();
  if (!through?.includes(relay.host)) failures.push(`the code screen does not name the relay: ${through}`);
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("echo from-$((6*7))-elsewhere\n");
  await screenHas(page, "from-42-elsewhere");
  await page.waitForTimeout(300);
  await shot("3-terminal");
  failures.push(...(await glyphsWhereRowsSay(page, "from-42-elsewhere")));
  if (await page.evaluate(() => document.documentElement.dataset.tampered)) failures.push("the relay's code ran in the app");
  if (!sockets.some((s) => s.startsWith(`ws://${relay.host}/`))) failures.push(`no WebSocket to the relay: ${sockets}`);

  // The control: the relay does serve other code, to whoever loads it from there.
  const control = await page.context().newPage();
  await control.goto(`${relay.origin}/app/`);
  if ((await control.evaluate(() => document.documentElement.dataset.tampered)) !== "yes") failures.push("the hostile relay's page did not run its code");
  await control.close();
  toRelay.splice(0); // The control's own requests.

  await page.getByRole("button", { name: "Back to the sessions" }).click();
  await page.getByRole("button", { name: "Laptops" }).click();
  await page.getByRole("heading", { name: "Your laptops" }).waitFor();
  // The worker keeps this build: with the host down, the app still opens.
  await page.waitForFunction(() => navigator.serviceWorker?.controller !== null, null, { timeout: 10000 });
  host.server.close();
  host.server.closeAllConnections();
  await page.reload();
  await page.getByRole("heading", { name: "Your laptops" }).waitFor();
  await shot("4-offline-open");
  host = await staticHost(hosted, port, "/loopsy/");

  // A new release on the host: offered, not swapped in.
  const before = await ownBuild();
  const next = nextBuild(hosted);
  await page.reload();
  await page.locator("#update").waitFor({ timeout: 15000 });
  await shot("5-update-offered");
  failures.push(...(await pageFits(page, "the laptops with an update offered")));
  if ((await ownBuild()) !== before) failures.push("the new build ran before it was accepted");
  await page.locator("#update-now").tap();
  await page.waitForFunction((id) => document.querySelector('script[type="module"]')?.src.includes(id), next, { timeout: 15000 });
  await page.getByRole("heading", { name: "Your laptops" }).waitFor();
  // That build is not the one the laptop embeds: the app says so.
  await page.locator("button.laptop").first().click();
  const warning = page.locator("#build-mismatch");
  await warning.waitFor();
  failures.push(...(await pageFits(page, "a laptop's sessions")));
  if ((await warning.getAttribute("data-own")) !== next || (await warning.getAttribute("data-laptop")) !== before) {
    failures.push(`mismatch names ${await warning.getAttribute("data-own")} / ${await warning.getAttribute("data-laptop")}`);
  }
  await shot("6-build-mismatch");

  // Forgetting from the app's origin reaches the relay (CORS) and the laptop.
  await page.getByRole("button", { name: "Laptops" }).click();
  await page.getByRole("button", { name: /^Forget / }).click();
  await page.getByText("No laptop paired yet").waitFor();
  for (let waited = 0; JSON.parse(laptopCli("phone", "list", "--json")).length; waited += 100) {
    if (waited > 10000) {
      failures.push("the laptop still lists the forgotten phone");
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const unexpected = toRelay.filter((r) => !r.startsWith("DELETE ") && !r.startsWith("OPTIONS "));
  if (unexpected.length) failures.push(`the app asked the relay for more than connections: ${unexpected.join(", ")}`);
  if (!toRelay.some((r) => r.startsWith("DELETE "))) failures.push("forgetting did not ask the relay");
  if (!host.requests.some((p) => p.includes(`app.${next}.js`))) failures.push("the new build never came from the host");
} catch (error) {
  failures.push(String(error));
}
host.server.close();
host.server.closeAllConnections();
await finish(browser, failures);
