// Pairs with the URL and code the laptop printed, starts a shell, types a
// command and sees its output.
//
//   node e2e/pair-and-type.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("echo hello-$((6*7))-e2e\n");
  await screenHas(page, "hello-42-e2e");
  await shot("3-terminal");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
