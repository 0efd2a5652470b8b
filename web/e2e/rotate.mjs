// Turns the phone sideways: the terminal is resized once the rotation settles
// and the program in the session sees the new size (`stty size`).
//
//   node e2e/rotate.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, rows, screenMatches } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
const sizeShown = async (marker) => {
  await page.keyboard.type(`echo ${marker}-$(stty size | tr ' ' x)-end\n`);
  await screenMatches(page, `${marker}-\\d+x\\d+-end`);
  const line = (await rows(page)).find((r) => new RegExp(`^${marker}-\\d+x\\d+-end`).test(r.trim())) ?? "";
  const [, rowsCount, cols] = line.trim().match(/-(\d+)x(\d+)-/) ?? [];
  return { rows: Number(rowsCount), cols: Number(cols) };
};
try {
  await pairAndOpenShell(page, shot, url, code);
  const portrait = await sizeShown("portrait");
  await page.setViewportSize({ width: 844, height: 390 });
  // The debounce (150 ms) lets the rotation settle before one resize goes out;
  // on a loaded machine that can take longer, so ask until the size moved.
  await page.waitForFunction((cols) => window.loopsy.size().cols > cols, portrait.cols, { timeout: 10000 });
  let landscape = portrait;
  for (let attempt = 0; attempt < 20 && landscape.cols <= portrait.cols; attempt++) {
    await page.keyboard.type("clear\n");
    landscape = await sizeShown(`landscape${attempt}`);
    if (landscape.cols <= portrait.cols) await page.waitForTimeout(250);
  }
  await shot("3-landscape");
  if (!(landscape.cols > portrait.cols && landscape.rows < portrait.rows)) {
    failures.push(`stty size did not follow the rotation: ${JSON.stringify({ portrait, landscape })}`);
  }
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
