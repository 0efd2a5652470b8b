// On a secure page the phone's key is a non-extractable WebCrypto key: kept
// in IndexedDB as a CryptoKey, usable for the handshake, never readable.
//
//   node e2e/webcrypto-key.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, screenHas, storedKeys } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pairAndOpenShell(page, shot, url, code);
  const keys = await storedKeys(page);
  const expected = JSON.stringify([{ kind: "webcrypto", isCryptoKey: true, extractable: false }]);
  if (JSON.stringify(keys) !== expected) failures.push(`stored key: ${JSON.stringify(keys)}`);
  // The key works for every later connection, not just the pairing.
  await page.keyboard.type("echo key-$((2*21))-works\n");
  await screenHas(page, "key-42-works");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
