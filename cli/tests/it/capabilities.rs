//! Capabilities, attacked with peer keys over the real LAN API: what a key
//! without session rights, with `sessions:agents` and with `sessions:shell` can
//! reach, whose sessions it sees, the session caps, and the auto-approve gate's
//! refusal of every spelling of an agent's "act without asking" mode.

use serde_json::{Value, json};

use crate::harness::*;

const PLAIN: &str = "1111111111111111222222222222222233333333333333334444444444444444";
const AGENTS: &str = "5555555555555555666666666666666677777777777777778888888888888888";
const SHELL: &str = "99999999999999990000000000000000aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb";
const ALL: &str = "ccccccccccccccccddddddddddddddddeeeeeeeeeeeeeeeeffffffffffffffff";

/// A daemon with four peers: `plain` (no list: the default set), `agents`,
/// `shell` and `all`; fake claude, codex and gemini on its PATH.
fn daemon(config: impl FnOnce(String) -> String) -> Loopsy {
    let mut loopsy = Loopsy::new();
    for agent in ["claude", "codex", "gemini"] {
        loopsy.fake_program(agent, "echo \"agent-args:$*\"; sleep 30");
    }
    loopsy.ok(&["init"]);
    loopsy.write_config(|text| {
        let text = with_capable_peers(
            text,
            &[
                ("agents", AGENTS, &["sessions:agents"]),
                ("shell", SHELL, &["sessions:shell", "exec"]),
                ("all", ALL, &["sessions:all", "sessions:shell"]),
            ],
        );
        let text = text.replace(
            "allowedKeys:",
            &format!("allowedKeys:\n    plain: \"{PLAIN}\""),
        );
        config(text)
    });
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    loopsy
}

fn rpc(loopsy: &Loopsy, key: &str, method: &str, params: Value) -> Value {
    rpc_with_key(loopsy, key, method, params)
}

fn code(answer: &Value) -> Value {
    answer["error"]["data"]["loopsyCode"].clone()
}

fn status(answer: &Value) -> Value {
    answer["error"]["data"]["httpStatus"].clone()
}

#[test]
fn a_key_without_session_rights_reaches_no_session() {
    let loopsy = daemon(|t| t);
    let mut socket = Socket::connect(&loopsy);
    let owners = socket.request(
        "session.start",
        json!({ "command": "sleep", "args": ["30"] }),
    );
    let owners = owners["result"]["id"]
        .as_str()
        .expect("owner's session")
        .to_owned();
    for (method, params) in [
        ("session.start", json!({})),
        ("session.start", json!({ "agent": "claude" })),
        ("session.list", json!({})),
        ("session.agents", json!({})),
        ("session.input", json!({ "id": owners, "data": "x" })),
        ("session.stop", json!({ "id": owners })),
        ("session.remove", json!({ "id": owners })),
    ] {
        let answer = rpc(&loopsy, PLAIN, method, params);
        assert_eq!(status(&answer), 403, "{method}: {answer}");
    }
    // The default set still holds exec, transfer and context.
    let ran = rpc(&loopsy, PLAIN, "exec.run", json!({ "command": "true" }));
    assert_eq!(ran["result"]["exitCode"], 0, "{ran}");
    // The owner's session was not touched.
    let listed = socket.request("session.list", json!({}));
    assert_eq!(listed["result"]["sessions"][0]["alive"], true);
    // And a key granted only sessions has no exec.
    let refused = rpc(&loopsy, AGENTS, "exec.run", json!({ "command": "true" }));
    assert_eq!(status(&refused), 403, "{refused}");
}

#[test]
fn sessions_agents_starts_agents_and_nothing_else() {
    let loopsy = daemon(|t| t);
    let started = rpc(
        &loopsy,
        AGENTS,
        "session.start",
        json!({ "agent": "claude", "args": ["--continue"] }),
    );
    assert_eq!(started["result"]["alive"], true, "{started}");
    for params in [
        json!({}),
        json!({ "agent": "shell" }),
        json!({ "command": "sh", "args": ["-c", "touch owned"] }),
        json!({ "command": "claude" }),
        json!({ "agent": "claude", "env": { "LD_PRELOAD": "/tmp/x.so" } }),
    ] {
        let answer = rpc(&loopsy, AGENTS, "session.start", params.clone());
        assert_eq!(code(&answer), 7006, "{params}: {answer}");
    }
    // A custom command as the owner configured it, but no arguments added to it.
    let mut socket = Socket::connect(&loopsy);
    let added = socket.request(
        "commands.add",
        json!({ "label": "sleeper", "command": "sleep", "args": ["30"] }),
    );
    let id = added["result"]["customCommands"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let custom = rpc(
        &loopsy,
        AGENTS,
        "session.start",
        json!({ "customCommandId": id }),
    );
    assert_eq!(custom["result"]["alive"], true, "{custom}");
    let extended = rpc(
        &loopsy,
        AGENTS,
        "session.start",
        json!({ "customCommandId": id, "args": ["; rm -rf ~"] }),
    );
    assert_eq!(code(&extended), 7006, "{extended}");
}

#[test]
fn a_peer_sees_and_drives_only_its_own_sessions() {
    let loopsy = daemon(|t| t);
    let mut socket = Socket::connect(&loopsy);
    let owners = socket.request(
        "session.start",
        json!({ "command": "sleep", "args": ["30"], "name": "owners" }),
    );
    let owners = owners["result"]["id"]
        .as_str()
        .expect("owner's session")
        .to_owned();
    let own = rpc(
        &loopsy,
        SHELL,
        "session.start",
        json!({ "command": "sleep", "args": ["30"] }),
    );
    let own = own["result"]["id"]
        .as_str()
        .expect("peer's session")
        .to_owned();

    let listed = rpc(&loopsy, SHELL, "session.list", json!({}));
    let ids: Vec<&str> = listed["result"]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec![own.as_str()], "{listed}");
    // By id, by name, by prefix: the owner's session does not exist for this peer.
    for target in [owners.as_str(), "owners", &owners[..8]] {
        for method in [
            "session.input",
            "session.stop",
            "session.remove",
            "session.signal",
        ] {
            let params = json!({ "id": target, "data": "rm -rf ~\n" });
            let answer = rpc(&loopsy, SHELL, method, params);
            assert_eq!(code(&answer), 7001, "{method} {target}: {answer}");
        }
    }
    // A name already taken says so, without describing the other's session.
    let clash = rpc(
        &loopsy,
        SHELL,
        "session.start",
        json!({ "command": "sleep", "args": ["30"], "name": "owners" }),
    );
    let message = clash["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("already running") && !message.contains(&owners[..8]),
        "{clash}"
    );
    let still = socket.request("session.list", json!({}));
    assert!(still.to_string().contains(&owners));
    // sessions:all sees both.
    let everything = rpc(&loopsy, ALL, "session.list", json!({}));
    let count = everything["result"]["sessions"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(count, 2, "{everything}");
}

#[test]
fn session_caps_hold_per_principal_and_overall() {
    let loopsy = daemon(|t| {
        t.replace("maxSessions: 64", "maxSessions: 3")
            .replace("maxSessionsPerPrincipal: 16", "maxSessionsPerPrincipal: 2")
    });
    let sleep = json!({ "command": "sleep", "args": ["30"] });
    for _ in 0..2 {
        let ok = rpc(&loopsy, SHELL, "session.start", sleep.clone());
        assert_eq!(ok["result"]["alive"], true, "{ok}");
    }
    let third = rpc(&loopsy, SHELL, "session.start", sleep.clone());
    assert_eq!(code(&third), 7008, "{third}");
    assert_eq!(status(&third), 429);
    let other = rpc(&loopsy, ALL, "session.start", sleep.clone());
    assert_eq!(other["result"]["alive"], true, "{other}");
    let mut socket = Socket::connect(&loopsy);
    let full = socket.request("session.start", sleep);
    assert_eq!(full["error"]["data"]["loopsyCode"], 7008, "{full}");
}

#[test]
fn the_command_guard_holds_for_sessions_and_starts_are_audited() {
    let loopsy = daemon(|t| t);
    let denied = rpc(
        &loopsy,
        SHELL,
        "session.start",
        json!({ "command": "rm", "args": ["-rf", "/tmp/x"] }),
    );
    assert_eq!(code(&denied), 7006, "{denied}");
    let wrapped = rpc(
        &loopsy,
        SHELL,
        "session.start",
        json!({ "command": "sh", "args": ["-c", "rm -rf /tmp/x"] }),
    );
    assert_eq!(code(&wrapped), 7006, "{wrapped}");
    let started = rpc(
        &loopsy,
        SHELL,
        "session.start",
        json!({ "command": "sleep", "args": ["29"] }),
    );
    assert_eq!(started["result"]["alive"], true, "{started}");
    rpc(
        &loopsy,
        SHELL,
        "exec.run",
        json!({ "command": "echo", "args": ["audited-arg"] }),
    );
    wait_until("the starts to be audited with their command lines", || {
        let log = std::fs::read_to_string(loopsy.path("logs/audit.jsonl")).unwrap_or_default();
        let has = |op: &str, arg: &str| {
            log.lines().any(|line| {
                let record: Value = serde_json::from_str(line).unwrap_or_default();
                record["op"] == op && record["started"]["args"].to_string().contains(arg)
            })
        };
        has("session.start", "29") && has("exec.run", "audited-arg") && has("session.start", "-rf")
    });
}

/// A peer that may only start agents picks their directory only inside the
/// path policy: not the data dir, not a denied path, not outside the roots.
#[test]
fn a_session_cwd_outside_the_paths_is_refused() {
    let loopsy = daemon(|t| t);
    let home = std::fs::canonicalize(loopsy.dir.path()).expect("home");
    std::fs::create_dir_all(home.join(".ssh")).expect(".ssh");
    std::fs::create_dir_all(home.join("project")).expect("project");
    for cwd in [
        loopsy.path("").display().to_string(),
        "~/data".to_owned(),
        "~/.ssh".to_owned(),
        "/etc".to_owned(),
        "~/project/../..".to_owned(),
    ] {
        let answer = rpc(
            &loopsy,
            AGENTS,
            "session.start",
            json!({ "agent": "claude", "cwd": cwd }),
        );
        assert_eq!(code(&answer), 7006, "{cwd}: {answer}");
        assert_eq!(status(&answer), 403, "{cwd}: {answer}");
    }
    let inside = rpc(
        &loopsy,
        AGENTS,
        "session.start",
        json!({ "agent": "claude", "cwd": "~/project" }),
    );
    assert_eq!(inside["result"]["alive"], true, "{inside}");
    assert_eq!(
        inside["result"]["cwd"],
        home.join("project").display().to_string(),
        "{inside}"
    );
    // A shell can cd anywhere, so whoever may start one is not held to the paths.
    let shell = rpc(
        &loopsy,
        SHELL,
        "session.start",
        json!({ "command": "sleep", "args": ["30"], "cwd": "/etc" }),
    );
    assert_eq!(shell["result"]["alive"], true, "{shell}");
}

/// Every spelling a review got past the old literal-string check, over the real API,
/// from a peer that may start agents and shells but was not granted auto-approve.
#[test]
fn no_spelling_of_auto_approve_gets_through_without_the_grant() {
    let loopsy = daemon(|t| t);
    let attempts = [
        json!({ "agent": "claude", "args": ["--dangerously-skip-permissions"] }),
        json!({ "agent": "claude", "args": ["--dangerously-skip-permissions=true"] }),
        json!({ "agent": "claude", "args": ["--permission-mode", "bypassPermissions"] }),
        json!({ "agent": "claude", "args": ["--permission-mode=bypassPermissions"] }),
        json!({ "agent": "claude", "args": ["--settings", r#"{"permissions":{"defaultMode":"bypassPermissions"}}"#] }),
        json!({ "agent": "gemini", "args": ["--approval-mode=yolo"] }),
        json!({ "agent": "gemini", "args": ["-yd"] }),
        json!({ "agent": "gemini", "args": ["--yolo=true"] }),
        json!({ "agent": "gemini", "args": ["-y"] }),
        json!({ "agent": "gemini", "args": ["-i", "--yolo"] }),
        json!({ "agent": "opencode", "args": ["-p", "--dangerously-skip-permissions"] }),
        json!({ "command": "sh", "args": ["-c", "claude>/dev/null --dangerously-skip-permissions"] }),
        json!({ "command": "script", "args": ["-qc", "claude --dangerously-skip-permissions", "/dev/null"] }),
        json!({ "agent": "codex", "args": ["-a", "never", "-s", "danger-full-access"] }),
        json!({ "agent": "codex", "args": ["-c", "approval_policy=\"never\""] }),
        json!({ "agent": "codex", "args": ["--full-auto"] }),
        json!({ "agent": "codex", "args": ["--dangerously-bypass-approvals-and-sandbox"] }),
        json!({ "agent": "codex", "args": ["exec", "--full-auto", "do it"] }),
        json!({ "command": "claude", "args": ["--dangerously-skip-permissions"] }),
        json!({ "command": "sh", "args": ["-c", "claude --dangerously-skip-permissions"] }),
        json!({ "command": "env", "args": ["gemini", "--yolo"] }),
        json!({ "command": "python3", "args": ["-c", "import os; os.execlp('claude', 'claude')"] }),
        json!({ "agent": "claude", "autoApprove": true }),
    ];
    for attempt in attempts {
        let answer = rpc(&loopsy, SHELL, "session.start", attempt.clone());
        assert_eq!(code(&answer), 7006, "{attempt}: {answer}");
    }
    let vetted = rpc(
        &loopsy,
        SHELL,
        "session.start",
        json!({ "agent": "claude", "args": ["--model=opus", "fix the failing test"] }),
    );
    assert_eq!(vetted["result"]["alive"], true, "{vetted}");
}
