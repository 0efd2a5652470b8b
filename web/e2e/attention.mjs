// The app calls for attention when the session rings the bell and when an
// agent waits for an answer (a permission prompt on screen).
//
//   node e2e/attention.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
const badge = page.locator("#attention");
// Notifications are asked for only on a tap (a stand-in counts the asks).
await page.addInitScript(() => {
  window.Notification = class {
    static permission = "default";
    static requestPermission() {
      window.asked = (window.asked ?? 0) + 1;
      return Promise.resolve("denied");
    }
  };
});
const asked = () => page.evaluate(() => window.asked ?? 0);
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("sleep 0.5; printf 'ding\\a\\n'\n");
  await page.getByText("The session rang the bell.").waitFor();
  await badge.click();
  await page.keyboard.type("sleep 0.5; printf 'Do you want to %s? (y/n) ' proceed; read answer\n");
  await page.getByText("The agent is waiting for you").waitFor();
  await shot("3-waiting");
  if ((await asked()) !== 0) failures.push("notifications were asked for without a tap");
  await page.locator("#back").click();
  await page.locator("#new-shell").waitFor();
  await page.getByRole("button", { name: "Laptops" }).click();
  await page.locator("#notify").click();
  if ((await asked()) !== 1) failures.push(`a tap on "Notify me" asked ${await asked()} times`);
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
