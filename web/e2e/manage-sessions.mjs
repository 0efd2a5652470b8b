// Sessions managed from the phone: listed by last activity and labelled by
// program and directory when unnamed; renamed, stopped and removed; and a
// reload comes back to the session that was open.
//
//   node e2e/manage-sessions.mjs <pairing url> <code> <screenshot dir>

import { finish, pair, phoneBrowser, screenHas, terminalShown } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
page.on("dialog", (dialog) => void dialog.accept());
const sessionsShown = () => page.locator("#new-shell").waitFor();
const labels = () => page.locator("ul.sessions button.session").allTextContents();
try {
  await pair(page, shot, url, code);
  await page.locator("button.laptop").first().click();
  await sessionsShown();
  // Two shells; the second one used last.
  for (const marker of ["first-shell", "second-shell"]) {
    await page.locator("#new-shell").click();
    await terminalShown(page);
    await page.keyboard.type(`echo ${marker}\n`);
    await screenHas(page, marker);
    await page.locator("#back").click();
    await sessionsShown();
  }
  const listed = await labels();
  if (listed.length !== 2 || !listed.every((l) => /^shell in \S+/.test(l))) failures.push(`unnamed sessions are labelled ${JSON.stringify(listed)}`);
  await shot("3-two-sessions");

  // Rename the most recent one; it stays first.
  await page.getByRole("button", { name: /^Rename / }).first().click();
  await page.getByRole("textbox", { name: /^New name for / }).fill("build box");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("button", { name: "build box", exact: true }).waitFor();
  if ((await labels())[0] !== "build box") failures.push(`after renaming: ${JSON.stringify(await labels())}`);

  // Open it, reload: back in the same session.
  await page.getByRole("button", { name: "build box", exact: true }).click();
  await terminalShown(page);
  await screenHas(page, "second-shell");
  await page.reload();
  await terminalShown(page);
  await screenHas(page, "second-shell");
  await shot("4-after-reload");
  await page.locator("#back").click();
  await sessionsShown();

  // Stop it, then remove it.
  await page.getByRole("button", { name: "Stop build box" }).click();
  await page.getByRole("button", { name: "Remove build box" }).waitFor({ timeout: 15000 });
  await page.getByRole("button", { name: "Remove build box" }).click();
  await page.getByRole("button", { name: "build box", exact: true }).waitFor({ state: "detached" });
  if ((await labels()).length !== 1) failures.push(`after removing: ${JSON.stringify(await labels())}`);
  await shot("5-managed");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
