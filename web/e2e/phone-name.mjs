// Pairs without typing a name: the phone offers one from its browser, and
// shows its own key beside the laptop's, as `loopsy phone list` shows it.
//
//   node e2e/phone-name.mjs <pairing url> <code> <screenshot dir>

import { finish, pair, phoneBrowser } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pair(page, shot, url, code);
  await page.getByText("this phone's key").waitFor();
  const keys = await page.locator(".keys").first().textContent();
  if (!/this phone's key [0-9a-f]{4}( [0-9a-f]{4}){7}/.test(keys ?? "")) failures.push(`the phone's key is not shown: ${keys}`);
  await shot("3-laptops");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
