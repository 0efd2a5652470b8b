// The browser half of `cargo bench --bench web` (cli/benches/web.rs starts the
// daemon and relay and prints the figures). Prints one JSON object.
//
//   node bench/app.mjs '{"url": …, "code": …, "url3": …, "code3": …, "text": …, "redraw": …, "shots": …}'

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { pair, phoneBrowser, screenHas, terminalShown } from "../e2e/browser.mjs";

const setup = JSON.parse(process.argv[2]);
const require = createRequire(import.meta.url);
// The render and rotation figures are taken at a pixel ratio of 1, where this
// Chromium's WebGL canvas comes out right (at 3 the app's self-check picks the
// DOM renderer); the opens below are measured at 3, as phones are.
const { browser, page, shot } = await phoneBrowser(setup.shots, { deviceScaleFactor: 1 });
const figures = {};
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const appUrl = new URL(setup.url).origin + "/app/";

async function newSession(name) {
  await page.locator("#session-name").fill(name);
  await page.locator("#new-shell").click();
  await terminalShown(page);
}

async function backToSessions() {
  await page.getByRole("button", { name: "Back to the sessions" }).click();
  await page.getByRole("heading", { name: "New session" }).waitFor();
}

/** Bytes that came over the network (compressed, headers included) while
 * `load` opened the app in `target`, and how long until its first screen. */
async function opened(target, load) {
  const cdp = await target.context().newCDPSession(target);
  await cdp.send("Network.enable");
  let bytes = 0;
  cdp.on("Network.loadingFinished", (event) => (bytes += event.encodedDataLength));
  const began = performance.now();
  await load();
  await target.locator("h1").first().waitFor();
  const ms = performance.now() - began;
  await cdp.detach();
  return { bytes, ms };
}

try {
  // 0. A cold open (nothing cached) and a warm one (a reload), medians of 5.
  const cold = [];
  const warm = [];
  for (let round = 0; round < 5; round++) {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
    const fresh = await context.newPage();
    cold.push(await opened(fresh, () => fresh.goto(appUrl)));
    // Warm: the service worker holds the build (as after any first open).
    await fresh.waitForFunction(() => navigator.serviceWorker?.controller, null, { timeout: 10000 });
    warm.push(await opened(fresh, () => fresh.reload()));
    await context.close();
  }
  figures.coldOpenBytes = median(cold.map((o) => o.bytes));
  figures.coldOpenMs = median(cold.map((o) => o.ms));
  figures.warmOpenBytes = median(warm.map((o) => o.bytes));
  figures.warmOpenMs = median(warm.map((o) => o.ms));

  await pair(page, shot, setup.url, setup.code);
  await page.locator("button.laptop").first().click();
  await newSession("bench-shell");
  await page.keyboard.type("echo ready-$((6*7))-marker\n");
  await screenHas(page, "ready-42-marker");

  // 1. Opening the app to the first byte of a live session on screen, against
  // the app's own first screen (the laptops list) in the same load, at a pixel
  // ratio of 1 and of 3 (a second phone, paired in a context of its own),
  // samples interleaved. The taps are made from inside the page, the moment
  // each button appears, so the figures are the app's and not the automation's.
  const phone3 = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
  const pairing3 = await phone3.newPage();
  await pair(pairing3, () => undefined, setup.url3, setup.code3);
  await pairing3.close();
  const timedPage = async (context) => {
    const timed = await context.newPage();
    await timed.addInitScript(() => {
      // Each sample opens the app from its laptops list, not back into the session.
      sessionStorage.removeItem("loopsy.open");
      const soon = (test) =>
        new Promise((resolve) => {
          const check = () => {
            const found = test();
            if (found) resolve(found);
            else setTimeout(check, 1);
          };
          check();
        });
      window.__bench = (async () => {
        const laptop = await soon(() => document.querySelector("button.laptop"));
        const shell = performance.now();
        laptop.click();
        const session = await soon(() => [...document.querySelectorAll("ul.sessions button")].find((b) => b.textContent === "bench-shell"));
        const listed = performance.now();
        session.click();
        await soon(() => window.loopsy?.rows().join("\n").includes("ready-42-marker"));
        return { shell, listed, first: performance.now(), renderer: document.documentElement.dataset.renderer };
      })();
    });
    return timed;
  };
  const timed1 = await timedPage(page.context());
  const timed3 = await timedPage(phone3);
  const runs = [];
  const runs3 = [];
  for (let i = 0; i < 7; i++) {
    await timed1.goto(appUrl);
    runs.push(await timed1.evaluate(() => window.__bench));
    await timed3.goto(appUrl);
    runs3.push(await timed3.evaluate(() => window.__bench));
  }
  await timed1.close();
  await phone3.close();
  figures.appShellMs = median(runs.map((r) => r.shell));
  figures.sessionsListedMs = median(runs.map((r) => r.listed));
  figures.firstByteMs = median(runs.map((r) => r.first));
  figures.appShellMs3 = median(runs3.map((r) => r.shell));
  figures.firstByteMs3 = median(runs3.map((r) => r.first));
  figures.renderer1 = runs.at(-1)?.renderer;
  figures.renderer3 = runs3.at(-1)?.renderer;
  figures.samples = runs.length;
  // This tab had bench-shell open: the app goes straight back into it.
  await page.goto(appUrl);
  await terminalShown(page);

  // 2. Bytes on the wire while the phone turns and its keyboard opens, with an
  // agent-like program that repaints its history on a width change.
  await backToSessions();
  await newSession("bench-redraw");
  await page.keyboard.type(`sh '${setup.redraw}'\n`);
  await screenHas(page, "redraw-ready");
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  let received = 0;
  let sent = 0;
  cdp.on("Network.webSocketFrameReceived", ({ response }) => {
    received += response.opcode === 2 ? Buffer.from(response.payloadData, "base64").length : response.payloadData.length;
  });
  cdp.on("Network.webSocketFrameSent", () => (sent += 1));
  const portrait = { width: 390, height: 844 };
  const steps = [];
  for (let i = 1; i <= 8; i++) steps.push({ width: Math.round(390 + ((844 - 390) * i) / 8), height: Math.round(844 - ((844 - 390) * i) / 8) });
  for (let i = 1; i <= 4; i++) steps.push({ width: 844, height: 390 - 45 * i });
  const turn = async (gapMs) => {
    await page.setViewportSize(portrait);
    await page.waitForTimeout(2500);
    received = 0;
    sent = 0;
    for (const size of steps) {
      await page.setViewportSize(size);
      await page.waitForTimeout(gapMs);
    }
    await page.waitForTimeout(2500);
    return { bytes: received, resizes: sent };
  };
  // A real rotation animates at about one frame per step; committing every
  // step is what a client without the debounce does.
  const disciplined = await turn(16);
  const undisciplined = await turn(400);
  figures.disciplinedBytes = disciplined.bytes;
  figures.disciplinedResizes = disciplined.resizes;
  figures.undisciplinedBytes = undisciplined.bytes;
  figures.undisciplinedResizes = undisciplined.resizes;
  await page.setViewportSize(portrait);
  await cdp.detach();

  // 3. 10 MB of output rendered through the app, against the same bytes
  // written into a bare xterm.js (same renderer, same size) in this browser.
  await page.keyboard.press("Control+c");
  await page.keyboard.type("clear\n");
  await page.waitForTimeout(500);
  await page.keyboard.type(`cat '${setup.text}'; echo render-done-$((1+1))`);
  const started = await page.evaluate(() => performance.now());
  await page.keyboard.press("Enter");
  const done = await (await page.waitForFunction(() => window.loopsy?.rows().join("\n").includes("render-done-2") && performance.now(), null, { timeout: 300_000 })).jsonValue();
  figures.appRenderMs = done - started;
  figures.renderer = await page.evaluate(() => document.documentElement.dataset.renderer);
  await shot("rendered");

  const bare = await page.context().newPage();
  await bare.setContent('<div id="t" style="position:fixed;inset:0 0 2.8rem 0"></div>');
  await bare.addStyleTag({ path: require.resolve("@xterm/xterm/css/xterm.css") });
  await bare.addScriptTag({ path: require.resolve("@xterm/xterm/lib/xterm.js") });
  await bare.addScriptTag({ path: require.resolve("@xterm/addon-webgl/lib/addon-webgl.js") });
  const text = readFileSync(setup.text);
  await bare.evaluate(() => (window.chunks = []));
  for (let at = 0; at < text.length; at += 1 << 20) {
    await bare.evaluate((b64) => window.chunks.push(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))), text.subarray(at, at + (1 << 20)).toString("base64"));
  }
  figures.bareRenderMs = await bare.evaluate(async (renderer) => {
    const term = new window.Terminal({ fontSize: 14, scrollback: 5000 });
    term.open(document.getElementById("t"));
    if (renderer === "webgl") term.loadAddon(new window.WebglAddon.WebglAddon());
    // Arrives in the pieces the channel uses (64 KiB frames at most).
    const pieces = window.chunks.flatMap((chunk) => Array.from({ length: Math.ceil(chunk.length / 65536) }, (_, i) => chunk.subarray(i * 65536, (i + 1) * 65536)));
    const began = performance.now();
    for (const piece of pieces) term.write(piece);
    await new Promise((resolve) => term.write("", resolve));
    await new Promise((resolve) => requestAnimationFrame(resolve));
    return performance.now() - began;
  }, figures.renderer);
} catch (error) {
  console.error(String(error));
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify(figures));
