// The page and the terminal follow the phone's light or dark setting, live,
// and the user's own pick on the home screen wins over it.
//
//   node e2e/theme.mjs <pairing url> <code> <screenshot dir>

import { finish, pair, phoneBrowser, screenHas, terminalShown } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots, { colorScheme: "light" });
// What the terminal draws with, and what the page around it shows.
const backgrounds = () =>
  page.evaluate(() => ({
    drawn: window.loopsy.background(),
    viewport: getComputedStyle(document.querySelector(".xterm-viewport")).backgroundColor,
    page: document.documentElement.dataset.theme,
  }));
const expect = async (what, wanted) => {
  const [drawn, viewport, theme] = wanted === "dark" ? ["#000000", "rgb(0, 0, 0)", "dark"] : ["#fbfbfb", "rgb(251, 251, 251)", "light"];
  try {
    await page.waitForFunction(
      ([drawn, viewport, theme]) =>
        window.loopsy.background() === drawn &&
        getComputedStyle(document.querySelector(".xterm-viewport")).backgroundColor === viewport &&
        document.documentElement.dataset.theme === theme,
      [drawn, viewport, theme],
      { timeout: 5000 },
    );
  } catch {
    failures.push(`${what}: ${JSON.stringify(await backgrounds())}, wanted ${wanted}`);
  }
};
try {
  await pair(page, shot, url, code);
  // Dark by choice, although the phone is set to light.
  await page.locator("#theme").click();
  await page.locator("#theme").click();
  await page.getByText("Theme: dark").waitFor();
  await page.locator("button.laptop").first().click();
  await page.locator("#new-shell").click();
  await terminalShown(page);
  await expect("picked dark", "dark");
  await page.keyboard.type("printf '\\033[33myellow\\033[0m\\n'\n");
  await screenHas(page, "\nyellow");
  await shot("3-dark");
  // Back to following the phone (light), kept across a reload.
  await page.evaluate(() => localStorage.removeItem("loopsy.theme"));
  // The reload comes back to the open session.
  await page.reload();
  await terminalShown(page);
  await expect("following a light phone", "light");
  await page.keyboard.type("printf '\\033[33myellow\\033[0m\\n'\n");
  await screenHas(page, "\nyellow");
  await shot("4-light");
  // The phone switches to dark: the open terminal follows at once.
  await page.emulateMedia({ colorScheme: "dark" });
  await expect("the phone turned dark", "dark");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
