// The compose box: a place to write (or dictate) a longer message for an
// agent, edit it, then type it into the session in one go. It is pasted the
// way a terminal pastes (bracketed when the program asked for that), so an
// agent gets it as one message and a shell does not run it line by line.
// Dictation uses the Web Speech API, which browsers offer on secure pages only.

import type { Terminal } from "@xterm/xterm";

import { el } from "./dom.js";

interface Recognition {
  lang: string;
  continuous: boolean;
  interimResults: boolean;
  onresult: ((event: { resultIndex: number; results: ArrayLike<ArrayLike<{ transcript: string }> & { isFinal: boolean }> }) => void) | null;
  onend: (() => void) | null;
  onerror: ((event: { error: string }) => void) | null;
  start(): void;
  stop(): void;
}

type RecognitionClass = new () => Recognition;

function speechRecognition(): RecognitionClass | null {
  const found = window as unknown as { SpeechRecognition?: RecognitionClass; webkitSpeechRecognition?: RecognitionClass };
  return window.isSecureContext ? (found.SpeechRecognition ?? found.webkitSpeechRecognition ?? null) : null;
}

export interface ComposeBox {
  panel: HTMLElement;
  open(): void;
  /** Ends dictation (leaving the terminal must not leave the microphone on). */
  stop(): void;
}

/** `send` types bytes into the session (after any held input), as they are:
 * the key bar's sticky Ctrl and Alt do not apply to a composed message. */
export function composeBox(term: Terminal, send: (data: string) => void): ComposeBox {
  const text = el("textarea", { id: "compose-text", rows: 4 });
  text.setAttribute("aria-label", "Message to type into the session");
  text.placeholder = "Write or dictate, then Send";
  const panel = el("div", { className: "compose", id: "compose", hidden: true } as Partial<HTMLDivElement>);
  const close = () => {
    stopDictation();
    panel.hidden = true;
    term.focus();
  };
  const deliver = (enter: boolean) => {
    // As a terminal pastes: newlines become Enter, and the whole is wrapped in
    // bracketed-paste marks when the program turned that mode on (marks in
    // the text itself are dropped, so it cannot end the paste early).
    if (text.value) {
      const body = text.value.replace(/\r?\n/g, "\r").replace(/\x1b\[20[01]~/g, "");
      send(term.modes.bracketedPasteMode ? `\x1b[200~${body}\x1b[201~` : body);
    }
    if (enter) send("\r");
    text.value = "";
    close();
  };
  const button = (label: string, id: string, action: () => void) => {
    const b = el("button", { type: "button", id }, label);
    b.onclick = action;
    return b;
  };
  const actions = el(
    "div",
    { className: "compose-actions" },
    button("Send ⏎", "compose-send", () => deliver(true)),
    button("Insert", "compose-insert", () => deliver(false)),
    button("Close", "compose-close", close),
  );
  panel.append(text, actions);

  const Recognition = speechRecognition();
  let listening: Recognition | null = null;
  function stopDictation(): void {
    listening?.stop();
    listening = null;
  }
  if (Recognition) {
    const mic = el("button", { type: "button", id: "dictate" }, "🎤 Dictate");
    mic.setAttribute("aria-pressed", "false");
    mic.onclick = () => {
      if (listening) return stopDictation();
      const recognition = new Recognition();
      recognition.lang = navigator.language || "en-US";
      recognition.continuous = true;
      recognition.interimResults = true;
      // What was in the box before, then what is heard (final results kept,
      // the interim one replaced as it firms up).
      const before = text.value && !text.value.endsWith(" ") ? `${text.value} ` : text.value;
      let heard = "";
      recognition.onresult = (event) => {
        let interim = "";
        for (let i = event.resultIndex; i < event.results.length; i++) {
          const result = event.results[i];
          if (!result) continue;
          if (result.isFinal) heard += result[0]?.transcript ?? "";
          else interim += result[0]?.transcript ?? "";
        }
        text.value = before + heard + interim;
      };
      recognition.onerror = (event) => {
        note.textContent = event.error === "not-allowed" ? "Microphone permission was refused." : `Dictation stopped: ${event.error}`;
        note.hidden = false;
      };
      recognition.onend = () => {
        listening = null;
        mic.setAttribute("aria-pressed", "false");
        mic.textContent = "🎤 Dictate";
      };
      listening = recognition;
      mic.setAttribute("aria-pressed", "true");
      mic.textContent = "■ Stop";
      recognition.start();
    };
    actions.prepend(mic);
  }
  const note = el("p", { className: "note", id: "dictation-note" });
  note.textContent = window.isSecureContext
    ? "This browser offers no speech recognition; your keyboard's own dictation works here."
    : "Voice input needs the app over HTTPS; your keyboard's own dictation works here.";
  note.hidden = Recognition !== null;
  panel.append(note);
  return {
    panel,
    open() {
      panel.hidden = false;
      text.focus();
    },
    stop: stopDictation,
  };
}
