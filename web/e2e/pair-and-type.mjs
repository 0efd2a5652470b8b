// Pairs with the URL and code the laptop printed, starts a shell, types a
// command and sees its output, drawn with WebGL; when the GPU context is lost
// (a phone going to sleep does that) the DOM renderer takes over.
//
//   node e2e/pair-and-type.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("echo hello-$((6*7))-e2e\n");
  await screenHas(page, "hello-42-e2e");
  await shot("3-terminal");
  const renderer = await page.evaluate(() => document.documentElement.dataset.renderer);
  if (renderer !== "webgl") failures.push(`renderer: ${renderer}`);
  await page.evaluate(() => {
    const canvas = [...document.querySelectorAll("#terminal canvas")].find((c) => c.getContext("webgl2"));
    canvas.getContext("webgl2").getExtension("WEBGL_lose_context").loseContext();
  });
  await page.keyboard.type("echo after-$((40+2))-loss\n");
  // The DOM renderer's rows hold the text itself.
  await page.waitForFunction(() => document.querySelector(".xterm-rows")?.textContent?.includes("after-42-loss"), null, { timeout: 15000 });
  await shot("4-after-context-loss");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
