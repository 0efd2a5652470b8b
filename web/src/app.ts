// The phone web app: pair with a laptop from the QR link, list its sessions,
// start one, and drive it in a full-screen terminal. Nothing a laptop sends is
// ever put into the page as HTML (textContent only).

import "@xterm/xterm/css/xterm.css";
import "./style.css";
import "./pages.css";

import { type Laptop, Pairing, type PairingLink, RefusedError, parsePairingLink } from "./channel.js";
import { dropAhead, openAhead } from "./connections.js";
import { fingerprint } from "./crypto/noise.js";
import { newPhoneKey, staticKey } from "./crypto/phone-key.js";
import { forgetLaptop, laptops, saveLaptop, wouldReplace } from "./store.js";
import { el, show, status } from "./dom.js";
import { forgetSessions, openBeforeReload, reopen, resumeOpen } from "./sessions.js";
import { type ThemeChoice, setThemeChoice, themeChoice } from "./theme.js";
import { keepUpToDate } from "./updates.js";

/** A link naming a relay other than this page's: nothing is sent to it until
 * the user has seen where it is and tapped on (any page can open such a link). */
function pairFrom(link: PairingLink): Promise<void> {
  if (link.relay === location.origin) return pairThrough(link);
  return new Promise((resolve) => {
    const go = el("button", { type: "button", id: "pair-continue" }, "Continue");
    go.onclick = () => void pairThrough(link).then(resolve);
    const cancel = el("button", { type: "button", className: "secondary" }, "Cancel");
    cancel.onclick = () => void home().then(resolve);
    show(
      el("h1", {}, "Pair with a laptop"),
      status(`This link pairs through the relay at ${relayHost(link.relay)}. Continue only if you started the pairing on your laptop.`),
      go,
      cancel,
    );
  });
}

async function pairThrough(link: PairingLink): Promise<void> {
  show(el("h1", {}, "Pairing…"), status("Checking the laptop's key"));
  let pairing: Pairing;
  try {
    pairing = await Pairing.start(link, await newPhoneKey(), defaultPhoneName());
  } catch (error) {
    show(el("h1", {}, "Cannot pair"), status(String((error as Error).message), "alert"), homeButton());
    return;
  }
  const input = el("input", { type: "text", inputMode: "numeric", autocomplete: "one-time-code", maxLength: 4, id: "code", className: "code" });
  input.setAttribute("aria-label", "4-digit code shown on the laptop");
  input.setAttribute("autocapitalize", "off");
  let message = status("Type the 4-digit code your laptop shows.");
  // A link may name any relay: the user sees which one before typing a code.
  const through = status(`Through the relay at ${relayHost(link.relay)}`);
  through.id = "pair-relay";
  const name = el("input", { type: "text", id: "phone-name", maxLength: 64, value: defaultPhoneName() });
  name.setAttribute("aria-label", "This phone's name, as the laptop will list it");
  const submit = el("button", { type: "submit", id: "pair" }, "Pair");
  const form = el("form", { className: "pair-form" }, input, el("label", { className: "field" }, "Name on the laptop", name), submit);
  form.onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const answer = await pairing.tryCode(input.value.trim(), name.value.trim() || defaultPhoneName());
    submit.disabled = false;
    if (answer.kind === "paired") {
      const taken = wouldReplace(await laptops(), answer.laptop);
      if (taken) {
        show(
          el("h1", {}, "Not paired"),
          status(
            `This phone already has ${taken.name} with this id, through the relay at ${relayHost(taken.relay)} and with another key. This link goes through ${relayHost(answer.laptop.relay)}. If you moved the laptop, forget it here first, then pair again.`,
            "alert",
          ),
          homeButton(),
        );
        return;
      }
      await saveLaptop(answer.laptop);
      show(el("h1", {}, "Paired"), status(`Paired with ${answer.laptop.name} (key ${answer.laptop.fingerprint})`), homeButton());
    } else if (answer.kind === "wrong-code") {
      const wrong = status(`Wrong code; ${answer.attemptsLeft === 1 ? "1 try" : `${answer.attemptsLeft} tries`} left.`, "alert");
      message.replaceWith(wrong);
      message = wrong;
      input.value = "";
      input.focus();
    } else {
      show(el("h1", {}, "Pairing closed"), status("Too many wrong codes, or the code expired. On your laptop, run “loopsy mobile pair” again.", "alert"), homeButton());
    }
  };
  show(el("h1", {}, "Enter the code"), message, through, form);
  input.focus();
}

/** The relay's host as a person reads it (its URL, if it is none). */
function relayHost(relay: string): string {
  try {
    return new URL(relay).host;
  } catch {
    return relay;
  }
}

/** A name for this phone that a person recognises: "iPhone · Safari". */
function defaultPhoneName(): string {
  const ua = navigator.userAgent;
  const device =
    [
      [/iPhone/, "iPhone"],
      [/iPad/, "iPad"],
      [/Android/, "Android"],
      [/Macintosh|Mac OS X/, "Mac"],
      [/Windows/, "Windows"],
      [/Linux/, "Linux"],
    ].find(([pattern]) => (pattern as RegExp).test(ua))?.[1] ?? "Phone";
  const browser =
    [
      [/EdgiOS|Edg\//, "Edge"],
      [/FxiOS|Firefox\//, "Firefox"],
      [/CriOS|Chrome\//, "Chrome"],
      [/Safari\//, "Safari"],
    ].find(([pattern]) => (pattern as RegExp).test(ua))?.[1] ?? "browser";
  return `${device} · ${browser}`;
}

function homeButton(): HTMLButtonElement {
  const button = el("button", { type: "button" }, "Done");
  button.onclick = () => void home();
  return button;
}

/** Asks for notifications (a bell, a waiting agent, an exit while the page is
 * hidden) only when tapped: browsers, and people, dislike being asked unprompted. */
function notifyButton(): HTMLElement {
  if (typeof Notification === "undefined" || Notification.permission !== "default") return el("span");
  const button = el("button", { type: "button", className: "secondary", id: "notify" }, "Notify me when a session needs me");
  button.onclick = async () => {
    await Notification.requestPermission().catch(() => undefined);
    button.hidden = true;
  };
  return button;
}

/** Cycles the theme: as the phone is set, light, dark. */
function themeButton(): HTMLButtonElement {
  const names: Record<ThemeChoice, string> = { auto: "Theme: as the phone", light: "Theme: light", dark: "Theme: dark" };
  const next: Record<ThemeChoice, ThemeChoice> = { auto: "light", light: "dark", dark: "auto" };
  const button = el("button", { type: "button", className: "secondary", id: "theme" }, names[themeChoice()]);
  button.onclick = () => {
    setThemeChoice(next[themeChoice()]);
    button.textContent = names[themeChoice()];
  };
  return button;
}

/** This phone's key for `laptop`, as `loopsy phone list` shows it on the laptop. */
function phoneFingerprint(laptop: Laptop): string {
  try {
    return fingerprint(staticKey(laptop.phoneKey).publicKey);
  } catch {
    return "unknown";
  }
}

async function home(): Promise<void> {
  const paired = await laptops();
  if (paired.length === 0) {
    show(el("h1", {}, "loopsy"), status("No laptop paired yet. On your laptop, run “loopsy up” and scan its QR code."), themeButton());
    return;
  }
  const list = el("ul", { className: "laptops" });
  for (const laptop of paired) {
    const open = el("button", { type: "button", className: "laptop" }, laptop.name);
    open.onclick = () => void reopen(laptop, () => void home());
    const forget = el("button", { type: "button", className: "secondary" }, "Forget");
    forget.setAttribute("aria-label", `Forget ${laptop.name}`);
    forget.onclick = async () => {
      // Revoked at the relay too, which tells the laptop: the key is gone there as well.
      const path = `/device/${encodeURIComponent(laptop.deviceId)}/phones/self?phone_id=${encodeURIComponent(laptop.phoneId)}`;
      await fetch(laptop.relay.replace(/\/$/, "") + path, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${laptop.phoneSecret}` },
      }).catch(() => undefined);
      await forgetLaptop(laptop.deviceId);
      forgetSessions(laptop);
      dropAhead(laptop);
      void home();
    };
    const state = el("span", { className: "online", role: "status" } as Partial<HTMLSpanElement>, "checking…");
    const keys = el("small", { className: "keys" }, `laptop key ${laptop.fingerprint}`, el("br"), `this phone's key ${phoneFingerprint(laptop)}`, el("br"), `relay ${relayHost(laptop.relay)}`);
    list.append(el("li", {}, open, state, keys, forget));
    void probe(laptop, state);
  }
  show(el("h1", {}, "Your laptops"), list, themeButton(), notifyButton());
}

/** Shows whether a laptop answers now: a full connection (relay and
 * handshake), kept a while for when the laptop is opened. */
async function probe(laptop: Laptop, state: HTMLElement): Promise<void> {
  try {
    await openAhead(laptop);
    state.textContent = "online";
    state.dataset.state = "online";
  } catch (error) {
    if (error instanceof RefusedError && error.kind === "revoked") {
      state.textContent = "removed";
      state.dataset.state = "revoked";
      const said = el("p", { className: "warning", role: "alert" } as Partial<HTMLParagraphElement>, error.message);
      state.closest("li")?.append(said);
      return;
    }
    state.textContent = "offline";
    state.dataset.state = "offline";
    state.title = (error as Error).message;
  }
}

/** A pairing link in the address bar, taken out of it (and history) at once:
 * the fragment holds a one-time secret. */
function takeLink(): PairingLink | null {
  const link = parsePairingLink(location.hash, location.origin);
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return link;
}

async function start(): Promise<void> {
  const link = takeLink();
  if (link) return pairFrom(link);
  // A reload of a tab that showed a session goes back to it.
  const open = openBeforeReload();
  const laptop = open && (await laptops()).find((l) => l.deviceId === open.deviceId);
  if (open && laptop) return resumeOpen(laptop, open.id, () => void home());
  await home();
}

// A link opened in a tab already on the app changes only the fragment.
window.addEventListener("hashchange", () => {
  const link = takeLink();
  if (link) void pairFrom(link);
});

keepUpToDate();
void start();
