// The laptops list says which laptop answers: online while its daemon runs,
// offline once it stopped. At a small phone's size (360×740).
//
//   node e2e/online.mjs <pairing url> <code> <screenshot dir>

import { finish, laptopCli, pair, phoneBrowser } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots, { viewport: { width: 360, height: 740 } });
try {
  await pair(page, shot, url, code);
  await page.locator(".online[data-state=online]").waitFor();
  await shot("3-online");
  laptopCli("stop");
  await page.reload();
  await page.locator(".online[data-state=offline]").waitFor();
  await shot("4-offline");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
