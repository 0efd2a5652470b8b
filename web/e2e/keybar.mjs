// The key bar: a sticky Ctrl from the bar plus a typed "c" interrupts a
// running program; the arrow key recalls the last command line.
//
//   node e2e/keybar.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
const screenHas = (text) =>
  page.waitForFunction((t) => document.querySelector(".xterm-rows")?.textContent?.includes(t), text, { timeout: 15000 });
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("sleep 600; echo not-interrupted\n");
  await page.getByRole("button", { name: "Control (applies to the next key)" }).tap();
  await page.keyboard.type("c");
  await page.keyboard.type("echo after-ctrl-c-$((1+1))\n");
  await screenHas("after-ctrl-c-2");
  await shot("3-keybar");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
