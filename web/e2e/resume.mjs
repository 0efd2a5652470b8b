// A numbered run of lines keeps going while the relay is down: the app
// reconnects by itself and the screen ends up with every line exactly once.
// The Rust test restarts the relay when this prints "outage" and writes a
// line back once it is up again.
//
//   node e2e/resume.mjs <pairing url> <code> <screenshot dir>

import { createInterface } from "node:readline";

import { finish, pairAndOpenShell, phoneBrowser, rows, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
const stdin = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => stdin.once("line", resolve));
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("clear; for i in $(seq 1 30); do echo n-$i; sleep 0.1; done; echo END-$((2*21))\n");
  await screenHas(page, "n-3");
  console.log("outage");
  await nextLine();
  await page.locator('#link-state[data-state="away"]').waitFor({ timeout: 15000 }).catch(() => {});
  await screenHas(page, "END-42", 30000);
  await page.locator('#link-state[data-state="ok"]').waitFor();
  await shot("3-resumed");
  const numbered = (await rows(page)).map((r) => r.trim()).filter((r) => /^n-\d+$/.test(r));
  const expected = Array.from({ length: 30 }, (_, i) => `n-${i + 1}`);
  if (JSON.stringify(numbered) !== JSON.stringify(expected)) failures.push(`lines after the outage: ${numbered.join(",")}`);
} catch (error) {
  failures.push(String(error));
  await shot("failed").catch(() => {});
  failures.push(`screen: ${(await rows(page).catch(() => [])).filter(Boolean).join(" | ")}`);
  failures.push(`link: ${await page.locator("#link-state").textContent().catch(() => "?")}`);
}
stdin.close();
await finish(browser, failures);
