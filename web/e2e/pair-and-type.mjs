// Pairs with the URL and code the laptop printed, starts a shell, types a
// command and sees its output: as text in rows(), and as ink in the cells
// rows() names, at the phone's pixel ratio (3 by default, `RATIO` to change)
// and size (390x844, `VIEWPORT` to change),
// whichever renderer the app's self-check chose. When WebGL draws and its
// context is lost (a phone going to sleep does that), the DOM renderer takes
// over at once.
//
//   node e2e/pair-and-type.mjs <pairing url> <code> <screenshot dir>

import { finish, glyphsWhereRowsSay, pairAndOpenShell, phoneBrowser, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const ratio = Number(process.env.RATIO ?? 3);
const [width, height] = (process.env.VIEWPORT ?? "390x844").split("x").map(Number);
const { browser, page, failures, shot } = await phoneBrowser(shots, { deviceScaleFactor: ratio, viewport: { width, height } });
try {
  await pairAndOpenShell(page, shot, url, code, process.env.PHONE_NAME);
  await page.keyboard.type("echo hello-$((6*7))-e2e\n");
  await screenHas(page, "hello-42-e2e");
  // The renderer's self-check runs on the frames after opening.
  await page.waitForTimeout(300);
  await shot("3-terminal");
  failures.push(...(await glyphsWhereRowsSay(page, "hello-42-e2e")));
  const renderer = await page.evaluate(() => document.documentElement.dataset.renderer);
  if (process.env.EXPECT_RENDERER && renderer !== process.env.EXPECT_RENDERER) failures.push(`renderer: ${renderer}, expected ${process.env.EXPECT_RENDERER}`);
  if (renderer === "webgl") {
    await page.evaluate(() => {
      const canvas = [...document.querySelectorAll("#terminal canvas")].find((c) => c.clientWidth > 0 && c.getContext("webgl2"));
      canvas.getContext("webgl2").getExtension("WEBGL_lose_context").loseContext();
    });
    // Dropped at once, not after the addon's three-second wait for a restore.
    await page.waitForFunction(() => document.documentElement.dataset.renderer === "dom", null, { timeout: 1000 });
  }
  await page.keyboard.type("echo after-$((40+2))-loss\n");
  // The DOM renderer's rows hold the text itself.
  await page.waitForFunction(() => document.querySelector(".xterm-rows")?.textContent?.includes("after-42-loss"), null, { timeout: 15000 });
  await shot("4-dom-renderer");
  failures.push(...(await glyphsWhereRowsSay(page, "after-42-loss")));
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
