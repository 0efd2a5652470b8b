// The picker offers the laptop's custom commands; one tap starts one. They are
// edited, added and removed from the phone, and a label the laptop refuses
// gets its reason on screen.
//
//   node e2e/custom-command.mjs <pairing url> <code> <screenshot dir>

import { finish, pair, phoneBrowser, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
page.on("dialog", (dialog) => void dialog.accept());
const backToSessions = () => page.getByRole("button", { name: "Back to the sessions" }).click();
try {
  await pair(page, shot, url, code);
  await page.locator("button.laptop").first().click();
  await page.getByRole("button", { name: "Greet from the picker", exact: true }).click();
  await screenHas(page, "hello-from-custom");
  await shot("3-custom-command");
  await backToSessions();

  // Edit: a new label and arguments with quotes.
  await page.getByRole("button", { name: "Edit Greet from the picker" }).click();
  await page.locator("#command-label").fill("Greet renamed");
  await page.locator("#command-args").fill("-c 'echo renamed-$((1+1)); sleep 30'");
  await page.locator("#command-save").click();
  await page.getByRole("button", { name: "Greet renamed", exact: true }).click();
  await screenHas(page, "renamed-2");
  await backToSessions();

  // Add: refused with the laptop's reason, then accepted.
  await page.locator("#add-command").click();
  await page.locator("#command-label").fill("x".repeat(10_000));
  await page.locator("#command-program").fill("sh");
  await page.locator("#command-save").click();
  await page.getByText("Cannot save the command:").waitFor();
  await shot("4-refused");
  // A label that is HTML stays text (the original app ran such strings).
  const html = '<img src=x onerror="window.pwned=1">';
  await page.locator("#command-label").fill(html);
  await page.locator("#command-args").fill("-c 'echo second'");
  await page.locator("#command-save").click();
  await page.getByRole("button", { name: `Remove ${html}` }).waitFor();
  await page.getByRole("button", { name: html, exact: true }).waitFor();
  if (await page.evaluate(() => window.pwned !== undefined || document.querySelector("img") !== null)) failures.push("a label was parsed as HTML");
  await shot("5-added");

  // Remove (after the confirmation).
  await page.getByRole("button", { name: `Remove ${html}` }).click();
  await page.getByRole("button", { name: `Remove ${html}` }).waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Greet renamed", exact: true }).waitFor();
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
