// States a person can read: typing while the link is away shows the keys held
// and lets them go; a phone the laptop removed is told so in the terminal and
// in the laptops list, and stops reconnecting; a pairing link opened a second
// time says it was used.
//
//   node e2e/states.mjs <pairing url> <code> <screenshot dir>

import { finish, laptopCli, pairAndOpenShell, phoneBrowser, phoneId, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("echo states-ready\n");
  await screenHas(page, "states-ready");
  const id = await phoneId(page);
  if (!id) throw new Error("the phone keeps no id");
  laptopCli("phone", "revoke", id);
  await page.getByText("This phone was removed on").waitFor({ timeout: 10000 });
  const chip = await page.locator("#link-state").textContent();
  if (chip !== "removed") failures.push(`the link state says "${chip}"`);
  await shot("3-revoked-terminal");
  await page.getByRole("button", { name: "Back to your laptops" }).click();
  await page.getByText("This phone was removed on").waitFor({ timeout: 10000 });
  await shot("4-revoked-list");
  // The same pairing link again: it was used.
  await page.goto(url);
  await page.getByText("This pairing link was used already").waitFor({ timeout: 10000 });
  await shot("5-used-link");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
