// vim keeps running on the laptop while the page reloads: opening the session
// again redraws vim's screen exactly (from the daemon's snapshot).
//
//   node e2e/vim-reload.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, screenHas } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pairAndOpenShell(page, shot, url, code);
  // -n: no swap file, so a run killed mid-edit leaves nothing that stops the next.
  await page.keyboard.type("vim -u NONE -N -n /tmp/loopsy-e2e-vim.txt\n");
  await screenHas(page, "loopsy-e2e-vim.txt");
  await page.keyboard.type("iwritten in vim before the reload");
  await page.keyboard.press("Escape");
  await screenHas(page, "written in vim before the reload");
  await shot("3-vim");
  // A reload comes straight back to the session that was open.
  await page.reload();
  await screenHas(page, "written in vim before the reload");
  await screenHas(page, "~");
  await shot("4-vim-after-reload");
  // Still vim, still in it: quit without saving.
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(":q!\n");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
