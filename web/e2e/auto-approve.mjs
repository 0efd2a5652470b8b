// Auto-approve appears in the picker only once the laptop's owner granted it
// to this phone, with a plain warning; checked, it starts the agent with the
// agent's own flag. A name given in the picker is the session's name.
//
//   node e2e/auto-approve.mjs <pairing url> <code> <screenshot dir>

import { finish, laptopCli, pair, phoneBrowser, phoneId, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
const openLaptop = async () => {
  await page.locator("button.laptop").first().click();
  await page.getByRole("heading", { name: "New session" }).waitFor();
};
try {
  await pair(page, shot, url, code);
  await openLaptop();
  if (await page.locator("#auto-approve").count()) failures.push("auto-approve offered before any grant");
  await page.getByRole("button", { name: "Laptops" }).click();

  const granted = laptopCli("auto-approve", "allow", `phone:${await phoneId(page)}`);
  if (!granted.includes("may now")) failures.push(`grant: ${granted}`);
  await openLaptop();
  await page.locator("#auto-approve").check();
  const warning = await page.locator(".auto-approve .warning").textContent();
  if (!warning?.includes("without asking")) failures.push(`warning: ${warning}`);
  await page.locator("#session-name").fill("careful-codex");
  await shot("3-picker-granted");
  await page.getByRole("button", { name: "New codex" }).click();
  await page.locator("#terminal, .error").first().waitFor();
  const refused = await page.locator(".error").count() ? await page.locator(".error").textContent() : null;
  if (refused) throw new Error(refused);
  // (Printed by the fake codex on a line of its own.)
  await screenHas(page, "--dangerously-bypass-approvals-and-sandbox");
  await shot("4-codex");
  await page.getByRole("button", { name: "Back to the sessions" }).click();
  await page.getByRole("button", { name: "careful-codex", exact: true }).waitFor();

  // Withdrawn on the laptop: gone from the picker.
  laptopCli("auto-approve", "deny", `phone:${await phoneId(page)}`);
  await page.getByRole("button", { name: "Laptops" }).click();
  await openLaptop();
  if (await page.locator("#auto-approve").count()) failures.push("auto-approve still offered after the grant was withdrawn");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
