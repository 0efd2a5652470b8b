// The picker offers the laptop's custom commands; one tap starts one.
//
//   node e2e/custom-command.mjs <pairing url> <code> <screenshot dir>

import { finish, pair, phoneBrowser, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pair(page, shot, url, code);
  await page.locator("button.laptop").first().click();
  await page.getByRole("button", { name: "Greet from the picker" }).click();
  await screenHas(page, "hello-from-custom");
  await shot("3-custom-command");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
