// Every key within reach and nothing over the terminal: at 390x844 and
// 360x740, upright and sideways, each key and tool is on screen and at least
// 44 px in both directions, the terminal's box meets neither the tool row nor
// the keys, the link's state sits outside the terminal, and the way back is
// not beside Esc.
//
//   node e2e/layout.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
const overlap = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("echo layout-ready\n");
  await screenHas(page, "layout-ready");
  for (const [width, height] of [
    [390, 844],
    [844, 390],
    [360, 740],
    [740, 360],
  ]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(400);
    const where = `${width}x${height}`;
    const box = (selector) => page.locator(selector).first().boundingBox();
    const terminal = await box("#terminal");
    const toolbar = await box(".toolbar");
    const keys = await box(".keybar");
    const chip = await box("#link-state");
    if (!terminal || !toolbar || !keys || !chip) {
      failures.push(`${where}: a part of the screen is missing`);
      continue;
    }
    for (const [name, other] of [
      ["the tool row", toolbar],
      ["the keys", keys],
      ["the link state", chip],
    ]) {
      if (overlap(terminal, other)) failures.push(`${where}: ${name} covers terminal cells`);
    }
    const buttons = await page.locator(".toolbar .key, .keybar .key").all();
    for (const button of buttons) {
      const name = await button.getAttribute("aria-label");
      const b = await button.boundingBox();
      if (!b) {
        failures.push(`${where}: "${name}" is not shown`);
        continue;
      }
      if (b.x < 0 || b.y < 0 || b.x + b.width > width + 0.5 || b.y + b.height > height + 0.5) failures.push(`${where}: "${name}" is off screen at ${JSON.stringify(b)}`);
      if (b.width < 44 || b.height < 44) failures.push(`${where}: "${name}" is ${b.width.toFixed(0)}x${b.height.toFixed(0)}, under 44 px`);
    }
    const back = await box("#back");
    const escape = await page.getByRole("button", { name: "Escape" }).boundingBox();
    if (back && escape && Math.abs(back.y - escape.y) < 10 && Math.abs(back.x + back.width - escape.x) < 20) failures.push(`${where}: the way back sits beside Esc`);
    await shot(`layout-${where}`);
  }
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
