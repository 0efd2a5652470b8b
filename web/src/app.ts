// The phone web app: pair with a laptop from the QR link, list its sessions,
// start one, and drive it in a full-screen terminal. Nothing a laptop sends is
// ever put into the page as HTML (textContent only).

import "@xterm/xterm/css/xterm.css";
import "./style.css";

import { FitAddon } from "@xterm/addon-fit";
import { WebglAddon } from "@xterm/addon-webgl";
import { Terminal } from "@xterm/xterm";

import { Connection, type Laptop, Pairing, type PairingLink, REVOKED, parsePairingFragment } from "./channel.js";
import { newPhoneKey } from "./crypto/phone-key.js";
import { forgetLaptop, laptops, saveLaptop } from "./store.js";
import { type ThemeChoice, onThemeChange, setThemeChoice, terminalTheme, themeChoice } from "./theme.js";

const main = document.getElementById("app") as HTMLElement;
const utf8 = new TextEncoder();

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function show(...nodes: Node[]): void {
  main.replaceChildren(...nodes);
}

function status(message: string, role: "status" | "alert" = "status"): HTMLElement {
  return el("p", { className: role === "alert" ? "error" : "status", role } as Partial<HTMLParagraphElement>, message);
}

async function pairFrom(link: PairingLink): Promise<void> {
  show(el("h1", {}, "Pairing…"), status("Checking the laptop's key"));
  let pairing: Pairing;
  try {
    pairing = await Pairing.start(link, await newPhoneKey(), navigator.platform || "phone");
  } catch (error) {
    show(el("h1", {}, "Cannot pair"), status(String((error as Error).message), "alert"), homeButton());
    return;
  }
  const input = el("input", { type: "text", inputMode: "numeric", autocomplete: "one-time-code", maxLength: 4, id: "code", className: "code" });
  input.setAttribute("aria-label", "4-digit code shown on the laptop");
  input.setAttribute("autocapitalize", "off");
  let message = status("Type the 4-digit code your laptop shows.");
  const submit = el("button", { type: "submit", id: "pair" }, "Pair");
  const form = el("form", {}, input, submit);
  form.onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const answer = await pairing.tryCode(input.value.trim());
    submit.disabled = false;
    if (answer.kind === "paired") {
      await saveLaptop(answer.laptop);
      show(el("h1", {}, "Paired"), status(`Paired with ${answer.laptop.name} (key ${answer.laptop.fingerprint})`), homeButton());
    } else if (answer.kind === "wrong-code") {
      const wrong = status(`Wrong code; ${answer.attemptsLeft} tries left.`, "alert");
      message.replaceWith(wrong);
      message = wrong;
      input.value = "";
      input.focus();
    } else {
      show(el("h1", {}, "Pairing closed"), status("Too many wrong codes, or the code expired. Run `loopsy mobile pair` again.", "alert"), homeButton());
    }
  };
  show(el("h1", {}, "Enter the code"), message, form);
  input.focus();
}

function homeButton(): HTMLButtonElement {
  const button = el("button", { type: "button" }, "Done");
  button.onclick = () => void home();
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

async function home(): Promise<void> {
  const paired = await laptops();
  if (paired.length === 0) {
    show(el("h1", {}, "loopsy"), status("No laptop paired yet. Run `loopsy up` on your laptop and scan its QR code."), themeButton());
    return;
  }
  const list = el("ul", { className: "laptops" });
  for (const laptop of paired) {
    const open = el("button", { type: "button", className: "laptop" }, laptop.name);
    open.onclick = () => void sessions(laptop);
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
      void home();
    };
    list.append(el("li", {}, open, el("small", {}, laptop.fingerprint), forget));
  }
  show(el("h1", {}, "Your laptops"), list, themeButton());
}

async function sessions(laptop: Laptop): Promise<void> {
  show(el("h1", {}, laptop.name), status("Connecting…"));
  let connection: Connection;
  try {
    connection = await Connection.open(laptop);
  } catch (error) {
    show(el("h1", {}, laptop.name), status(`Cannot connect: ${(error as Error).message}`, "alert"), homeButton());
    return;
  }
  const answer = await connection.call("session.list");
  const result = answer.result as { sessions?: { id: string; name?: string; agent?: string; alive?: boolean }[] } | undefined;
  const list = el("ul", { className: "sessions" });
  for (const session of result?.sessions ?? []) {
    const open = el("button", { type: "button" }, `${session.name ?? session.id.slice(0, 8)} · ${session.agent ?? ""}${session.alive ? "" : " (exited)"}`);
    open.onclick = () => void terminal(connection, laptop, session.id);
    list.append(el("li", {}, open));
  }
  // The picker: the agents found on the laptop, then its custom commands.
  const picker = el("div", { className: "picker" });
  const begin = (label: string, params: Record<string, unknown>, id?: string) => {
    const button = el("button", { type: "button" }, label);
    if (id) button.id = id;
    button.onclick = async () => {
      const started = await connection.call("session.start", params);
      const session = (started.result as { id?: string } | undefined)?.id;
      if (session) void terminal(connection, laptop, session);
      else show(status(`Cannot start ${label}: ${JSON.stringify(started.error)}`, "alert"), homeButton());
    };
    picker.append(button);
  };
  const offer = await connection.call("session.agents");
  const picks = offer.result as { agents?: string[]; customCommands?: { id: string; label: string }[] } | undefined;
  for (const agent of picks?.agents ?? ["shell"]) {
    begin(agent === "shell" ? "New shell" : `New ${agent}`, { agent }, agent === "shell" ? "new-shell" : undefined);
  }
  for (const command of picks?.customCommands ?? []) {
    begin(command.label, { customCommandId: command.id });
  }
  show(el("h1", {}, laptop.name), list, el("h2", {}, "New session"), picker, homeButton());
}

/** A session on screen. It survives lost connections: it reconnects with
 * backoff, resumes from the last byte it showed (or redraws from a snapshot
 * when the gap left the laptop's buffer), and holds what is typed meanwhile,
 * sending it once, in order, when the session is back. */
async function terminal(first: Connection, laptop: Laptop, id: string): Promise<void> {
  const box = el("div", { className: "terminal", id: "terminal" });
  const chip = el("div", { className: "chip", id: "link-state", role: "status" } as Partial<HTMLDivElement>, "connected");
  const bar = el("div", { className: "keybar", role: "toolbar" } as Partial<HTMLDivElement>);
  bar.setAttribute("aria-label", "Extra keys");
  const attention = el("div", { className: "attention", id: "attention", role: "alert", hidden: true } as Partial<HTMLDivElement>);
  attention.onclick = () => {
    attention.hidden = true;
    term.focus();
  };
  show(box, chip, attention, bar);
  /** Says that the session wants the user: a badge, and a notification when allowed. */
  const callAttention = (why: string) => {
    attention.textContent = why;
    attention.hidden = false;
    if (typeof Notification !== "undefined" && Notification.permission === "granted" && document.hidden) {
      new Notification("loopsy", { body: why, tag: id });
    }
  };
  if (typeof Notification !== "undefined" && Notification.permission === "default") {
    void Notification.requestPermission().catch(() => undefined);
  }
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000, theme: terminalTheme() });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  useWebgl(term);
  fit.fit();
  const stopTheming = onThemeChange(() => (term.options.theme = terminalTheme()));
  // The terminal screen is gone once the page shows something else.
  new MutationObserver((_, observer) => {
    if (!box.isConnected) {
      stopTheming();
      observer.disconnect();
    }
  }).observe(main, { childList: true });
  term.onBell(() => callAttention("The session rang the bell."));
  const visibleRows = () => {
    const buffer = term.buffer.active;
    return Array.from({ length: term.rows }, (_, n) => buffer.getLine(buffer.viewportY + n)?.translateToString(true) ?? "");
  };
  // For automation (the browser tests, accessibility tools): the screen as
  // text, whichever renderer draws it (WebGL leaves no text in the DOM).
  (window as unknown as { loopsy: unknown }).loopsy = {
    rows: visibleRows,
    viewportY: () => term.buffer.active.viewportY,
    background: () => term.options.theme?.background,
  };
  // Agents that stop to ask for permission show a prompt like these on screen.
  const asking = /(Do you want to (proceed|make this edit|run)|Allow (this|once)|\(y\/n\)|\[Y\/n\]|Approve\?|Waiting for (your )?(approval|input))/i;
  let lastAsk = "";
  let scan: ReturnType<typeof setTimeout> | undefined;
  // Looked for a little after output settles, not on every write.
  term.onWriteParsed(() => {
    clearTimeout(scan);
    scan = setTimeout(() => {
      const screen = visibleRows().join("\n");
      const match = screen.match(asking)?.[0] ?? "";
      if (match && match !== lastAsk) callAttention(`The agent is waiting for you: ${match}`);
      lastAsk = match;
    }, 250);
  });
  let connection: Connection | null = null;
  // Output offset of the next byte this screen expects; null until the first attach.
  let position: number | null = null;
  let snapshotLeft = 0;
  const held: Uint8Array[] = [];
  const setChip = (text: string, state: "ok" | "away") => {
    chip.textContent = text;
    chip.dataset.state = state;
  };

  const attach = (current: Connection) => {
    current.onEvent = (event) => {
      if (event.type === "start") {
        if (event.resynced && position !== null) term.reset();
        position = Number(event.offset);
        snapshotLeft = Number(event.snapshotBytes ?? 0);
        // Keys typed while away go first, in order; new keys go straight after.
        for (const bytes of held.splice(0)) current.type(bytes);
        connection = current;
        setChip("connected", "ok");
      } else if (event.type === "exit") {
        setChip(`session ended (${event.exitCode ?? event.signal ?? "?"})`, "away");
        callAttention("The session ended.");
      }
    };
    current.onOutput = (bytes) => {
      term.write(bytes);
      // A snapshot redraws the screen; it does not move the position.
      const fromSnapshot = Math.min(snapshotLeft, bytes.length);
      snapshotLeft -= fromSnapshot;
      if (position !== null) position += bytes.length - fromSnapshot;
    };
    current.onClose = (code) => {
      connection = null;
      if (code === REVOKED) setChip("this phone was revoked on the laptop", "away");
      else void reconnect();
    };
    const params: Record<string, unknown> = { id, cols: term.cols, rows: term.rows };
    if (position !== null) params.fromOffset = position;
    void current.call("session.attach", params);
  };

  const reconnect = async () => {
    for (let wait = 1000; ; wait = Math.min(wait * 2, 10_000)) {
      setChip(held.length ? `reconnecting… ${held.length} held` : "reconnecting…", "away");
      await new Promise((resolve) => setTimeout(resolve, wait * (0.5 + Math.random() / 2)));
      try {
        attach(await Connection.open(laptop));
        return;
      } catch {
        // The relay or the laptop is still away; try again later.
      }
    }
  };

  const typeBytes = (bytes: Uint8Array) => {
    if (connection) connection.type(bytes);
    else {
      held.push(bytes);
      setChip(`reconnecting… ${held.length} held`, "away");
    }
  };
  // Sticky Ctrl and Alt from the key bar apply to the next key typed.
  const sticky = { ctrl: false, alt: false };
  const modifierButtons: Record<"ctrl" | "alt", HTMLButtonElement | null> = { ctrl: null, alt: null };
  const setSticky = (which: "ctrl" | "alt", on: boolean) => {
    sticky[which] = on;
    modifierButtons[which]?.setAttribute("aria-pressed", String(on));
  };
  const send = (data: string) => {
    let out = data;
    if (sticky.ctrl && out.length === 1) {
      const code = out.toUpperCase().charCodeAt(0);
      if (code >= 64 && code <= 95) out = String.fromCharCode(code - 64);
      setSticky("ctrl", false);
    }
    if (sticky.alt) {
      out = "\x1b" + out;
      setSticky("alt", false);
    }
    typeBytes(utf8.encode(out));
  };
  term.onData(send);
  const arrow = (final: string) => () => (term.modes.applicationCursorKeysMode ? `\x1bO${final}` : `\x1b[${final}`);
  const keys: [string, string, (() => string) | "ctrl" | "alt"][] = [
    ["Esc", "Escape", () => "\x1b"],
    ["Tab", "Tab", () => "\t"],
    ["Ctrl", "Control (applies to the next key)", "ctrl"],
    ["Alt", "Alt (applies to the next key)", "alt"],
    ["←", "Left", arrow("D")],
    ["↑", "Up", arrow("A")],
    ["↓", "Down", arrow("B")],
    ["→", "Right", arrow("C")],
    ["PgUp", "Page up", () => "\x1b[5~"],
    ["PgDn", "Page down", () => "\x1b[6~"],
    ["|", "Pipe", () => "|"],
    ["/", "Slash", () => "/"],
    ["~", "Tilde", () => "~"],
    ["-", "Dash", () => "-"],
  ];
  for (const [label, name, action] of keys) {
    const key = el("button", { type: "button", className: "key" }, label);
    key.setAttribute("aria-label", name);
    // Pressing a key must not take the focus (and the keyboard) from the terminal.
    key.addEventListener("pointerdown", (event) => event.preventDefault());
    key.onclick = () => {
      if (action === "ctrl" || action === "alt") setSticky(action, !sticky[action]);
      else send(action());
      term.focus();
    };
    if (action === "ctrl" || action === "alt") {
      key.setAttribute("aria-pressed", "false");
      modifierButtons[action] = key;
    }
    bar.append(key);
  }
  for (const [label, name, step] of [["A−", "Smaller text", -1], ["A+", "Larger text", 1]] as const) {
    const key = el("button", { type: "button", className: "key" }, label);
    key.setAttribute("aria-label", name);
    key.addEventListener("pointerdown", (event) => event.preventDefault());
    key.onclick = () => {
      term.options.fontSize = Math.min(28, Math.max(8, (term.options.fontSize ?? 14) + step));
      // The ResizeObserver does not fire for a font change: refit here.
      fit.fit();
      const now = `${term.cols}x${term.rows}`;
      if (now !== size && connection) {
        size = now;
        void connection.call("session.resize", { id, cols: term.cols, rows: term.rows });
      }
      term.focus();
    };
    bar.append(key);
  }
  if (navigator.clipboard?.readText) {
    const paste = el("button", { type: "button", className: "key" }, "Paste");
    paste.addEventListener("pointerdown", (event) => event.preventDefault());
    paste.onclick = async () => {
      const text = await navigator.clipboard.readText().catch(() => "");
      if (text) term.paste(text);
      term.focus();
    };
    bar.append(paste);
  }
  let resizeTimer: ReturnType<typeof setTimeout> | undefined;
  let size = `${term.cols}x${term.rows}`;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      // fit() derives the columns from the width alone: a keyboard opening
      // changes the rows only, so agent TUIs keep their line wrapping.
      fit.fit();
      const now = `${term.cols}x${term.rows}`;
      if (now !== size && connection) {
        size = now;
        void connection.call("session.resize", { id, cols: term.cols, rows: term.rows });
      }
    }, 150);
  }).observe(box);
  attach(first);
  term.focus();
}

/** Draws with WebGL where the phone has it, the DOM renderer otherwise (and
 * again if the GPU context is lost, as happens when a phone sleeps). */
function useWebgl(term: Terminal): void {
  try {
    const webgl = new WebglAddon();
    webgl.onContextLoss(() => webgl.dispose());
    term.loadAddon(webgl);
    document.documentElement.dataset.renderer = "webgl";
  } catch {
    document.documentElement.dataset.renderer = "dom";
  }
}

async function start(): Promise<void> {
  const link = parsePairingFragment(location.hash);
  // The fragment holds a one-time secret: out of the address bar and history at once.
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (link) await pairFrom(link);
  else await home();
}

void start();
