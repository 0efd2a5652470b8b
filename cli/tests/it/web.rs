//! The phone web app's own checks, run from the Rust suite so that one command
//! tests everything: TypeScript type checks, the browser's Noise against the
//! vectors the Rust side makes and checks (`transports/tests/vectors/`), and
//! the app itself in Debian's Chromium against a real relay and daemon.

use std::path::{Path, PathBuf};
use std::process::Command;

fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// Runs `program args` in web/ and insists on success; returns stdout.
fn run_in_web(program: &str, args: &[&str], what: &str) -> String {
    run_in_web_with(program, args, what, &[])
}

/// The same with extra environment variables.
fn run_in_web_with(program: &str, args: &[&str], what: &str, env: &[(&str, &str)]) -> String {
    assert!(
        web().join("node_modules").is_dir(),
        "web/node_modules is missing: run `npm ci` in web/ (cargo's build of loopsy-relay does it when npm is installed)"
    );
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(web())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (install Node.js and npm): {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_browser_crypto_agrees_with_the_rust_vectors() {
    let report = run_in_web("npm", &["test", "--silent"], "npm test");
    let count = |label: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    // At least the vector suites ran, and nothing failed.
    assert!(count("# pass ").is_some_and(|n| n >= 5), "{report}");
    assert_eq!(count("# fail "), Some(0), "{report}");
}

/// Runs `e2e/<script>.mjs` with a fresh pairing window of a fresh stack;
/// returns the stack (to look at what the run left behind).
fn browser_run(script: &str) -> crate::phone::Stack {
    browser_run_after(script, |_| {})
}

/// The same, with `prepare` run on the stack first.
fn browser_run_after(
    script: &str,
    prepare: impl FnOnce(&crate::phone::Stack),
) -> crate::phone::Stack {
    let stack = crate::phone::stack();
    prepare(&stack);
    browser_run_on(script, stack)
}

/// Runs `e2e/<script>.mjs` against `stack`. The script can run the laptop's
/// CLI as its owner: `LOOPSY_CLI` holds the command (a JSON array).
fn browser_run_on(script: &str, stack: crate::phone::Stack) -> crate::phone::Stack {
    browser_run_with(script, stack, &[])
}

/// The same, with extra environment variables for the script.
pub(crate) fn browser_run_with(
    script: &str,
    stack: crate::phone::Stack,
    env: &[(&str, &str)],
) -> crate::phone::Stack {
    browser_run_paired_by(script, stack, env, &[])
}

/// The same, with `pair_flags` for `loopsy mobile pair`.
pub(crate) fn browser_run_paired_by(
    script: &str,
    stack: crate::phone::Stack,
    env: &[(&str, &str)],
    pair_flags: &[&str],
) -> crate::phone::Stack {
    let pair = [&["mobile", "pair", "--json"], pair_flags].concat();
    let window: serde_json::Value = serde_json::from_str(&stack.loopsy.ok(&pair)).unwrap();
    // Runs of one script at other sizes keep their screenshots apart.
    let folder = match env.iter().find(|(name, _)| *name == "VIEWPORT") {
        Some((_, size)) => format!("{script}-{size}"),
        None => script.to_owned(),
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/e2e/{folder}"));
    let shots = shots.to_string_lossy();
    let what = format!("the browser run (screenshots in {shots})");
    let path = format!("e2e/{script}.mjs");
    let args = [
        path.as_str(),
        window["url"].as_str().unwrap(),
        window["code"].as_str().unwrap(),
        &shots,
    ];
    let cli = stack.loopsy.command(&[]);
    let mut cli_words = vec![cli.get_program().to_string_lossy().into_owned()];
    cli_words.extend(cli.get_args().map(|a| a.to_string_lossy().into_owned()));
    let cli_json = serde_json::to_string(&cli_words).unwrap();
    let mut env = env.to_vec();
    env.push(("LOOPSY_CLI", &cli_json));
    run_in_web_with("node", &args, &what, &env);
    stack
}

#[test]
fn the_phone_app_pairs_and_drives_a_shell_in_chromium() {
    let stack = browser_run_with(
        "pair-and-type",
        crate::phone::stack(),
        &[("PHONE_NAME", "Kai's test phone")],
    );
    let phones: serde_json::Value =
        serde_json::from_str(&stack.loopsy.ok(&["phone", "list", "--json"])).unwrap();
    assert_eq!(phones.as_array().map(Vec::len), Some(1), "{phones}");
    let phone = &phones[0];
    assert_eq!(
        phone["label"], "Kai's test phone",
        "the name given on the code screen"
    );
    assert!(
        phone["pairedAt"].is_i64() && phone["lastSeen"].is_i64(),
        "{phone}"
    );
    assert!(
        phone["fingerprint"].as_str().is_some_and(|f| f.len() == 39),
        "{phone}"
    );
    let listed = stack.loopsy.ok(&["phone", "list"]);
    for shown in ["Kai's test phone", "paired", "last seen", "key "] {
        assert!(listed.contains(shown), "{listed}");
    }
}

/// Without a name typed, the phone offers one derived from the browser.
#[test]
fn a_phone_names_itself_after_its_browser() {
    let stack = browser_run("phone-name");
    let phones: serde_json::Value =
        serde_json::from_str(&stack.loopsy.ok(&["phone", "list", "--json"])).unwrap();
    assert_eq!(phones[0]["label"], "Linux · Chrome", "{phones}");
}

/// At a pixel ratio of 1 this Chromium's WebGL canvas comes out right, so the
/// app draws with WebGL; the glyphs are where `rows()` says, and a lost
/// context hands over to the DOM renderer at once.
#[test]
fn webgl_draws_where_the_text_is_and_a_lost_context_falls_back_at_once() {
    browser_run_with(
        "pair-and-type",
        crate::phone::stack(),
        &[("RATIO", "1"), ("EXPECT_RENDERER", "webgl")],
    );
}

/// A smaller Android phone: 360×740 at a pixel ratio of 3.
#[test]
fn the_terminal_is_drawn_right_on_a_small_phone() {
    browser_run_with(
        "pair-and-type",
        crate::phone::stack(),
        &[("VIEWPORT", "360x740")],
    );
}

#[test]
fn every_key_is_within_reach_and_nothing_covers_the_terminal() {
    browser_run("layout");
}

#[test]
fn a_removed_phone_and_a_used_link_say_so() {
    browser_run("states");
}

#[test]
fn sessions_are_renamed_stopped_removed_and_reopened_after_a_reload() {
    browser_run("manage-sessions");
}

#[test]
fn turning_the_phone_resizes_the_session_once_settled() {
    browser_run("rotate");
}

/// Runs `e2e/<script>.mjs`, which prints a cue for each relay outage step it
/// needs (`outage`: restart the relay; `kill`, `start`), waiting for a line
/// back after each; `cues` are the ones it must print, in order.
fn browser_run_with_relay_cues(script: &str, cues: &[&str]) {
    use std::io::{BufRead, Write};
    let mut stack = crate::phone::stack();
    let window: serde_json::Value =
        serde_json::from_str(&stack.loopsy.ok(&["mobile", "pair", "--json"])).unwrap();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/e2e/{script}"));
    let mut browser = Command::new("node")
        .arg(format!("e2e/{script}.mjs"))
        .arg(window["url"].as_str().unwrap())
        .arg(window["code"].as_str().unwrap())
        .arg(&shots)
        .current_dir(web())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut lines = std::io::BufReader::new(browser.stdout.take().unwrap()).lines();
    for cue in cues {
        let said = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(&said, cue, "the browser run stopped early");
        match *cue {
            "outage" => stack.restart_relay(),
            "kill" => stack.kill_relay(),
            "start" => stack.start_relay_again(),
            other => panic!("unknown cue {other}"),
        }
        writeln!(browser.stdin.as_mut().unwrap()).unwrap();
    }
    let status = browser.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        status.success(),
        "the browser run failed (screenshots in {}): {rest:?}",
        shots.display()
    );
}

#[test]
fn the_phone_app_resumes_after_a_relay_restart_with_no_lost_line() {
    browser_run_with_relay_cues("resume", &["outage"]);
}

#[test]
fn keys_held_while_away_are_shown_and_can_be_discarded() {
    browser_run_with_relay_cues("held-keys", &["kill", "start"]);
}

#[test]
fn the_phone_app_says_when_codes_are_wrong_and_when_the_pairing_closed() {
    let stack = crate::phone::stack();
    let window: serde_json::Value =
        serde_json::from_str(&stack.loopsy.ok(&["mobile", "pair", "--json"])).unwrap();
    let right = window["code"].as_str().unwrap();
    let wrong = if right == "0000" { "1111" } else { "0000" };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e/wrong-codes");
    let shots = shots.to_string_lossy();
    let what = format!("the browser run (screenshots in {shots})");
    run_in_web(
        "node",
        &[
            "e2e/wrong-codes.mjs",
            window["url"].as_str().unwrap(),
            wrong,
            &shots,
        ],
        &what,
    );
    let phones: serde_json::Value =
        serde_json::from_str(&stack.loopsy.ok(&["phone", "list", "--json"])).unwrap();
    assert_eq!(phones, serde_json::json!([]), "nothing was paired");
}

#[test]
fn vim_survives_a_page_reload_and_its_screen_comes_back() {
    browser_run("vim-reload");
}

#[test]
fn the_key_bar_sends_a_sticky_ctrl() {
    browser_run("keybar");
}

#[test]
fn forgetting_a_laptop_on_the_phone_revokes_the_phone_everywhere() {
    let stack = browser_run("forget");
    crate::harness::wait_until("the laptop forgets the phone", || {
        let out = stack.loopsy.run(&["phone", "list", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|v| v == serde_json::json!([]))
    });
}

#[test]
fn the_picker_offers_and_starts_a_custom_command() {
    let stack = browser_run_after("custom-command", |stack| {
        let mut socket = crate::harness::Socket::connect(&stack.loopsy);
        let added = socket.request(
            "commands.add",
            serde_json::json!({ "label": "Greet from the picker", "command": "sh", "args": ["-c", "echo hello-from-custom; sleep 30"] }),
        );
        assert!(added.get("result").is_some(), "{added}");
    });
    // What the phone did is what the laptop keeps.
    let mut socket = crate::harness::Socket::connect(&stack.loopsy);
    let offer = socket.request("session.agents", serde_json::json!({}));
    let labels: Vec<&str> = offer["result"]["customCommands"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["label"].as_str())
        .collect();
    assert_eq!(labels, ["Greet renamed"], "{offer}");
    let config = std::fs::read_to_string(stack.loopsy.path("config.yaml")).unwrap();
    assert!(config.contains("Greet renamed"), "{config}");
}

#[test]
fn auto_approve_is_offered_only_once_granted_and_names_stick() {
    let mut loopsy = crate::harness::Loopsy::new();
    loopsy.fake_program("codex", "echo \"$*\"; sleep 30");
    loopsy.ok(&["init"]);
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    browser_run_on(
        "auto-approve",
        crate::phone::stack_of(loopsy, str::to_owned),
    );
}

#[test]
fn the_app_calls_for_attention_on_a_bell_and_a_waiting_prompt() {
    browser_run("attention");
}

#[test]
fn the_phone_key_is_a_non_extractable_webcrypto_key() {
    browser_run("webcrypto-key");
}

#[test]
fn without_crypto_subtle_the_app_pairs_with_the_noble_key() {
    browser_run("plain-http-fallback");
}

#[test]
fn the_app_follows_light_and_dark_and_the_users_pick() {
    browser_run("theme");
}

#[test]
fn the_compose_box_pastes_typed_and_dictated_text() {
    browser_run("compose");
}

#[test]
fn a_swipe_scrolls_with_momentum_and_copy_reaches_the_clipboard() {
    browser_run("scroll-and-copy");
}

#[test]
fn the_laptops_list_shows_which_laptop_is_online() {
    browser_run("online");
}

#[test]
fn nothing_a_laptop_sends_reaches_the_page_as_html() {
    // The original app had stored XSS through innerHTML; here the DOM is built
    // with textContent only, and this keeps it so.
    let mut folders = vec![web().join("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "ts") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!source.contains(sink), "{} uses {sink}", path.display());
            }
        }
    }
}
