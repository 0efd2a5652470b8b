// The compose box: typed text is sent as one paste (bracketed when the program
// asked for it); where the browser has no speech recognition the microphone is
// not offered and the box says why; where it has, dictation fills the box,
// the user edits it and sends it.
//
//   node e2e/compose.mjs <pairing url> <code> <screenshot dir>

import { finish, pairAndOpenShell, phoneBrowser, screenHas, terminalShown } from "./browser.mjs";

const [url, code, shots] = process.argv.slice(2);
const { browser, page, failures, shot } = await phoneBrowser(shots);
const compose = () => page.getByRole("button", { name: /^Compose/ }).tap();
try {
  // A browser without speech recognition.
  await page.addInitScript(() => {
    delete window.SpeechRecognition;
    delete window.webkitSpeechRecognition;
  });
  await pairAndOpenShell(page, shot, url, code);
  await compose();
  if (await page.locator("#dictate").count()) failures.push("a microphone was offered without speech recognition");
  if (!(await page.locator("#dictation-note").isVisible())) failures.push("no word on why there is no dictation");
  await page.locator("#compose-text").fill("echo typed-$((1+1))");
  await shot("3-compose");
  await page.locator("#compose-send").tap();
  await screenHas(page, "typed-2");
  if (await page.locator("#compose").isVisible()) failures.push("the compose box stayed open after Send");

  // A program that turned bracketed paste on gets the text between the marks.
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type("printf '\\033[?2004h'; cat -v; printf '\\033[?2004l'\n");
  await page.waitForTimeout(300);
  await compose();
  await page.locator("#compose-text").fill("pasted");
  await page.locator("#compose-send").tap();
  await screenHas(page, "^[[200~pasted^[[201~");
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.press("Control+d");
  // cat has ended (the shell runs this) before the page goes away: a reload
  // from the service worker is quick enough to drop a key still in flight.
  await page.keyboard.type("echo cat-ended-$((2+3))\n");
  await screenHas(page, "cat-ended-5");

  // Speech recognition, as the browser's API delivers it (the real service
  // needs the network, so results are played back from here).
  await page.addInitScript(() => {
    window.SpeechRecognition = class {
      start() {
        const result = (text, isFinal) => Object.assign([{ transcript: text }], { isFinal });
        setTimeout(() => this.onresult?.({ resultIndex: 0, results: [result("echo voi", false)] }), 50);
        setTimeout(() => this.onresult?.({ resultIndex: 0, results: [result("echo voice-$((40+2))", true)] }), 100);
        setTimeout(() => this.onend?.(), 150);
      }
      stop() {
        this.onend?.();
      }
    };
  });
  // The reload comes back to the open session.
  await page.reload();
  await terminalShown(page);
  await compose();
  await page.locator("#dictate").tap();
  await page.waitForFunction(() => document.querySelector("#compose-text").value === "echo voice-$((40+2))");
  await page.waitForFunction(() => document.querySelector("#dictate").getAttribute("aria-pressed") === "false");
  // Edited before it goes.
  await page.locator("#compose-text").press("End");
  await page.locator("#compose-text").type(" edited-by-hand");
  await shot("4-dictated");
  await page.locator("#compose-send").tap();
  await screenHas(page, "voice-42 edited-by-hand");
  await shot("5-sent");
} catch (error) {
  failures.push(String(error));
}
await finish(browser, failures);
