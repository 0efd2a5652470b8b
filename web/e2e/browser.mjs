// What the browser end-to-end scripts share: Debian's Chromium at a phone
// viewport, failures collected from the page, and the pairing steps.

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

import { decodePng, inkIn, rgb } from "./pixels.mjs";

let lastShots = ".";

export async function phoneBrowser(shots, contextOptions = {}) {
  mkdirSync(shots, { recursive: true });
  lastShots = shots;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  // Phones as they are: every current iPhone draws 3 device pixels per CSS pixel.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, hasTouch: true, isMobile: true, ...contextOptions });
  const page = await context.newPage();
  const failures = [];
  page.on("pageerror", (error) => failures.push(`page: ${error.message}`));
  page.on("console", (message) => {
    // A dropped WebSocket is what the reconnect tests cause on purpose.
    if (message.type() === "error" && !message.text().includes("WebSocket")) failures.push(`console: ${message.text()}`);
  });
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
  return { browser, page, failures, shot };
}

/** Pairs through the app with the QR link and code (and a name for the
 * phone, if given); ends on the laptops list. */
export async function pair(page, shot, url, code, name) {
  await page.goto(url);
  // The secret-bearing fragment leaves the address bar at once.
  await page.waitForFunction(() => location.hash === "");
  // A link through a relay other than the page's asks first.
  await page.locator("#code, #pair-continue").first().waitFor();
  if (await page.locator("#pair-continue").count()) await page.locator("#pair-continue").tap();
  await page.locator("#code").fill(code);
  if (name) await page.locator("#phone-name").fill(name);
  await shot("1-code");
  await page.locator("#pair").click();
  await page.getByText("Paired with").waitFor();
  await shot("2-paired");
  await page.getByRole("button", { name: "Done" }).click();
}

/** Pairs, opens the laptop and a new shell. */
export async function pairAndOpenShell(page, shot, url, code, name) {
  await pair(page, shot, url, code, name);
  await page.locator("button.laptop").first().click();
  await page.locator("#new-shell").waitFor();
  // The relay or the laptop served this page: it is the laptop's own build.
  if (await page.locator("#build-mismatch").count()) throw new Error(`the app warns of another build: ${await page.locator("#build-mismatch").textContent()}`);
  await page.locator("#new-shell").click();
  await terminalShown(page);
}

/** Waits for the terminal screen and puts the keyboard focus in it. */
export async function terminalShown(page) {
  await page.waitForFunction(() => document.querySelector("#terminal") && window.loopsy?.rows);
  await page.locator(".xterm-helper-textarea").focus();
}

/** Waits until the terminal shows `text`. */
export function screenHas(page, text, timeout = 15000) {
  return page.waitForFunction((t) => window.loopsy?.rows().join("\n").includes(t), text, { timeout });
}

/** The terminal's visible rows, as text (the app offers them whichever renderer draws). */
export function rows(page) {
  return page.evaluate(() => window.loopsy?.rows() ?? []);
}

/** Waits until the screen's text matches `pattern` (a RegExp source). */
export function screenMatches(page, pattern, timeout = 15000) {
  return page.waitForFunction((p) => new RegExp(p).test(window.loopsy?.rows().join("\n") ?? ""), pattern, { timeout });
}

export async function finish(browser, failures) {
  // What the page showed when something went wrong.
  if (failures.length > 0) {
    for (const context of browser.contexts()) {
      for (const [n, page] of context.pages().entries()) {
        await page.screenshot({ path: `${lastShots}/failure-${n}.png` }).catch(() => undefined);
        const rows = await page.evaluate(() => window.loopsy?.rows().join("\n")).catch(() => undefined);
        if (rows) failures.push(`screen:\n${rows}`);
      }
    }
  }
  await browser.close();
  if (failures.length > 0) {
    console.error(failures.join("\n"));
    process.exit(1);
  }
  console.log("ok");
}

/** The laptops the app keeps in IndexedDB: each one's phone id, and what
 * the page can tell of its key. */
function storedLaptops(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("loopsy");
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const all = open.result.transaction("laptops").objectStore("laptops").getAll();
          all.onerror = () => reject(all.error);
          all.onsuccess = () =>
            resolve(
              all.result.map((laptop) => ({
                phoneId: laptop.phoneId,
                key: {
                  kind: laptop.phoneKey.kind,
                  isCryptoKey: laptop.phoneKey.privateKey instanceof CryptoKey,
                  extractable: laptop.phoneKey.privateKey.extractable ?? null,
                },
              })),
            );
        };
      }),
  );
}

/** The laptops' keys, as far as the page can tell. */
export async function storedKeys(page) {
  return (await storedLaptops(page)).map((laptop) => laptop.key);
}

/** Problems of a page around the terminal, as a phone shows it: anything
 * wider than the screen, or a button or input under 44 CSS pixels tall. */
export function pageFits(page, where) {
  return page.evaluate((where) => {
    const problems = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width) problems.push(`${where}: the page is ${document.documentElement.scrollWidth} px wide on a ${width} px screen`);
    for (const control of document.querySelectorAll("main button, main input[type=text], #update button")) {
      const box = control.getBoundingClientRect();
      if (box.width === 0) continue; // hidden
      if (box.height < 44) problems.push(`${where}: "${control.textContent || control.getAttribute("aria-label")}" is ${box.height} px tall`);
      if (box.right > width + 0.5) problems.push(`${where}: "${control.textContent}" ends past the screen's edge`);
    }
    return problems;
  }, where);
}

/** Runs the laptop's CLI as its owner (the test passes the command in LOOPSY_CLI). */
export function laptopCli(...args) {
  const [program, ...prefix] = JSON.parse(process.env.LOOPSY_CLI ?? "[]");
  if (!program) throw new Error("LOOPSY_CLI is not set");
  return execFileSync(program, [...prefix, ...args], { encoding: "utf8" });
}

/** This phone's id at its (first) laptop. */
export async function phoneId(page) {
  return (await storedLaptops(page))[0]?.phoneId;
}

/** Checks the pixels, not only the text: in a screenshot, `text` is drawn in
 * the cells where `rows()` says it is, and a row `rows()` says is empty shows
 * no ink. Returns a list of problems (empty when the screen is right). */
export async function glyphsWhereRowsSay(page, text) {
  const geometry = await page.evaluate((t) => {
    const screen = document.querySelector("#terminal .xterm-screen").getBoundingClientRect();
    const rows = window.loopsy.rows();
    const row = rows.findIndex((r) => r.includes(t));
    let empty = -1;
    for (let n = rows.length - 1; n > row; n--) if (rows[n].trim() === "") { empty = n; break; }
    return {
      screen: { x: screen.left, y: screen.top, width: screen.width, height: screen.height },
      size: window.loopsy.size(),
      row,
      col: row >= 0 ? rows[row].indexOf(t) : -1,
      empty,
      ratio: window.devicePixelRatio,
      background: window.loopsy.background(),
      renderer: document.documentElement.dataset.renderer,
    };
  }, text);
  const problems = [];
  if (geometry.row < 0) return [`"${text}" is not on the screen at all`];
  const image = decodePng(await page.screenshot());
  const cell = { width: geometry.screen.width / geometry.size.cols, height: geometry.screen.height / geometry.size.rows };
  const band = (row, col, cols) => ({
    x: (geometry.screen.x + col * cell.width) * geometry.ratio,
    y: (geometry.screen.y + row * cell.height) * geometry.ratio,
    width: cols * cell.width * geometry.ratio,
    height: cell.height * geometry.ratio,
  });
  const background = rgb(geometry.background ?? "#000000");
  const where = band(geometry.row, geometry.col, text.length);
  const ink = inkIn(image, where, background);
  const area = where.width * where.height;
  const what = `${geometry.renderer} at ${geometry.ratio}x, image ${image.width}x${image.height}`;
  if (image.width !== Math.round(await page.evaluate(() => innerWidth)) * geometry.ratio) problems.push(`the screenshot is not at device pixels (${what})`);
  if (ink < area * 0.03) problems.push(`"${text}" is in rows() at row ${geometry.row}, col ${geometry.col}, but its cells hold ${ink} ink pixels of ${Math.round(area)} (${what})`);
  if (geometry.empty >= 0) {
    const blank = band(geometry.empty, 0, geometry.size.cols);
    const stray = inkIn(image, blank, background);
    if (stray > blank.width * blank.height * 0.001) problems.push(`row ${geometry.empty} is empty in rows() but shows ${stray} ink pixels (${what})`);
  }
  return problems;
}
