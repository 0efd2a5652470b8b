// Types a wrong code until the laptop closes the pairing: the app says how
// many tries are left, then that the pairing is closed.
//
//   node e2e/wrong-codes.mjs <pairing url> <a wrong code> <screenshot dir>

import { finish, phoneBrowser } from "./browser.mjs";

const [url, wrong, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await page.goto(url);
  for (let left = 4; left >= 1; left--) {
    await page.locator("#code").fill(wrong);
    await page.locator("#pair").click();
    await page.getByText(`Wrong code; ${left === 1 ? "1 try" : `${left} tries`} left.`).waitFor();
  }
  await shot("1-last-try");
  await page.locator("#code").fill(wrong);
  await page.locator("#pair").click();
  await page.getByRole("heading", { name: "Pairing closed" }).waitFor();
  await shot("2-closed");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
