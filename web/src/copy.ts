// Copying from the terminal on a phone. Selecting in a canvas with a finger
// is hard, so Copy takes the terminal's selection when there is one, and
// otherwise opens the recent screen text in a native text box where the
// phone's own selection handles work.

import type { Terminal } from "@xterm/xterm";

import { el } from "./dom.js";

/** Lines of history offered in the copy sheet. */
const SHEET_LINES = 500;

async function toClipboard(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

export function copySheet(term: Terminal): { panel: HTMLElement; copy(): Promise<void> } {
  const text = el("textarea", { id: "copy-text", readOnly: true, rows: 12 });
  text.setAttribute("aria-label", "Recent terminal text: select what to copy");
  const said = el("p", { className: "note", role: "status" } as Partial<HTMLParagraphElement>);
  const copySelected = el("button", { type: "button", id: "copy-selected" }, "Copy selected");
  const close = el("button", { type: "button", id: "copy-close" }, "Close");
  const panel = el("div", { className: "compose", id: "copy-sheet", hidden: true } as Partial<HTMLDivElement>, text, el("div", { className: "compose-actions" }, copySelected, close), said);
  close.onclick = () => {
    panel.hidden = true;
    term.focus();
  };
  copySelected.onclick = async () => {
    const chosen = text.value.slice(text.selectionStart, text.selectionEnd) || text.value;
    said.textContent = (await toClipboard(chosen)) ? "Copied." : "The browser refused the clipboard: select the text and use the phone's Copy.";
  };
  return {
    panel,
    async copy() {
      if (term.hasSelection()) {
        const ok = await toClipboard(term.getSelection());
        if (ok) return;
      }
      const buffer = term.buffer.active;
      const lines: string[] = [];
      for (let n = Math.max(0, buffer.length - SHEET_LINES); n < buffer.length; n++) {
        const line = buffer.getLine(n);
        if (!line) continue;
        // A wrapped row continues the line before it.
        if (line.isWrapped && lines.length) lines[lines.length - 1] += line.translateToString(true);
        else lines.push(line.translateToString(true));
      }
      while (lines.length && lines[lines.length - 1] === "") lines.pop();
      text.value = lines.join("\n");
      said.textContent = "";
      panel.hidden = false;
      text.scrollTop = text.scrollHeight;
    },
  };
}
