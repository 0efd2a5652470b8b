//! `loopsy mcp` driven by the official MCP Python SDK (`cli/tests/mcp/drive.py`)
//! against real daemons: every tool, through this machine's daemon to its
//! peers; bad input of every kind, each a tool error with the server alive
//! after it; no daemon at all. Checks what the tools did on the daemons
//! themselves, not only what they said.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{Loopsy, stderr};
use crate::peers::{daemon, node_id, pair};

const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/drive.py");
const BIN: &str = env!("CARGO_BIN_EXE_loopsy");

/// The tools, in the order `tools/list` must give them.
const TOOLS: &[&str] = &[
    "loopsy_list_peers",
    "loopsy_peer_status",
    "loopsy_execute",
    "loopsy_job_status",
    "loopsy_job_output",
    "loopsy_job_cancel",
    "loopsy_session_start",
    "loopsy_session_list",
    "loopsy_session_read",
    "loopsy_session_screen",
    "loopsy_session_send",
    "loopsy_session_wait",
    "loopsy_session_stop",
    "loopsy_session_remove",
    "loopsy_transfer_file",
    "loopsy_list_remote_files",
    "loopsy_context_set",
    "loopsy_context_get",
    "loopsy_context_list",
    "loopsy_context_delete",
    "loopsy_broadcast_context",
    "loopsy_send_message",
    "loopsy_check_inbox",
    "loopsy_ack_message",
    "loopsy_check_ack",
];

/// Whether the SDK is importable; CI installs it (`pip install mcp`).
pub fn sdk_missing() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import mcp"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: the MCP Python SDK is not installed (pip install mcp==2.3.0)");
    }
    !found
}

/// Runs a scenario of the driver as `loopsy`'s MCP client; its steps by name.
pub fn drive(loopsy: &Loopsy, scenario: &str, opts: &[(&str, &str)]) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(DRIVER)
        .arg(scenario)
        .arg(BIN)
        .arg(loopsy.data())
        .arg(loopsy.dir.path())
        .args(opts.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .expect("run python3");
    let steps: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON step"))
        .collect();
    assert!(
        out.status.success(),
        "the driver failed:\n{}\nsteps: {steps:#?}",
        stderr(&out)
    );
    steps
}

pub fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {steps:#?}"))
}

pub fn ok<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    let s = step(steps, name);
    assert_eq!(s["isError"], false, "{name} failed: {s}");
    &s["structured"]
}

fn failed(steps: &[Value], name: &str) -> String {
    let s = step(steps, name);
    assert_eq!(s["isError"], true, "{name} should be a tool error: {s}");
    s["text"].as_str().expect("text").to_owned()
}

fn check_tool_list(steps: &[Value]) {
    let tools = step(steps, "tools");
    let names: Vec<&str> = tools["names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, TOOLS);
    assert_eq!(
        tools["complete"], true,
        "every tool has a description and both schemas"
    );
}

#[test]
fn every_tool_works_here_and_on_peers_through_the_python_sdk() {
    if sdk_missing() {
        return;
    }
    let (kai, mira, lin) = (daemon(), daemon(), daemon());
    pair(&mira, &kai, "exec,transfer,context,sessions:shell", "exec");
    pair(&lin, &kai, "context", "exec");
    let (mira_id, lin_id) = (node_id(&mira), node_id(&lin));
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let source = kai.dir.path().join("payload.bin");
    std::fs::write(&source, &bytes).expect("write");
    let pulled = kai.dir.path().join("pulled.bin");
    let steps = drive(
        &kai,
        "full",
        &[
            ("peer", &mira_id[..8]),
            ("other", &lin_id),
            ("push_source", source.to_str().expect("path")),
            ("pull_dest", pulled.to_str().expect("path")),
        ],
    );
    check_tool_list(&steps);
    let peers = ok(&steps, "list_peers")["peers"]
        .as_array()
        .expect("peers")
        .clone();
    assert_eq!(
        peers.iter().filter(|p| p["paired"] == true).count(),
        2,
        "{peers:?}"
    );
    // No credential in what an agent sees.
    let seen = serde_json::to_string(&steps).expect("json");
    for secret in [
        crate::peers::credential_for(&kai, &mira_id),
        crate::peers::credential_for(&kai, &lin_id),
    ] {
        assert!(!seen.contains(&secret), "a credential reached the agent");
    }
    assert_eq!(
        ok(&steps, "peer_status")["status"]["nodeId"],
        mira_id.as_str()
    );
    assert_eq!(ok(&steps, "exec_here")["stdout"], "from here\n");
    let on_mira = ok(&steps, "exec_peer");
    let mira_home = std::fs::canonicalize(mira.dir.path()).expect("home");
    assert_eq!(
        on_mira["stdout"].as_str().map(str::trim_end),
        mira_home.to_str(),
        "ran on Mira: {on_mira}"
    );
    // The long command came back as a job, then ended with all its output.
    let long = ok(&steps, "exec_long");
    assert_eq!(long["running"], true, "{long}");
    assert_eq!(long["stdout"], "begun\n");
    let done = ok(&steps, "job_done");
    assert_eq!(
        (done["running"].clone(), done["exit_code"].clone()),
        (false.into(), 0.into())
    );
    assert_eq!(done["stdout"], "begun\nended\n");
    let page = ok(&steps, "job_output");
    assert_eq!(
        (
            page["data"].as_str(),
            page["offset"].as_u64(),
            page["next_offset"].as_u64()
        ),
        (Some("gun\ne"), Some(2), Some(7))
    );
    // Cancelled on Mira: the job ended there.
    assert_eq!(ok(&steps, "job_cancel")["cancelled"], true);
    let jobs = mira.ok(&["status", "--json"]);
    assert!(!jobs.contains("\"sleep\""), "{jobs}");
    // A shell on Mira: typed into, waited on, read, its screen, stopped.
    let waited = ok(&steps, "session_wait");
    assert_eq!(waited["matched"], true, "{waited}");
    assert_eq!(waited["match"], "answer is 42");
    let read = ok(&steps, "session_read");
    assert!(
        read["data"]
            .as_str()
            .expect("data")
            .contains("the answer is 42"),
        "{read}"
    );
    assert!(
        !read["data"].as_str().expect("data").contains('\u{1b}'),
        "escapes stripped"
    );
    let screen = ok(&steps, "session_screen");
    assert!(
        screen["text"]
            .as_str()
            .expect("text")
            .contains("the answer is 42"),
        "{screen}"
    );
    assert_eq!(
        (screen["cols"].as_u64(), screen["rows"].as_u64()),
        (Some(100), Some(30))
    );
    let sessions = ok(&steps, "session_list")["sessions"]
        .as_array()
        .expect("sessions")
        .clone();
    assert!(
        sessions.iter().any(|s| s["name"] == "build"),
        "{sessions:?}"
    );
    let none = ok(&steps, "session_wait_none");
    assert_eq!(
        (none["matched"].clone(), none["timedOut"].clone()),
        (false.into(), true.into())
    );
    let exit = ok(&steps, "session_wait_exit");
    assert_eq!(
        (exit["matched"].clone(), exit["exited"].clone()),
        (false.into(), true.into()),
        "{exit}"
    );
    ok(&steps, "session_remove");
    assert!(!mira.ok(&["list", "--json"]).contains("\"build\""));
    // Files both ways, whole.
    assert_eq!(ok(&steps, "push")["size"], bytes.len());
    assert_eq!(
        std::fs::read(mira.dir.path().join("pushed.bin")).expect("on Mira"),
        bytes
    );
    assert_eq!(std::fs::read(&pulled).expect("pulled"), bytes);
    let listed = ok(&steps, "list_files")["files"]
        .as_array()
        .expect("files")
        .clone();
    assert!(
        listed.iter().any(|f| f["name"] == "pushed.bin"),
        "{listed:?}"
    );
    // Context on the peer, here, and everywhere.
    assert_eq!(ok(&steps, "ctx_get_peer")["value"], "green");
    assert!(mira.ok(&["context", "get", "build"]).contains("green"));
    let here = ok(&steps, "ctx_list_here")["entries"]
        .as_array()
        .expect("entries")
        .clone();
    assert_eq!(here.len(), 1, "{here:?}");
    assert_eq!(ok(&steps, "ctx_get_gone")["found"], false);
    let broadcast = ok(&steps, "broadcast");
    let results = broadcast["peers"].as_array().expect("peers");
    assert_eq!(results.len(), 2, "{broadcast}");
    let refused: Vec<_> = results.iter().filter(|r| r["ok"] == false).collect();
    // Lin granted context and took it; Mira granted context too.
    assert!(refused.is_empty(), "{broadcast}");
    assert_eq!(ok(&steps, "ctx_get_other")["value"], "1.2.3");
    for loopsy in [&kai, &mira, &lin] {
        assert!(loopsy.ok(&["context", "get", "release"]).contains("1.2.3"));
    }
    // Resources and prompts, as the original offers them.
    assert_eq!(
        step(&steps, "resources")["uris"],
        serde_json::json!(["loopsy://peers", "loopsy://status", "loopsy://context"])
    );
    let status: Value = serde_json::from_str(
        step(&steps, "status_resource")["text"]
            .as_str()
            .expect("text"),
    )
    .expect("json");
    assert_eq!(status["nodeId"], node_id(&kai).as_str());
    // The client was attached while it ran (its McpClient in the daemon) and
    // is gone once it ended.
    let clients = status["mcpClients"].as_array().expect("mcpClients").clone();
    assert_eq!(clients.len(), 1, "{status}");
    assert!(
        clients[0]["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{clients:?}"
    );
    crate::harness::wait_until("the McpClient to end with its process", || {
        let now: Value = serde_json::from_str(&kai.ok(&["status", "--json"])).expect("json");
        now["mcpClients"] == serde_json::json!([])
    });
    assert_eq!(
        step(&steps, "prompts")["names"],
        serde_json::json!(["loopsy_help", "loopsy_coordinate"])
    );
    let script = step(&steps, "coordinate")["text"].as_str().expect("text");
    assert!(
        script.contains("run the iOS build") && script.contains("loopsy_send_message to kai"),
        "{script}"
    );
    assert!(
        step(&steps, "help")["text"]
            .as_str()
            .expect("text")
            .contains("task:<id>")
    );
}

#[test]
fn bad_input_gets_tool_errors_and_the_server_lives_on() {
    if sdk_missing() {
        return;
    }
    let (kai, mira, gone) = (daemon(), daemon(), daemon());
    // Mira lets Kai transfer files, not touch its context.
    pair(&mira, &kai, "transfer", "exec");
    // A peer that is paired, then switched off.
    pair(&gone, &kai, "exec", "exec");
    let gone_id = node_id(&gone);
    gone.ok(&["stop"]);
    let pulled = kai.dir.path().join("x");
    let steps = drive(
        &kai,
        "bad-input",
        &[
            ("peer", &node_id(&mira)),
            ("gone", &gone_id),
            ("pull_dest", pulled.to_str().expect("path")),
            ("mode", "legacy"),
        ],
    );
    check_tool_list(&steps);
    for (name, says) in [
        ("unknown_tool", "there is no tool"),
        ("wrong_type", "`command` must be a string"),
        ("missing", "`key` is required"),
        ("unknown_arg", "has no argument `peerApiKey`"),
        ("bad_wait", "`wait_seconds` must be from 0 to 120"),
        ("unknown_peer", "nobody-here"),
        ("no_capability", "needs the context capability"),
        ("denied_command", "(code 3001)"),
        ("outside_roots", "(code 4001)"),
        ("unknown_job", "no job job-999"),
        ("unknown_session", "no-such-session"),
        ("bad_regex", "not a valid regex"),
        ("offline_peer", "cannot reach"),
    ] {
        let text = failed(&steps, name);
        assert!(text.contains(says), "{name}: {text}");
        ok(&steps, &format!("{name}_then"));
    }
    // A pattern that takes a backtracking engine exponential time: answered
    // in its timeout, with no match.
    let worst = ok(&steps, "catastrophic_regex");
    assert_eq!(
        (worst["matched"].clone(), worst["timedOut"].clone()),
        (false.into(), true.into()),
        "{worst}"
    );
    // 20 MB of output: an answer capped to its tail, the total said.
    let huge = ok(&steps, "huge_output");
    assert_eq!(huge["stdout_end"], 20_000_000, "{}", huge["stdout_end"]);
    assert!(huge["stdout"].as_str().expect("text").len() <= 40_000);
    assert_eq!(huge["truncated"], true);
    assert!(!pulled.exists());
}

#[test]
fn without_a_daemon_it_serves_and_every_tool_says_how_to_start_one() {
    if sdk_missing() {
        return;
    }
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    for mode in ["legacy", "auto"] {
        let steps = drive(&loopsy, "no-daemon", &[("mode", mode)]);
        check_tool_list(&steps);
        for name in ["context_get", "list_peers", "execute"] {
            let text = failed(&steps, name);
            assert!(
                text.contains("the loopsy daemon is not running: run `loopsy start`"),
                "{mode} {name}: {text}"
            );
        }
    }
    assert!(!Path::new(&loopsy.path("loopsyd.sock")).exists());
}

#[test]
fn a_client_that_goes_away_leaves_no_job_running() {
    if sdk_missing() {
        return;
    }
    let loopsy = Loopsy::started();
    // A duration no other test sleeps for, to find the process by.
    let seconds = "31.4159";
    let steps = drive(&loopsy, "orphan", &[("seconds", seconds)]);
    assert_eq!(ok(&steps, "started")["running"], true);
    // The driver has exited, and `loopsy mcp` with it: the command is stopped.
    crate::harness::wait_until("the agent's command to be stopped", || {
        !Command::new("pgrep")
            .args(["-f", &format!("sleep {seconds}")])
            .status()
            .is_ok_and(|s| s.success())
    });
}

const INSPECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/mcp/node_modules/.bin/mcp-inspector"
);

/// The MCP Inspector CLI against `loopsy mcp`: one method, its JSON answer.
fn inspect(loopsy: &Loopsy, method_args: &[&str]) -> Value {
    let out = Command::new(INSPECTOR)
        .arg("--cli")
        .arg(BIN)
        .arg("--data-dir")
        .arg(loopsy.data())
        .arg("mcp")
        .args(method_args)
        .env("HOME", loopsy.dir.path())
        .output()
        .expect("run the inspector");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "the inspector printed no JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        )
    })
}

#[test]
fn the_mcp_inspector_lists_the_tools_and_calls_them() {
    if !Path::new(INSPECTOR).exists() {
        eprintln!("skipped: the MCP Inspector is not installed (cd cli/tests/mcp && npm ci)");
        return;
    }
    let loopsy = Loopsy::started();
    let listed = inspect(&loopsy, &["--method", "tools/list"]);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, TOOLS);
    let set = inspect(
        &loopsy,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "loopsy_context_set",
            "--tool-arg",
            "key=inspected",
            "value=yes",
        ],
    );
    assert_ne!(set["isError"], true, "{set}");
    let got = inspect(
        &loopsy,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "loopsy_context_get",
            "--tool-arg",
            "key=inspected",
        ],
    );
    assert_eq!(got["structuredContent"]["value"], "yes", "{got}");
    // A tool error is a result the Inspector accepts, not a protocol error.
    loopsy.ok(&["stop"]);
    let down = inspect(
        &loopsy,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "loopsy_context_get",
            "--tool-arg",
            "key=inspected",
        ],
    );
    assert_eq!(down["isError"], true, "{down}");
    assert!(
        down["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("run `loopsy start`")),
        "{down}"
    );
}
