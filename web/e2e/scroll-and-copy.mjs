// A swipe scrolls the history and keeps gliding after the finger lifts; Copy
// opens the recent text in a native box whose selection goes to the
// clipboard, and copies a terminal selection straight away.
//
//   node e2e/scroll-and-copy.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots, { permissions: ["clipboard-read", "clipboard-write"] });
const viewportY = () => page.evaluate(() => window.loopsy.viewportY());
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("seq 1 400 | sed 's/^/line-/'\n");
  await screenHas(page, "line-400");
  const bottom = await viewportY();

  // A quick downward swipe: the view moves back in history, and goes on
  // moving for a while after the touch ends.
  // Each event carries the time a finger would give it (16 ms apart), so a
  // loaded machine, slow to deliver them, does not turn the flick into a
  // finger that stopped before lifting (which rightly does not glide).
  const cdp = await page.context().newCDPSession(page);
  const start = Date.now() / 1000;
  let tick = 0;
  const touch = (type, y) => cdp.send("Input.dispatchTouchEvent", {
    type, timestamp: start + 0.016 * tick++, touchPoints: type === "touchEnd" ? [] : [{ x: 200, y }] });
  await touch("touchStart", 150);
  for (let y = 150; y <= 550; y += 50) {
    await touch("touchMove", y);
    await page.waitForTimeout(10);
  }
  await touch("touchEnd", 550);
  const released = await viewportY();
  await page.waitForTimeout(800);
  const glided = await viewportY();
  if (!(released < bottom)) failures.push(`the swipe did not scroll: ${bottom} -> ${released}`);
  if (!(glided < released)) failures.push(`no momentum after the touch ended: ${released} -> ${glided}`);
  await shot("3-scrolled");

  // Copy with no selection: the recent text in a box the phone can select in.
  await page.getByRole("button", { name: /^Copy/ }).tap();
  const sheet = await page.locator("#copy-text").inputValue();
  if (!sheet.includes("line-399\nline-400")) failures.push(`the copy sheet lacks the last lines: ${sheet.slice(-80)}`);
  await page.locator("#copy-text").evaluate((box) => {
    const at = box.value.indexOf("line-123");
    box.setSelectionRange(at, at + "line-123".length);
  });
  await page.locator("#copy-selected").tap();
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  if (clipboard !== "line-123") failures.push(`clipboard after the sheet: ${JSON.stringify(clipboard)}`);
  await shot("4-copy-sheet");
  await page.locator("#copy-close").tap();
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
