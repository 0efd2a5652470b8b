// A session on screen. It survives lost connections: it reconnects with
// backoff, resumes from the last byte it showed (or redraws from a snapshot
// when the gap left the laptop's buffer), and holds what is typed meanwhile,
// sending it once, in order, when the session is back.

import { FitAddon } from "@xterm/addon-fit";
import { WebglAddon } from "@xterm/addon-webgl";
import { Terminal } from "@xterm/xterm";

import { Connection, type Laptop, REVOKED, RefusedError } from "./channel.js";
import { composeBox } from "./compose.js";
import { copySheet } from "./copy.js";
import { el, key, main, show } from "./dom.js";
import { keyBar } from "./keybar.js";
import { onThemeChange, terminalTheme } from "./theme.js";
import { touchScroll } from "./touch-scroll.js";

const utf8 = new TextEncoder();
/** The daemon's error code for a session it does not have. */
const SESSION_NOT_FOUND = 7001;
/** How long a resize waits for the layout to settle (rotation, keyboard). */
const RESIZE_DEBOUNCE_MS = 150;

// Agents that stop to ask for permission show a prompt like these on screen.
const ASKING = /(Do you want to (proceed|make this edit|run)|Allow (this|once)|\(y\/n\)|\[Y\/n\]|Approve\?|Waiting for (your )?(approval|input))/i;

/** The canvas WebGL draws on, if the terminal has one. */
function webglCanvas(box: HTMLElement): HTMLCanvasElement | undefined {
  // Only canvases on screen are asked: asking a fresh one would give it a context.
  return [...box.querySelectorAll("canvas")].find((c) => c.clientWidth > 0 && c.getContext("webgl2") !== null);
}

/** Whether a canvas's drawing buffer matches its size on screen in device
 * pixels. Where it does not (seen with device-pixel-content-box reporting CSS
 * pixels at a ratio of 3), WebGL draws a magnified corner of the screen. */
function backingFits(canvas: HTMLCanvasElement): boolean {
  const ratio = window.devicePixelRatio || 1;
  const near = (actual: number, css: number) => Math.abs(actual - css * ratio) <= Math.max(2, ratio);
  return near(canvas.width, canvas.clientWidth) && near(canvas.height, canvas.clientHeight);
}

/** The renderer, chosen by checking it: WebGL where it loads and its canvas
 * comes out at the device's resolution, the DOM renderer otherwise. WebGL is
 * checked again after every resize, and dropped at once when its context is
 * lost (as happens when a phone sleeps), without waiting for a restore. */
function chooseRenderer(term: Terminal, box: HTMLElement): { recheck: () => void } {
  const root = document.documentElement;
  let webgl: WebglAddon | undefined;
  const useDom = (why: string) => {
    webgl?.dispose();
    webgl = undefined;
    root.dataset.renderer = "dom";
    root.dataset.rendererReason = why;
  };
  try {
    webgl = new WebglAddon();
    webgl.onContextLoss(() => useDom("context lost"));
    term.loadAddon(webgl);
    root.dataset.renderer = "webgl";
    delete root.dataset.rendererReason;
    webglCanvas(box)?.addEventListener("webglcontextlost", () => useDom("context lost"), { once: true });
  } catch {
    useDom("no WebGL");
  }
  const recheck = () => {
    if (!webgl) return;
    const canvas = webglCanvas(box);
    if (!canvas) useDom("no WebGL canvas");
    else if (!backingFits(canvas)) useDom(`canvas ${canvas.width}x${canvas.height} for ${canvas.clientWidth}x${canvas.clientHeight} at ${window.devicePixelRatio}`);
  };
  // The canvas gets its size on the next frames: check once it has drawn.
  requestAnimationFrame(() => requestAnimationFrame(recheck));
  return { recheck };
}

/** Opens session `id` of `laptop` on `first`; `leave` shows the screen to go back to. */
export function terminal(first: Connection, laptop: Laptop, id: string, leave: () => void): void {
  const box = el("div", { className: "terminal", id: "terminal" });
  const chip = el("div", { className: "chip", id: "link-state", role: "status" } as Partial<HTMLDivElement>, "connected");
  const attention = el("button", { type: "button", className: "attention", id: "attention", role: "alert", hidden: true } as Partial<HTMLButtonElement>);
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000, theme: terminalTheme() });
  attention.onclick = () => {
    attention.hidden = true;
    term.focus();
  };

  /** Says that the session wants the user: a badge, and a notification when allowed. */
  const callAttention = (why: string) => {
    attention.textContent = why;
    attention.hidden = false;
    if (typeof Notification !== "undefined" && Notification.permission === "granted" && document.hidden) {
      new Notification("loopsy", { body: why, tag: id });
    }
  };

  let connection: Connection | null = null;
  /** A connection whose attach has not started yet (closed too if the screen is left). */
  let attaching: Connection | null = null;
  let leaving = false;
  // Output offset of the next byte this screen expects; null until the first attach.
  let position: number | null = null;
  let snapshotLeft = 0;
  const held: Uint8Array[] = [];
  const setChip = (text: string, state: "ok" | "away") => {
    chip.textContent = text;
    chip.dataset.state = state;
  };
  // Keys typed while away are held and sent once back, unless the user drops them.
  const discard = el("button", { type: "button", className: "discard", id: "discard-held", hidden: true } as Partial<HTMLButtonElement>, "Discard held keys");
  discard.onclick = () => {
    held.splice(0);
    discard.hidden = true;
    setChip("reconnecting… (held keys discarded)", "away");
    term.focus();
  };
  const typeBytes = (bytes: Uint8Array) => {
    if (connection) connection.type(bytes);
    else {
      held.push(bytes);
      discard.hidden = false;
      setChip(`reconnecting… ${held.length} ${held.length === 1 ? "key" : "keys"} held`, "away");
    }
  };
  const sendRaw = (data: string) => typeBytes(utf8.encode(data));

  const fit = new FitAddon();
  let size = "";
  const resizeIfChanged = () => {
    // fit() derives the columns from the width alone: a keyboard opening
    // changes the rows only, so agent TUIs keep their line wrapping.
    fit.fit();
    renderer.recheck();
    const now = `${term.cols}x${term.rows}`;
    if (now !== size && connection) {
      size = now;
      void connection.call("session.resize", { id, cols: term.cols, rows: term.rows });
    }
  };
  const copy = copySheet(term);
  const compose = composeBox(term, sendRaw);
  const keys = keyBar(term, {
    send: sendRaw,
    fontSize(step) {
      term.options.fontSize = Math.min(28, Math.max(8, (term.options.fontSize ?? 14) + step));
      // The ResizeObserver does not fire for a font change: refit here.
      resizeIfChanged();
    },
    copy: () => void copy.copy(),
    compose: () => compose.open(),
  });
  term.onData((data) => sendRaw(keys.modify(data)));
  const back = key("‹ Sessions", "Back to the sessions", () => leave());
  back.id = "back";
  // The way back and the link's state on the tool row, the keys below it:
  // leaving is far from Esc, and nothing is drawn over the terminal's cells.
  const tools = el("div", { className: "toolbar", role: "toolbar" } as Partial<HTMLDivElement>);
  tools.setAttribute("aria-label", "Session tools");
  tools.append(back, ...keys.tools);
  // A line of its own, of fixed height: a call for attention never resizes the terminal.
  const statusLine = el("div", { className: "status-area" }, chip, attention, discard);
  show(el("div", { className: "session-screen" }, box, compose.panel, copy.panel, statusLine, tools, keys.bar));

  term.loadAddon(fit);
  term.open(box);
  const renderer = chooseRenderer(term, box);
  touchScroll(term, box, sendRaw);
  fit.fit();
  size = `${term.cols}x${term.rows}`;
  const stopTheming = onThemeChange(() => (term.options.theme = terminalTheme()));
  let resizeTimer: ReturnType<typeof setTimeout> | undefined;
  const resizes = new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeIfChanged, RESIZE_DEBOUNCE_MS);
  });
  resizes.observe(box);
  // The terminal screen ends once the page shows something else.
  new MutationObserver((_, observer) => {
    if (box.isConnected) return;
    leaving = true;
    stopTheming();
    resizes.disconnect();
    observer.disconnect();
    compose.stop();
    connection?.close();
    attaching?.close();
    term.dispose();
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
    size: () => ({ cols: term.cols, rows: term.rows }),
    background: () => term.options.theme?.background,
  };
  let lastAsk = "";
  let scan: ReturnType<typeof setTimeout> | undefined;
  // Looked for a little after output settles, not on every write.
  term.onWriteParsed(() => {
    clearTimeout(scan);
    scan = setTimeout(() => {
      const match = visibleRows().join("\n").match(ASKING)?.[0] ?? "";
      if (match && match !== lastAsk) callAttention(`The agent is waiting for you: ${match}`);
      lastAsk = match;
    }, 250);
  });

  const attach = (current: Connection) => {
    if (leaving) return current.close();
    attaching = current;
    current.onEvent = (event) => {
      if (leaving) return;
      if (event.type === "start") {
        attaching = null;
        if (event.resynced && position !== null) term.reset();
        position = Number(event.offset);
        snapshotLeft = Number(event.snapshotBytes ?? 0);
        // Keys typed while away go first, in order; new keys go straight after.
        for (const bytes of held.splice(0)) current.type(bytes);
        discard.hidden = true;
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
      if (leaving) return;
      if (code === REVOKED) revoked(new RefusedError(`This phone was removed on ${laptop.name}. To use it again, pair again: run “loopsy mobile pair” on the laptop.`, "revoked"));
      else void reconnect();
    };
    const params: Record<string, unknown> = { id, cols: term.cols, rows: term.rows };
    if (position !== null) params.fromOffset = position;
    void current.call("session.attach", params).then((answer) => {
      // The attach ends with an answer only when its stream ends; an error
      // here means the session is gone or refused this phone.
      const error = answer.error as { message?: string; code?: number; data?: { loopsyCode?: number } } | undefined;
      if (error && !leaving && current === attaching && !current.closed) {
        attaching = null;
        current.close();
        if ((error.data?.loopsyCode ?? error.code) === SESSION_NOT_FOUND) return gone();
        setChip(`cannot attach: ${error.message ?? "refused"}`, "away");
      }
    });
  };

  /** Shows `message` in place of the terminal, with one way on; nothing is reconnected. */
  const endWith = (message: string, label: string) => {
    leaving = true;
    held.splice(0);
    discard.hidden = true;
    const toList = el("button", { type: "button" }, label);
    toList.onclick = () => leave();
    box.replaceChildren(el("div", { className: "notice", role: "alert" } as Partial<HTMLDivElement>, el("p", {}, message), toList));
  };
  /** The session is not on the laptop any more (it restarted, or the session was removed). */
  const gone = () => {
    setChip("session gone", "away");
    endWith("This session is gone: the laptop may have restarted, or the session was removed.", "Open the sessions list");
  };

  /** The laptop removed this phone: no more reconnecting, and the keys held are dropped. */
  const revoked = (error: RefusedError) => {
    setChip("removed", "away");
    endWith(error.message, "Back to your laptops");
  };

  const reconnect = async () => {
    for (let wait = 1000; !leaving; wait = Math.min(wait * 2, 10_000)) {
      setChip(held.length ? `reconnecting… ${held.length} ${held.length === 1 ? "key" : "keys"} held` : "reconnecting…", "away");
      await new Promise((resolve) => setTimeout(resolve, wait * (0.5 + Math.random() / 2)));
      try {
        attach(await Connection.open(laptop));
        return;
      } catch (error) {
        if (error instanceof RefusedError) return revoked(error);
        // The relay or the laptop is still away; try again later.
      }
    }
  };
  attach(first);
  term.focus();
}
