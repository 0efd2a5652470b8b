// "Forget" on the phone revokes it at the relay, which tells the laptop: the
// phone is gone from both, and from the phone's own list.
//
//   node e2e/forget.mjs <pairing url> <code> <screenshot dir>

import { finish, phoneBrowser } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await page.goto(url);
  await page.locator("#code").fill(code);
  await page.locator("#pair").click();
  await page.getByText("Paired with").waitFor();
  await page.getByRole("button", { name: "Done" }).click();
  await page.getByRole("button", { name: /^Forget / }).click();
  await page.getByText("No laptop paired yet").waitFor();
  await shot("1-forgotten");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
