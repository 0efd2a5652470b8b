// Keys typed while the relay is away are counted on the status line and can
// be let go: the dropped ones never reach the session, those typed after go
// out once the link is back. The Rust test stops the relay when this prints
// "kill" and starts it again when this prints "start", answering each with a line.
//
//   node e2e/held-keys.mjs <pairing url> <code> <screenshot dir>

import { createInterface } from "node:readline";

import { finish, pairAndOpenShell, phoneBrowser, rows, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
const stdin = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => stdin.once("line", resolve));
const chip = page.locator("#link-state");
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("echo before-the-outage\n");
  await screenHas(page, "before-the-outage");
  console.log("kill");
  await nextLine();
  await page.locator('#link-state[data-state="away"]').waitFor({ timeout: 20000 });
  await page.keyboard.type("echo dropped-keys\n");
  await page.locator("#discard-held").waitFor();
  const held = await chip.textContent();
  if (!/keys held/.test(held ?? "")) failures.push(`the status line says "${held}"`);
  await shot("3-held");
  await page.locator("#discard-held").click();
  const after = await chip.textContent();
  if (!/discarded/.test(after ?? "")) failures.push(`after discarding, the status line says "${after}"`);
  if (await page.locator("#discard-held").isVisible()) failures.push("the discard button stayed");
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type("echo kept-keys-$((2+3))\n");
  console.log("start");
  await nextLine();
  await page.locator('#link-state[data-state="ok"]').waitFor({ timeout: 30000 });
  await screenHas(page, "kept-keys-5", 20000);
  if ((await rows(page)).some((r) => r.includes("dropped-keys"))) failures.push("discarded keys reached the session");
  await shot("4-back");
} catch (error) {
  failures.push(String(error));
}
stdin.close();
await finish(browser, failures);
