// Light and dark: the page and the terminal follow the phone's setting unless
// the user picked one (kept in localStorage), and change live when it flips.

import type { ITheme } from "@xterm/xterm";

export type ThemeChoice = "auto" | "light" | "dark";
const KEY = "loopsy.theme";
const system = matchMedia("(prefers-color-scheme: dark)");
const listeners = new Set<() => void>();

export function themeChoice(): ThemeChoice {
  const kept = localStorage.getItem(KEY);
  return kept === "light" || kept === "dark" ? kept : "auto";
}

export function isDark(): boolean {
  const choice = themeChoice();
  return choice === "auto" ? system.matches : choice === "dark";
}

/** Marks the page with the theme in force (the CSS keys off `data-theme`). */
function apply(): void {
  const dark = isDark();
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  document.querySelector('meta[name="theme-color"]')?.setAttribute("content", dark ? "#1b1b1b" : "#f4f4f4");
  for (const listener of listeners) listener();
}

export function setThemeChoice(choice: ThemeChoice): void {
  if (choice === "auto") localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, choice);
  apply();
}

/** Calls `listener` whenever the theme in force may have changed; returns the unsubscribe. */
export function onThemeChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

system.addEventListener("change", apply);
apply();

const DARK: ITheme = {
  background: "#000000",
  foreground: "#e6e6e6",
  cursor: "#e6e6e6",
  cursorAccent: "#000000",
  selectionBackground: "#4a5a78",
};

// The ANSI colours are darkened for a light background: the usual yellow and
// white would vanish on it.
const LIGHT: ITheme = {
  background: "#fbfbfb",
  foreground: "#1d1d1d",
  cursor: "#1d1d1d",
  cursorAccent: "#fbfbfb",
  selectionBackground: "#b5d3ff",
  black: "#1d1d1d",
  red: "#b3261e",
  green: "#2e7d32",
  yellow: "#8a6d00",
  blue: "#1f5fbf",
  magenta: "#8e3fa8",
  cyan: "#00796b",
  white: "#6b6b6b",
  brightBlack: "#5c5c5c",
  brightRed: "#d32f2f",
  brightGreen: "#388e3c",
  brightYellow: "#a67c00",
  brightBlue: "#2f6fd6",
  brightMagenta: "#a24cc0",
  brightCyan: "#00897b",
  brightWhite: "#3d3d3d",
};

export function terminalTheme(): ITheme {
  return isDark() ? DARK : LIGHT;
}
