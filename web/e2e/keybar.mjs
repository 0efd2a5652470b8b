// The key bar: a sticky Ctrl from the bar plus a typed "c" interrupts a
// running program; larger text means fewer columns for the session. Also: the
// app is installable (its manifest loads).
//
//   node e2e/keybar.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, rows, screenHas, screenMatches } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
try {
  await pairAndOpenShell(page, shot, url, code);
  await page.keyboard.type("sleep 600; echo not-interrupted\n");
  await page.getByRole("button", { name: "Control (applies to the next key)" }).tap();
  await page.keyboard.type("c");
  await page.keyboard.type("echo after-ctrl-c-$((1+1))\n");
  await screenHas(page, "after-ctrl-c-2");
  const columns = async (marker) => {
    await page.keyboard.type(`echo ${marker}-$(stty size | cut -d' ' -f2)-cols\n`);
    await screenMatches(page, `${marker}-\\d+-cols`);
    const text = (await rows(page)).join("\n");
    return Number(text.match(new RegExp(`${marker}-(\\d+)-cols`))?.[1]);
  };
  const before = await columns("before");
  for (let i = 0; i < 4; i++) await page.getByRole("button", { name: "Larger text" }).tap();
  await page.waitForTimeout(400);
  const after = await columns("after");
  if (!(after < before)) failures.push(`larger text did not reduce the columns: ${before} -> ${after}`);
  await shot("3-keybar");
  const manifest = await page.evaluate(async () => (await fetch("manifest.webmanifest")).json());
  if (manifest.display !== "standalone") failures.push(`manifest: ${JSON.stringify(manifest)}`);
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
