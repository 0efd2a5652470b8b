// "Forget" on the phone revokes it at the relay, which tells the laptop: the
// phone is gone from both, and from the phone's own list.
//
//   node e2e/forget.mjs <pairing url> <code> <screenshot dir>

import { finish, pair, phoneBrowser } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pair(page, shot, url, code);
  await page.getByRole("button", { name: /^Forget / }).click();
  await page.getByText("No laptop paired yet").waitFor();
  await shot("3-forgotten");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
