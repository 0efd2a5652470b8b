// A laptop's screen: its sessions (live there, plus the ones this phone used
// that are gone since), and the picker for a new one: the agents the laptop
// found, its custom commands (added, edited and removed from here), an
// optional name, and auto-approve where the owner granted it to this phone.

import { type Connection, type Laptop, RefusedError } from "./channel.js";
import { buildWarning } from "./build-check.js";
import { connect } from "./connections.js";
import { el, show, status } from "./dom.js";
import { terminal } from "./terminal.js";

interface SessionInfo {
  id: string;
  name?: string | null;
  agent?: string | null;
  command?: string | null;
  cwd?: string | null;
  alive?: boolean;
  exitCode?: number | null;
  exitSignal?: string | null;
  lastActivityAt?: number;
}

/** The last part of a path. */
const baseName = (path: string) => path.replace(/\/+$/, "").split("/").pop() || path;

/** What a person calls a session: its name, or its program and where it runs. */
export function sessionLabel(session: SessionInfo): string {
  if (session.name) return session.name;
  const program = session.agent && session.agent !== "custom" ? session.agent : baseName(session.command ?? "shell");
  return session.cwd ? `${program} in ${baseName(session.cwd)}` : program;
}

// The session this tab shows, so a reload comes back to it (per tab, not shared).
const OPEN_KEY = "loopsy.open";
export function rememberOpen(laptop: Laptop, id: string): void {
  sessionStorage.setItem(OPEN_KEY, JSON.stringify({ deviceId: laptop.deviceId, id }));
}
export function forgetOpen(): void {
  sessionStorage.removeItem(OPEN_KEY);
}
/** The session that was open in this tab before a reload, if any. */
export function openBeforeReload(): { deviceId: string; id: string } | null {
  try {
    const open = JSON.parse(sessionStorage.getItem(OPEN_KEY) ?? "null");
    return typeof open?.deviceId === "string" && typeof open?.id === "string" ? open : null;
  } catch {
    return null;
  }
}

interface CustomCommand {
  id: string;
  label: string;
  command: string;
  args?: string[];
  cwd?: string | null;
}

/** Agents that have an auto-approve flag of their own. */
const APPROVING_AGENTS = new Set(["claude", "codex", "gemini"]);

// Sessions this phone opened, per laptop, so one that is gone is not just missing.
const seenKey = (laptop: Laptop) => `loopsy.seen.${laptop.deviceId}`;
function seenSessions(laptop: Laptop): SessionInfo[] {
  try {
    return JSON.parse(localStorage.getItem(seenKey(laptop)) ?? "[]") as SessionInfo[];
  } catch {
    return [];
  }
}
function rememberSession(laptop: Laptop, session: SessionInfo): void {
  const others = seenSessions(laptop).filter((s) => s.id !== session.id);
  const kept = { id: session.id, name: session.name ?? null, agent: session.agent ?? null, command: session.command ?? null, cwd: session.cwd ?? null };
  localStorage.setItem(seenKey(laptop), JSON.stringify([kept, ...others].slice(0, 20)));
}
/** Forgets every session remembered for `laptop` (the laptop itself was forgotten). */
export function forgetSessions(laptop: Laptop): void {
  localStorage.removeItem(seenKey(laptop));
}
function forgetSession(laptop: Laptop, id: string): void {
  localStorage.setItem(seenKey(laptop), JSON.stringify(seenSessions(laptop).filter((s) => s.id !== id)));
}

function ago(ms: number | undefined): string {
  if (!ms) return "";
  const minutes = Math.round((Date.now() - ms) / 60_000);
  if (minutes < 1) return "active just now";
  if (minutes < 60) return `active ${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `active ${hours} h ago` : `active ${Math.round(hours / 24)} days ago`;
}

function errorText(answer: Record<string, unknown>): string {
  const error = answer.error as { message?: string } | undefined;
  return error?.message ?? "no answer";
}

/** Splits an argument line as a shell would for words and quotes (no expansion). */
export function splitArgs(line: string): string[] {
  const args: string[] = [];
  let current = "";
  let quote: '"' | "'" | null = null;
  let started = false;
  for (const char of line) {
    if (quote) {
      if (char === quote) quote = null;
      else current += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      started = true;
    } else if (/\s/.test(char)) {
      if (started || current) args.push(current);
      current = "";
      started = false;
    } else current += char;
  }
  if (started || current) args.push(current);
  return args;
}

const quoteArg = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'"'"'`)}'`);

export async function sessions(connection: Connection, laptop: Laptop, home: () => void): Promise<void> {
  const again = () => void sessions(connection, laptop, home);
  const open = (session: SessionInfo) => {
    rememberSession(laptop, session);
    openSession(connection, laptop, session.id, home);
  };
  const [listed, offered, mismatch] = await Promise.all([connection.call("session.list"), connection.call("session.agents"), buildWarning(connection, laptop)]);
  const live = ((listed.result as { sessions?: SessionInfo[] } | undefined)?.sessions ?? []) as SessionInfo[];
  // The one used last first.
  live.sort((a, b) => (b.lastActivityAt ?? 0) - (a.lastActivityAt ?? 0));
  const message = el("div");
  const list = el("ul", { className: "sessions" });
  const act = async (method: string, params: Record<string, unknown>, failed: string) => {
    const answer = await connection.call(method, params);
    if (answer.error) message.replaceChildren(status(`${failed}: ${errorText(answer)}`, "alert"));
    else again();
  };
  for (const session of live) {
    const label = sessionLabel(session);
    const life = session.alive ? ago(session.lastActivityAt) : `exited (${session.exitCode ?? session.exitSignal ?? "?"})`;
    // A named session still says what runs in it.
    const state = session.name ? `${session.agent && session.agent !== "custom" ? session.agent : baseName(session.command ?? "shell")} · ${life}` : life;
    const button = el("button", { type: "button", className: "session" }, label);
    button.onclick = () => open(session);
    const rename = el("button", { type: "button", className: "secondary" }, "Rename");
    rename.setAttribute("aria-label", `Rename ${label}`);
    const row = el("li", {}, button, el("small", {}, state), rename);
    rename.onclick = () => {
      const field = el("input", { type: "text", maxLength: 64, value: session.name ?? "" });
      field.setAttribute("aria-label", `New name for ${label}`);
      const save = el("button", { type: "submit" }, "Save");
      const form = el("form", { className: "rename" }, field, save);
      form.onsubmit = (event) => {
        event.preventDefault();
        void act("session.rename", { id: session.id, name: field.value.trim() || null }, `Cannot rename ${label}`);
      };
      row.append(form);
      rename.hidden = true;
      field.focus();
    };
    if (session.alive) {
      const stop = el("button", { type: "button", className: "secondary" }, "Stop");
      stop.setAttribute("aria-label", `Stop ${label}`);
      stop.onclick = () => {
        if (!confirm(`Stop "${label}"? Its program gets SIGHUP, then SIGTERM, then SIGKILL.`)) return;
        stop.disabled = true;
        void (async () => {
          const answer = await connection.call("session.stop", { id: session.id });
          if (answer.error) return message.replaceChildren(status(`Cannot stop ${label}: ${errorText(answer)}`, "alert"));
          // Stopping takes a moment (HUP, then TERM, then KILL): show the list once it has ended.
          for (let waited = 0; waited < 10_000; waited += 250) {
            const listed = await connection.call("session.list");
            const now = ((listed.result as { sessions?: SessionInfo[] } | undefined)?.sessions ?? []).find((s) => s.id === session.id);
            if (!now?.alive) break;
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
          again();
        })();
      };
      row.append(stop);
    } else {
      const remove = el("button", { type: "button", className: "secondary" }, "Remove");
      remove.setAttribute("aria-label", `Remove ${label}`);
      remove.onclick = () => {
        forgetSession(laptop, session.id);
        void act("session.remove", { id: session.id }, `Cannot remove ${label}`);
      };
      row.append(remove);
    }
    list.append(row);
  }
  for (const gone of seenSessions(laptop).filter((s) => !live.some((l) => l.id === s.id))) {
    const forget = el("button", { type: "button", className: "secondary" }, "Forget");
    forget.setAttribute("aria-label", `Forget ${sessionLabel(gone)}`);
    forget.onclick = () => {
      forgetSession(laptop, gone.id);
      again();
    };
    list.append(el("li", { className: "gone" }, el("span", {}, sessionLabel(gone)), el("small", {}, "gone from the laptop"), forget));
  }
  if (!list.childElementCount) list.append(el("li", {}, el("small", {}, "No sessions yet.")));

  const picks = offered.result as { agents?: string[]; customCommands?: CustomCommand[]; autoApprove?: boolean } | undefined;
  const name = el("input", { type: "text", id: "session-name", maxLength: 64, placeholder: "Name (optional)" });
  name.setAttribute("aria-label", "Name for the new session (optional)");
  name.setAttribute("autocapitalize", "off");
  const approve = el("input", { type: "checkbox", id: "auto-approve" });
  const approveBox = el(
    "div",
    { className: "auto-approve" },
    el("label", {}, approve, " Auto-approve (Claude, Codex, Gemini)"),
    el("p", { className: "warning" }, "The agent will run commands and change files without asking you first. Use it only in a directory you can afford to lose."),
  );
  const picker = el("div", { className: "picker" });
  const begin = (label: string, params: Record<string, unknown>, id?: string) => {
    const button = el("button", { type: "button" }, label);
    if (id) button.id = id;
    button.onclick = async () => {
      const full = { ...params };
      if (name.value.trim()) full.name = name.value.trim();
      if (approve.checked && APPROVING_AGENTS.has(String(params.agent))) full.autoApprove = true;
      const started = await connection.call("session.start", full);
      const session = started.result as SessionInfo | undefined;
      if (session?.id) open(session);
      else message.replaceChildren(status(`Cannot start ${label}: ${errorText(started)}`, "alert"));
    };
    picker.append(button);
  };
  const agents = picks?.agents ?? ["shell"];
  for (const agent of agents) {
    begin(agent === "shell" ? "New shell" : `New ${agent}`, { agent }, agent === "shell" ? "new-shell" : undefined);
  }
  const commands = el("ul", { className: "commands" });
  for (const command of picks?.customCommands ?? []) {
    begin(command.label, { customCommandId: command.id });
    const edit = el("button", { type: "button", className: "secondary" }, "Edit");
    edit.setAttribute("aria-label", `Edit ${command.label}`);
    edit.onclick = () => editor.open(command);
    const remove = el("button", { type: "button", className: "secondary" }, "Remove");
    remove.setAttribute("aria-label", `Remove ${command.label}`);
    remove.onclick = async () => {
      if (!confirm(`Remove "${command.label}" from the laptop's commands?`)) return;
      const removed = await connection.call("commands.remove", { id: command.id });
      if (removed.error) message.replaceChildren(status(`Cannot remove it: ${errorText(removed)}`, "alert"));
      else again();
    };
    commands.append(el("li", {}, el("span", {}, `${command.label}: ${[command.command, ...(command.args ?? [])].map(quoteArg).join(" ")}`), edit, remove));
  }
  const editor = commandEditor(connection, message, again);
  const add = el("button", { type: "button", className: "secondary", id: "add-command" }, "Add a command");
  add.onclick = () => editor.open(null);
  const back = el("button", { type: "button", className: "secondary" }, "Laptops");
  back.onclick = () => {
    connection.close();
    home();
  };
  show(
    el("h1", {}, laptop.name),
    ...(mismatch ? [mismatch] : []),
    list,
    el("h2", {}, "New session"),
    name,
    ...(picks?.autoApprove && agents.some((a) => APPROVING_AGENTS.has(a)) ? [approveBox] : []),
    picker,
    message,
    el("h2", {}, "Custom commands"),
    commands,
    add,
    editor.form,
    back,
  );
}

/** The form that adds a custom command or edits one. */
function commandEditor(connection: Connection, message: HTMLElement, done: () => void) {
  const field = (id: string, label: string, placeholder: string) => {
    const input = el("input", { type: "text", id, placeholder });
    input.setAttribute("autocapitalize", "off");
    input.setAttribute("autocorrect", "off");
    input.spellcheck = false;
    return { input, row: el("label", { className: "field" }, label, input) };
  };
  const label = field("command-label", "Label", "Dev server");
  const command = field("command-program", "Program", "npm");
  const args = field("command-args", "Arguments", "run dev -- --port 3000");
  const cwd = field("command-cwd", "Directory (optional)", "~/project");
  const save = el("button", { type: "submit", id: "command-save" }, "Save");
  const cancel = el("button", { type: "button", className: "secondary" }, "Cancel");
  const form = el("form", { className: "command-editor", hidden: true }, label.row, command.row, args.row, cwd.row, save, cancel);
  let editing: string | null = null;
  cancel.onclick = () => (form.hidden = true);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const params: Record<string, unknown> = {
      label: label.input.value.trim(),
      command: command.input.value.trim(),
      args: splitArgs(args.input.value),
      cwd: cwd.input.value.trim() || null,
    };
    if (editing) params.id = editing;
    const answer = await connection.call(editing ? "commands.update" : "commands.add", params);
    if (answer.error) message.replaceChildren(status(`Cannot save the command: ${errorText(answer)}`, "alert"));
    else done();
  };
  return {
    form,
    open(existing: CustomCommand | null) {
      editing = existing?.id ?? null;
      label.input.value = existing?.label ?? "";
      command.input.value = existing?.command ?? "";
      args.input.value = (existing?.args ?? []).map(quoteArg).join(" ");
      cwd.input.value = existing?.cwd ?? "";
      form.hidden = false;
      label.input.focus();
    },
  };
}

/** Shows session `id` of `laptop`, remembered for a reload until the user leaves it. */
function openSession(connection: Connection, laptop: Laptop, id: string, home: () => void): void {
  rememberOpen(laptop, id);
  terminal(connection, laptop, id, () => {
    forgetOpen();
    void reopen(laptop, home);
  });
}

/** After a reload: straight back into the session that was open, if it still is. */
export async function resumeOpen(laptop: Laptop, id: string, home: () => void): Promise<void> {
  show(el("h1", {}, laptop.name), status("Connecting…"));
  try {
    openSession(await connect(laptop), laptop, id, home);
  } catch {
    forgetOpen();
    await reopen(laptop, home);
  }
}

/** Connects to a laptop and shows its sessions. */
export async function reopen(laptop: Laptop, home: () => void): Promise<void> {
  show(el("h1", {}, laptop.name), status("Connecting…"));
  try {
    await sessions(await connect(laptop), laptop, home);
  } catch (error) {
    const back = el("button", { type: "button", className: "secondary" }, "Laptops");
    back.onclick = home;
    const said = error instanceof RefusedError ? error.message : `Cannot connect: ${(error as Error).message}`;
    show(el("h1", {}, laptop.name), status(said, "alert"), back);
  }
}
