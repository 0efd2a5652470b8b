//! The `loopsy_*` tools as an agent sees them, in a stable order: each with a
//! description written for an agent, a JSON Schema for its input and one for
//! its structured output. No schema has a credential in it: peers are named
//! by hostname, node id or a unique prefix, and this daemon holds their keys.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

fn object(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

fn tool(name: &'static str, description: &'static str, input: Value, output: Value) -> Tool {
    let mut input = input;
    input["type"] = json!("object");
    input["additionalProperties"] = json!(false);
    let mut output = output;
    output["type"] = json!("object");
    Tool::new(name, description, object(input)).with_raw_output_schema(object(output))
}

fn peer_arg(what: &str) -> Value {
    json!({"type": "string", "description": format!(
        "The peer {what}: its hostname, node id or a unique prefix of the node id (see loopsy_list_peers). Leave out for this machine."
    )})
}

fn job_output_schema() -> Value {
    json!({"properties": {
        "job_id": {"type": "string"},
        "running": {"type": "boolean"},
        "exit_code": {"type": ["integer", "null"]},
        "signal": {"type": ["integer", "null"]},
        "timed_out": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "stdout_offset": {"type": "integer", "description": "Byte offset of the first byte of stdout returned"},
        "stdout_end": {"type": "integer", "description": "Bytes of stdout produced so far"},
        "stderr_offset": {"type": "integer"},
        "stderr_end": {"type": "integer"},
        "truncated": {"type": "boolean", "description": "Earlier output was left out; page with loopsy_job_output"}
    }, "required": ["job_id", "running", "stdout", "stderr"]})
}

fn session_id() -> Value {
    json!({"type": "string", "description": "The session's id (from loopsy_session_start or _list), its name, or a unique id prefix"})
}

fn job_id_input() -> Value {
    json!({"properties": {"job_id": {"type": "string", "description": "The id loopsy_execute returned, like job-3"}},
           "required": ["job_id"]})
}

/// Every tool, in the order `tools/list` gives them.
pub fn all() -> Vec<Tool> {
    let read_only = ToolAnnotations::new().read_only(true);
    vec![
        tool(
            "loopsy_list_peers",
            "List the machines this one knows: paired loopsy daemons and TypeScript Loopsy peers (with online state, last seen, version and what each side may do), and daemons heard on the LAN but not paired (which cannot be called). Use the hostname or node id from here as `peer` in the other tools.",
            json!({"properties": {}}),
            json!({"properties": {"peers": {"type": "array", "items": {"type": "object"}}}, "required": ["peers"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_peer_status",
            "Ask a paired peer how it is: hostname, version, platform, uptime, running jobs and sessions.",
            json!({"properties": {"peer": peer_arg("to ask")}, "required": ["peer"]}),
            json!({"properties": {"peer": {"type": "string"}, "status": {"type": "object"}}, "required": ["peer", "status"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_execute",
            "Run a program (no shell: `command` is the program, `args` its arguments) on this machine or on a peer, and return its output. Waits up to `wait_seconds` (default 20); if it is still running then, you get a `job_id` and the output so far: check it later with loopsy_job_status, page its output with loopsy_job_output, stop it with loopsy_job_cancel. Output is capped (about 10k tokens by default), keeping the end. For a command you need to watch or type into (a build, a REPL, an agent), use loopsy_session_start instead.",
            json!({"properties": {
                "command": {"type": "string", "description": "The program, on PATH or as a path"},
                "args": {"type": "array", "items": {"type": "string"}, "description": "Its arguments, one per item"},
                "cwd": {"type": "string", "description": "Working directory on the machine that runs it"},
                "peer": peer_arg("to run it on"),
                "timeout_seconds": {"type": "number", "description": "Stop the command after this long (the daemon's execution.maxTimeout caps it)"},
                "wait_seconds": {"type": "number", "minimum": 0, "maximum": 120, "description": "How long to wait before returning a job id (default 20, at most 120)"},
                "max_bytes": {"type": "integer", "minimum": 1, "description": "Most output bytes to return (default 40000, at most 1 MiB)"}
            }, "required": ["command"]}),
            job_output_schema(),
        ),
        tool(
            "loopsy_job_status",
            "The state of a job loopsy_execute started: running or ended (exit code, signal, timed out), and the end of its output.",
            job_id_input(),
            job_output_schema(),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_job_output",
            "A page of a job's output from a byte offset: use the offsets other job tools return to read what was cut. The last 4 MiB of each stream are kept.",
            json!({"properties": {
                "job_id": {"type": "string"},
                "stream": {"type": "string", "enum": ["stdout", "stderr"], "description": "Default stdout"},
                "offset": {"type": "integer", "minimum": 0, "description": "Byte offset to start at (default 0: the oldest kept)"},
                "max_bytes": {"type": "integer", "minimum": 1, "description": "Default 40000, at most 1 MiB"}
            }, "required": ["job_id"]}),
            json!({"properties": {
                "job_id": {"type": "string"}, "stream": {"type": "string"}, "data": {"type": "string"},
                "offset": {"type": "integer"}, "next_offset": {"type": "integer"}, "end": {"type": "integer"},
                "running": {"type": "boolean"}
            }, "required": ["job_id", "data", "offset", "next_offset", "end", "running"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_job_cancel",
            "Stop a running job (the command is killed where it runs).",
            job_id_input(),
            json!({"properties": {"job_id": {"type": "string"}, "cancelled": {"type": "boolean"}, "note": {"type": "string"}}, "required": ["job_id", "cancelled"]}),
        ),
        tool(
            "loopsy_session_start",
            "Start a real terminal (PTY) session here or on a peer: a shell (default), an agent (`agent`: claude, codex, gemini, opencode) or a program (`command` + `args`). It keeps running after this call; type into it with loopsy_session_send and watch it with loopsy_session_wait, _read and _screen. Use it for builds, servers, REPLs and anything you need to watch or answer.",
            json!({"properties": {
                "peer": peer_arg("to start it on"),
                "agent": {"type": "string", "description": "shell, claude, codex, gemini or opencode"},
                "command": {"type": "string", "description": "A program instead of an agent (on PATH; no shell)"},
                "args": {"type": "array", "items": {"type": "string"}},
                "cwd": {"type": "string"},
                "name": {"type": "string", "description": "A name to find it by later"},
                "cols": {"type": "integer", "minimum": 1, "maximum": 1000},
                "rows": {"type": "integer", "minimum": 1, "maximum": 1000}
            }}),
            json!({"properties": {"session_id": {"type": "string"}, "session": {"type": "object"}}, "required": ["session_id"]}),
        ),
        tool(
            "loopsy_session_list",
            "List the terminal sessions here or on a peer (the ones you may see): id, name, command, running or exited (with its code), and the output offset.",
            json!({"properties": {"peer": peer_arg("to list")}}),
            json!({"properties": {"sessions": {"type": "array", "items": {"type": "object"}}}, "required": ["sessions"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_session_read",
            "A session's output from a byte offset (default: the oldest kept), with escape sequences stripped unless `strip_ansi` is false; continue from `nextOffset`. Capped at `max_bytes` (default 40000).",
            json!({"properties": {
                "session_id": session_id(), "peer": peer_arg("the session is on"),
                "from_offset": {"type": "integer", "minimum": 0},
                "max_bytes": {"type": "integer", "minimum": 1, "description": "Default 40000, at most 1 MiB"},
                "strip_ansi": {"type": "boolean", "description": "Default true"}
            }, "required": ["session_id"]}),
            json!({"properties": {"data": {"type": "string"}, "offset": {"type": "integer"}, "nextOffset": {"type": "integer"},
                "end": {"type": "integer"}, "exited": {"type": "boolean"}}, "required": ["data", "offset", "nextOffset", "end"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_session_screen",
            "The session's screen as its terminal shows it now, as text (what a person looking at it would read: a full-screen program's current view, a prompt waiting for an answer).",
            json!({"properties": {"session_id": session_id(), "peer": peer_arg("the session is on")}, "required": ["session_id"]}),
            json!({"properties": {"text": {"type": "string"}, "rows": {"type": "integer"}, "cols": {"type": "integer"},
                "cursor": {"type": "object"}, "offset": {"type": "integer"}, "exited": {"type": "boolean"}}, "required": ["text", "offset"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_session_send",
            "Type text into a session (a newline is Enter; `enter: true` adds one). Returns the output offset just before, to pass as `from_offset` to loopsy_session_wait so its answer is not missed.",
            json!({"properties": {
                "session_id": session_id(), "peer": peer_arg("the session is on"),
                "text": {"type": "string"},
                "enter": {"type": "boolean", "description": "Press Enter after the text (default false)"}
            }, "required": ["session_id", "text"]}),
            json!({"properties": {"session_id": {"type": "string"}, "offset": {"type": "integer"}, "sent": {"type": "integer"}}, "required": ["session_id", "offset"]}),
        ),
        tool(
            "loopsy_session_wait",
            "Wait until a session's output (escapes stripped) matches `pattern` (a regular expression, Rust syntax, linear time), the session exits, or `timeout_seconds` pass (default 60, at most 600). Reads from `from_offset` (default: output from now on). Returns what matched and `nextOffset`. Use it instead of polling.",
            json!({"properties": {
                "session_id": session_id(), "peer": peer_arg("the session is on"),
                "pattern": {"type": "string", "description": "Leave out to wait for the exit"},
                "from_offset": {"type": "integer", "minimum": 0},
                "timeout_seconds": {"type": "number", "minimum": 0, "maximum": 600}
            }, "required": ["session_id"]}),
            json!({"properties": {"matched": {"type": "boolean"}, "match": {"type": ["string", "null"]},
                "timedOut": {"type": "boolean"}, "exited": {"type": "boolean"}, "exitCode": {"type": ["integer", "null"]},
                "nextOffset": {"type": "integer"}}, "required": ["matched", "timedOut", "nextOffset"]}),
        ),
        tool(
            "loopsy_session_stop",
            "Stop a session's program (hang-up, then terminate, then kill). The session stays listed, with its output, until removed.",
            json!({"properties": {"session_id": session_id(), "peer": peer_arg("the session is on")}, "required": ["session_id"]}),
            json!({"properties": {"session_id": {"type": "string"}, "stopped": {"type": "boolean"}}, "required": ["session_id", "stopped"]}),
        ),
        tool(
            "loopsy_session_remove",
            "Forget a session (stopping it if it still runs) and its output.",
            json!({"properties": {"session_id": session_id(), "peer": peer_arg("the session is on")}, "required": ["session_id"]}),
            json!({"properties": {"session_id": {"type": "string"}, "removed": {"type": "boolean"}}, "required": ["session_id", "removed"]}),
        ),
        tool(
            "loopsy_transfer_file",
            "Copy a file between this machine and a peer, streamed (any size) and checked by SHA-256. `push` sends this machine's `source_path` to the peer's `dest_path`; `pull` fetches the peer's `source_path` into this machine's `dest_path` (a directory keeps the file's name). Paths may start with ~ (each machine's home); each machine's transfer roots decide what is allowed.",
            json!({"properties": {
                "direction": {"type": "string", "enum": ["push", "pull"]},
                "peer": peer_arg("on the other end (required)"),
                "source_path": {"type": "string"},
                "dest_path": {"type": "string"}
            }, "required": ["direction", "peer", "source_path", "dest_path"]}),
            json!({"properties": {"direction": {"type": "string"}, "peer": {"type": "string"}, "size": {"type": "integer"},
                "sha256": {"type": "string"}, "path": {"type": "string"}}, "required": ["direction", "peer", "size"]}),
        ),
        tool(
            "loopsy_list_remote_files",
            "List a directory on a peer (names, sizes, kinds, modification times).",
            json!({"properties": {"peer": peer_arg("to look on (required)"), "path": {"type": "string", "description": "A directory; ~ is the peer's home"}}, "required": ["peer", "path"]}),
            json!({"properties": {"peer": {"type": "string"}, "path": {"type": "string"}, "files": {"type": "array", "items": {"type": "object"}}}, "required": ["peer", "files"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_context_set",
            "Store a value under a key in the shared context of this machine or a peer (a key/value store every paired agent can read), optionally expiring after `ttl_seconds`.",
            json!({"properties": {"key": {"type": "string"}, "value": {"type": "string"},
                "ttl_seconds": {"type": "integer", "minimum": 1, "description": "Forget it after this long"},
                "peer": peer_arg("whose context to write")}, "required": ["key", "value"]}),
            json!({"properties": {"key": {"type": "string"}, "entry": {"type": "object"}}, "required": ["key"]}),
        ),
        tool(
            "loopsy_context_get",
            "Read a key from the shared context of this machine or a peer.",
            json!({"properties": {"key": {"type": "string"}, "peer": peer_arg("whose context to read")}, "required": ["key"]}),
            json!({"properties": {"key": {"type": "string"}, "found": {"type": "boolean"}, "value": {}, "entry": {"type": ["object", "null"]}}, "required": ["key", "found"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_context_list",
            "List the entries of the shared context of this machine or a peer, optionally only keys starting with `prefix`.",
            json!({"properties": {"prefix": {"type": "string"}, "peer": peer_arg("whose context to list")}}),
            json!({"properties": {"entries": {"type": "array", "items": {"type": "object"}}}, "required": ["entries"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_context_delete",
            "Delete a key from the shared context of this machine or a peer.",
            json!({"properties": {"key": {"type": "string"}, "peer": peer_arg("whose context to change")}, "required": ["key"]}),
            json!({"properties": {"key": {"type": "string"}, "deleted": {"type": "boolean"}}, "required": ["key", "deleted"]}),
        ),
        tool(
            "loopsy_broadcast_context",
            "Store a key and value here and on every paired peer that is online, and say for each peer whether it worked.",
            json!({"properties": {"key": {"type": "string"}, "value": {"type": "string"},
                "ttl_seconds": {"type": "integer", "minimum": 1}}, "required": ["key", "value"]}),
            json!({"properties": {"key": {"type": "string"}, "local": {"type": "boolean"},
                "peers": {"type": "array", "items": {"type": "object", "properties": {
                    "peer": {"type": "string"}, "ok": {"type": "boolean"}, "error": {"type": "string"}}}}},
                "required": ["key", "local", "peers"]}),
        ),
        tool(
            "loopsy_send_message",
            "Send a message to the agent on a peer: it lands in that machine's inbox (loopsy_check_inbox there). `type` is chat (default), request, response or broadcast. Returns the message id; loopsy_check_ack tells when the peer has handled it. See the loopsy_coordinate prompt for the conventions.",
            json!({"properties": {
                "peer": peer_arg("to send to (required)"),
                "type": {"type": "string", "enum": ["chat", "request", "response", "ack", "broadcast"]},
                "body": {"type": "string"}
            }, "required": ["peer", "body"]}),
            json!({"properties": {"id": {"type": "string"}, "to": {"type": "string"}, "inboxKey": {"type": "string"},
                "envelope": {"type": "object"}}, "required": ["id", "to", "inboxKey"]}),
        ),
        tool(
            "loopsy_check_inbox",
            "The messages other machines' agents sent to this one, oldest first, each with its key and id for loopsy_ack_message.",
            json!({"properties": {}}),
            json!({"properties": {"messages": {"type": "array", "items": {"type": "object"}}, "invalid": {"type": "integer"}},
                "required": ["messages"]}),
        )
        .annotate(read_only.clone()),
        tool(
            "loopsy_ack_message",
            "Acknowledge a message once handled: tells its sender (it sets ack:<this machine> there) and removes it from the inbox.",
            json!({"properties": {
                "message_key": {"type": "string", "description": "The key from loopsy_check_inbox (inbox:<me>:<id>)"},
                "message_id": {"type": "string"},
                "peer": peer_arg("that sent it (default: the message's sender)")
            }, "required": ["message_key", "message_id"]}),
            json!({"properties": {"acked": {"type": "string"}, "key": {"type": "string"}, "deleted": {"type": "boolean"}},
                "required": ["acked"]}),
        ),
        tool(
            "loopsy_check_ack",
            "The last message id a peer has acknowledged from this machine (its high-water mark), or none yet.",
            json!({"properties": {"peer": peer_arg("that received your messages (required)")}, "required": ["peer"]}),
            json!({"properties": {"peer": {"type": "string"}, "acked": {"type": ["string", "null"]}}, "required": ["peer", "acked"]}),
        )
        .annotate(read_only),
    ]
}
