// Drives the phone web app in Debian's Chromium (headless, phone viewport,
// touch): opens the pairing URL the laptop printed, types the code, opens the
// laptop, starts a shell and types a command, and checks the terminal shows
// its output. Screenshots go to the directory given.
//
//   node e2e/pair-and-type.mjs <pairing url> <code> <screenshot dir>

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, code, shots] = process.argv.slice(2);
if (!url || !code || !shots) {
  console.error("usage: pair-and-type.mjs <pairing url> <code> <screenshot dir>");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

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
const failures = [];
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") failures.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => failures.push(`page: ${error.message}`));
  await page.goto(url);
  // The secret-bearing fragment leaves the address bar at once.
  await page.waitForFunction(() => location.hash === "");
  await page.locator("#code").fill(code);
  await page.screenshot({ path: join(shots, "1-code.png") });
  await page.locator("#pair").click();
  await page.getByText("Paired with").waitFor();
  await page.screenshot({ path: join(shots, "2-paired.png") });
  await page.getByRole("button", { name: "Done" }).click();
  await page.locator("button.laptop").first().click();
  await page.locator("#new-shell").click();
  await page.locator(".xterm-rows").waitFor();
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type("echo hello-$((6*7))-e2e\n");
  await page.waitForFunction(() => document.querySelector(".xterm-rows")?.textContent?.includes("hello-42-e2e"), null, { timeout: 15000 });
  await page.screenshot({ path: join(shots, "3-terminal.png") });
} catch (error) {
  failures.push(String(error));
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("ok");
