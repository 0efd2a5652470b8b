// The phone web app: pair with a laptop from the QR link, list its sessions,
// start one, and drive it in a full-screen terminal. Nothing a laptop sends is
// ever put into the page as HTML (textContent only).

import "@xterm/xterm/css/xterm.css";
import "./style.css";

import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";

import { Connection, type Laptop, Pairing, type PairingLink, fromHex, parsePairingFragment } from "./channel.js";
import { keyPair } from "./crypto/noise.js";
import { forgetLaptop, laptops, saveLaptop } from "./store.js";

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
  const phone = keyPair();
  let pairing: Pairing;
  try {
    pairing = await Pairing.start(link, phone, navigator.platform || "phone");
  } catch (error) {
    show(el("h1", {}, "Cannot pair"), status(String((error as Error).message), "alert"), homeButton());
    return;
  }
  const input = el("input", { type: "text", inputMode: "numeric", autocomplete: "one-time-code", maxLength: 4, id: "code", className: "code" });
  input.setAttribute("aria-label", "4-digit code shown on the laptop");
  input.setAttribute("autocapitalize", "off");
  const message = status("Type the 4-digit code your laptop shows.");
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
      message.replaceWith(status(`Wrong code; ${answer.attemptsLeft} tries left.`, "alert"));
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

async function home(): Promise<void> {
  const paired = await laptops();
  if (paired.length === 0) {
    show(el("h1", {}, "loopsy"), status("No laptop paired yet. Run `loopsy up` on your laptop and scan its QR code."));
    return;
  }
  const list = el("ul", { className: "laptops" });
  for (const laptop of paired) {
    const open = el("button", { type: "button", className: "laptop" }, laptop.name);
    open.onclick = () => void sessions(laptop);
    const forget = el("button", { type: "button", className: "secondary" }, "Forget");
    forget.setAttribute("aria-label", `Forget ${laptop.name}`);
    forget.onclick = async () => {
      await forgetLaptop(laptop.deviceId);
      void home();
    };
    list.append(el("li", {}, open, el("small", {}, laptop.fingerprint), forget));
  }
  show(el("h1", {}, "Your laptops"), list);
}

function phoneKey(laptop: Laptop) {
  return keyPair(fromHex(laptop.phonePrivateKey));
}

async function sessions(laptop: Laptop): Promise<void> {
  show(el("h1", {}, laptop.name), status("Connecting…"));
  let connection: Connection;
  try {
    connection = await Connection.open(laptop, phoneKey(laptop));
  } catch (error) {
    show(el("h1", {}, laptop.name), status(`Cannot connect: ${(error as Error).message}`, "alert"), homeButton());
    return;
  }
  const answer = await connection.call("session.list");
  const result = answer.result as { sessions?: { id: string; name?: string; agent?: string; alive?: boolean }[] } | undefined;
  const list = el("ul", { className: "sessions" });
  for (const session of result?.sessions ?? []) {
    const open = el("button", { type: "button" }, `${session.name ?? session.id.slice(0, 8)} · ${session.agent ?? ""}${session.alive ? "" : " (exited)"}`);
    open.onclick = () => void terminal(connection, session.id);
    list.append(el("li", {}, open));
  }
  const fresh = el("button", { type: "button", id: "new-shell" }, "New shell");
  fresh.onclick = async () => {
    const started = await connection.call("session.start", { agent: "shell" });
    const id = (started.result as { id?: string } | undefined)?.id;
    if (id) void terminal(connection, id);
    else show(status(`Cannot start a shell: ${JSON.stringify(started.error)}`, "alert"), homeButton());
  };
  show(el("h1", {}, laptop.name), list, fresh, homeButton());
}

async function terminal(connection: Connection, id: string): Promise<void> {
  const box = el("div", { className: "terminal", id: "terminal" });
  show(box);
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  connection.onOutput = (bytes) => term.write(bytes);
  term.onData((data) => connection.type(utf8.encode(data)));
  let resizeTimer: ReturnType<typeof setTimeout> | undefined;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      fit.fit();
      void connection.call("session.resize", { id, cols: term.cols, rows: term.rows });
    }, 150);
  }).observe(box);
  void connection.call("session.attach", { id, cols: term.cols, rows: term.rows });
  term.focus();
}

async function start(): Promise<void> {
  const link = parsePairingFragment(location.hash);
  // The fragment holds a one-time secret: out of the address bar and history at once.
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (link) await pairFrom(link);
  else await home();
}

void start();
