// A plain-HTTP LAN page has no crypto.subtle: the app pairs and drives a shell
// with the @noble key instead, by the same protocol.
//
//   node e2e/plain-http-fallback.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, screenHas, storedKeys } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  // What an insecure context looks like to the page.
  await page.addInitScript(() => Object.defineProperty(Crypto.prototype, "subtle", { get: () => undefined }));
  await pairAndOpenShell(page, shot, url, code);
  if (await page.evaluate(() => globalThis.crypto.subtle !== undefined)) failures.push("crypto.subtle was still there");
  const keys = await storedKeys(page);
  const expected = JSON.stringify([{ kind: "raw", isCryptoKey: false, extractable: null }]);
  if (JSON.stringify(keys) !== expected) failures.push(`stored key: ${JSON.stringify(keys)}`);
  await page.keyboard.type("echo no-subtle-$((6*7))\n");
  await screenHas(page, "no-subtle-42");
  await shot("3-terminal");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
