//! `loopsy mcp add|remove|status` against stand-in `claude`, `codex`,
//! `gemini` and `opencode` programs on PATH that record their arguments and
//! keep a registration as the real ones would, and a temp opencode config.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::harness::Loopsy;

const STAND_IN: &str = r#"#!/bin/sh
name=$(basename "$0")
echo "$*" >> "$STANDIN_DIR/$name.log"
state="$STANDIN_DIR/$name.registered"
case "$1" in
  --version) echo "$name 9.9.9" ;;
  mcp) case "$2" in
      add) shift 2; echo "$*" > "$state" ;;
      remove) rm -f "$state" ;;
      list) if [ -f "$state" ]; then printf 'loopsy: '; cat "$state"; else echo "No MCP servers configured."; fi ;;
    esac ;;
esac
"#;

fn log(dir: &Path, agent: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{agent}.log"))).unwrap_or_default()
}

fn states(loopsy: &Loopsy, args: &[&str]) -> Value {
    let mut all = vec!["mcp"];
    all.extend_from_slice(args);
    all.push("--json");
    let out: Value = serde_json::from_str(&loopsy.ok(&all)).expect("json");
    let agents = out["agents"].as_array().expect("agents");
    Value::Object(
        agents
            .iter()
            .map(|a| {
                (
                    a["agent"].as_str().expect("agent").to_owned(),
                    a["state"].clone(),
                )
            })
            .collect(),
    )
}

#[test]
fn agents_are_registered_once_through_their_own_commands_and_opencode_keeps_its_keys() {
    let mut loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let bin = loopsy.dir.path().join("stand-ins");
    std::fs::create_dir(&bin).expect("dir");
    for agent in ["claude", "codex", "gemini", "opencode"] {
        let path = bin.join(agent);
        std::fs::write(&path, STAND_IN).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    loopsy.env.push(("PATH".into(), path));
    loopsy
        .env
        .push(("STANDIN_DIR".into(), bin.display().to_string()));
    let config = loopsy.dir.path().join(".config/opencode/opencode.json");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("mkdir");
    let theirs = json!({"$schema": "https://opencode.ai/config.json", "theme": "dark",
        "mcp": {"other": {"type": "remote", "url": "http://127.0.0.1:9/x"}}});
    std::fs::write(&config, theirs.to_string()).expect("write");

    let none = json!({"claude": "not-registered", "codex": "not-registered",
        "gemini": "not-registered", "opencode": "not-registered"});
    assert_eq!(states(&loopsy, &["status"]), none);
    // A dry run changes nothing.
    states(&loopsy, &["add", "--dry-run"]);
    assert_eq!(states(&loopsy, &["status"]), none);
    assert!(!log(&bin, "claude").contains("mcp add"));

    let all = json!({"claude": "registered", "codex": "registered",
        "gemini": "registered", "opencode": "registered"});
    assert_eq!(states(&loopsy, &["add"]), all);
    let exe = env!("CARGO_BIN_EXE_loopsy");
    let data = std::path::absolute(loopsy.data()).expect("abs");
    let server = format!("{exe} --data-dir {} mcp", data.display());
    assert!(
        log(&bin, "claude").contains(&format!("mcp add --scope user loopsy -- {server}")),
        "{}",
        log(&bin, "claude")
    );
    assert!(log(&bin, "codex").contains(&format!("mcp add loopsy -- {server}")));
    assert!(log(&bin, "gemini").contains(&format!("mcp add --scope user loopsy {server}")));
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("read")).expect("json");
    assert_eq!(merged["theme"], "dark");
    assert_eq!(merged["$schema"], theirs["$schema"]);
    assert_eq!(merged["mcp"]["other"], theirs["mcp"]["other"]);
    assert_eq!(
        merged["mcp"]["loopsy"],
        json!({"type": "local", "command": [exe, "--data-dir", data.display().to_string(), "mcp"], "enabled": true})
    );

    // Doctor knows.
    let doctor: Value = serde_json::from_str(&String::from_utf8_lossy(
        &loopsy.run(&["doctor", "--json"]).stdout,
    ))
    .expect("json");
    let mcp: Vec<&Value> = doctor["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("mcp: ")))
        .collect();
    assert_eq!(mcp.len(), 4, "{doctor}");
    assert!(mcp.iter().all(|c| c["level"] == "ok"), "{mcp:?}");
    // Again: nothing to do, nothing run.
    assert_eq!(states(&loopsy, &["add"]), all);
    assert_eq!(log(&bin, "codex").matches("mcp add").count(), 1);

    // A registration to another binary is replaced.
    std::fs::write(
        bin.join("claude.registered"),
        "--scope user loopsy -- /old/loopsy mcp\n",
    )
    .expect("write");
    assert_eq!(
        states(&loopsy, &["status", "--agent", "claude"]),
        json!({"claude": "registered-elsewhere"})
    );
    assert_eq!(
        states(&loopsy, &["add", "--agent", "claude"]),
        json!({"claude": "registered"})
    );
    assert!(log(&bin, "claude").contains("mcp remove --scope user loopsy"));

    // Removed from one; an agent that is not installed is said to be missing.
    assert_eq!(
        states(&loopsy, &["remove", "--agent", "codex"]),
        json!({"codex": "not-registered"})
    );
    let doctor = String::from_utf8_lossy(&loopsy.run(&["doctor"]).stdout).into_owned();
    assert!(
        doctor.contains("fix: loopsy mcp add --agent codex"),
        "{doctor}"
    );
    std::fs::remove_file(bin.join("gemini")).expect("rm");
    assert_eq!(
        states(&loopsy, &["add", "--agent", "gemini"]),
        json!({"gemini": "missing"})
    );
    assert_eq!(
        states(&loopsy, &["remove", "--agent", "opencode"]),
        json!({"opencode": "not-registered"})
    );
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("read")).expect("json");
    assert_eq!(after["mcp"], json!({"other": theirs["mcp"]["other"]}));
    // With no layout of its own, the installed opencode's version decides:
    // from 2.0 (the stand-in says 9.9.9) servers sit under `mcp.servers`.
    std::fs::remove_file(&config).expect("rm");
    assert_eq!(
        states(&loopsy, &["add", "--agent", "opencode"]),
        json!({"opencode": "registered"})
    );
    let fresh: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("read")).expect("json");
    assert_eq!(
        fresh["mcp"]["servers"]["loopsy"]["type"], "local",
        "{fresh}"
    );
    assert_eq!(
        states(&loopsy, &["status", "--agent", "opencode"]),
        json!({"opencode": "registered"})
    );
}

#[test]
fn a_broken_opencode_config_is_left_alone_with_a_reason() {
    let mut loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let config = loopsy.dir.path().join(".config/opencode/opencode.json");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("mkdir");
    let broken = "{ // a comment\n \"theme\": \"dark\" }";
    std::fs::write(&config, broken).expect("write");
    loopsy.env.push(("PATH".into(), "/usr/bin:/bin".into()));
    let out = loopsy.run(&["mcp", "add", "--agent", "opencode"]);
    assert!(!out.status.success());
    assert!(
        crate::harness::stdout(&out).contains("is not a JSON object"),
        "{}",
        crate::harness::stdout(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).expect("read"), broken);
}
