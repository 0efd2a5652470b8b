// Under the terminal, never over it: a tool row (text size, copy, paste, the
// compose box; the screen adds the way back and the link's state) and the keys
// phone keyboards lack (Esc, Tab, sticky Ctrl and Alt for the next key, arrows
// in the mode the program asked for, PgUp/PgDn, the symbols they bury), laid
// out in as many rows as the width needs, so every key is on screen at 360 px.

import type { Terminal } from "@xterm/xterm";

import { el, key } from "./dom.js";

export interface KeyBar {
  /** The keys, in a grid that wraps. */
  bar: HTMLElement;
  /** The tools, for the tool row. */
  tools: HTMLButtonElement[];
  /** Applies (and releases) the sticky modifiers to what the user typed. */
  modify(data: string): string;
}

export interface KeyBarActions {
  send(data: string): void;
  fontSize(step: number): void;
  copy(): void;
  compose(): void;
}

export function keyBar(term: Terminal, actions: KeyBarActions): KeyBar {
  const bar = el("div", { className: "keybar", role: "toolbar" } as Partial<HTMLDivElement>);
  bar.setAttribute("aria-label", "Extra keys");
  const sticky = { ctrl: false, alt: false };
  const modifierButtons: Record<"ctrl" | "alt", HTMLButtonElement | null> = { ctrl: null, alt: null };
  const setSticky = (which: "ctrl" | "alt", on: boolean) => {
    sticky[which] = on;
    modifierButtons[which]?.setAttribute("aria-pressed", String(on));
  };
  const modify = (data: string) => {
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
    return out;
  };
  const pressed = (action: () => void) => () => {
    action();
    term.focus();
  };
  const arrow = (final: string) => () => actions.send(term.modes.applicationCursorKeysMode ? `\x1bO${final}` : `\x1b[${final}`);
  for (const which of ["ctrl", "alt"] as const) {
    const name = which === "ctrl" ? "Control (applies to the next key)" : "Alt (applies to the next key)";
    const button = key(which === "ctrl" ? "Ctrl" : "Alt", name, pressed(() => setSticky(which, !sticky[which])));
    button.setAttribute("aria-pressed", "false");
    modifierButtons[which] = button;
  }
  const plain = (label: string, name: string, bytes: string) => key(label, name, pressed(() => actions.send(bytes)));
  bar.append(
    plain("Esc", "Escape", "\x1b"),
    plain("Tab", "Tab", "\t"),
    modifierButtons.ctrl as HTMLButtonElement,
    modifierButtons.alt as HTMLButtonElement,
    key("←", "Left", pressed(arrow("D"))),
    key("↑", "Up", pressed(arrow("A"))),
    key("↓", "Down", pressed(arrow("B"))),
    key("→", "Right", pressed(arrow("C"))),
    plain("PgUp", "Page up", "\x1b[5~"),
    plain("PgDn", "Page down", "\x1b[6~"),
    plain("|", "Pipe", "|"),
    plain("/", "Slash", "/"),
    plain("~", "Tilde", "~"),
    plain("-", "Dash", "-"),
  );
  const tools = [
    key("✎", "Compose (type or dictate, then send)", () => actions.compose()),
    key("Copy", "Copy (the selection, or pick from the screen's text)", () => actions.copy()),
  ];
  if (navigator.clipboard?.readText) {
    tools.push(
      key("Paste", "Paste", async () => {
        const text = await navigator.clipboard.readText().catch(() => "");
        if (text) term.paste(text);
        term.focus();
      }),
    );
  }
  tools.push(key("A−", "Smaller text", pressed(() => actions.fontSize(-1))), key("A+", "Larger text", pressed(() => actions.fontSize(1))));
  return { bar, tools, modify };
}
