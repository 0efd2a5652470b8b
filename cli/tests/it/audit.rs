use serde_json::Value;

use crate::harness::*;

fn audit_lines(loopsy: &Loopsy) -> Vec<Value> {
    std::fs::read_to_string(loopsy.path("logs/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("unparseable audit line ({e}): {line}"))
        })
        .collect()
}

#[test]
fn every_request_is_audited_without_secrets() {
    let loopsy = Loopsy::started();
    let key = loopsy.key();
    loopsy.http(
        "GET",
        "/api/v1/status",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("X-Request-Id", "client-chosen"),
        ],
        None,
    );
    loopsy.get("/api/v1/status", Some("wrong-key-123"));
    loopsy.get("/api/v1/nope", Some(&key));
    loopsy.ok(&["status"]);
    // A key passed on a command line is redacted from the audit line that records it.
    loopsy.ok(&["exec", "--", "echo", &format!("--token={key}")]);
    // Lines are written by the audit thread after the answers: wait for the last
    // ones (an exec's line comes once its job has ended, maybe after its answer).
    wait_until("the socket request's and the exec's audit lines", || {
        let lines = audit_lines(&loopsy);
        lines
            .iter()
            .any(|l| l["principal"] == "owner" && l["op"] == "status")
            && lines
                .iter()
                .any(|l| l["op"].as_str().is_some_and(|op| op.starts_with("exec.")))
    });

    let lines = audit_lines(&loopsy);
    for line in &lines {
        for field in [
            "ts",
            "requestId",
            "principal",
            "transport",
            "op",
            "outcome",
            "status",
            "durationMs",
        ] {
            assert!(
                line.get(field).is_some(),
                "audit line without {field}: {line}"
            );
        }
        assert_ne!(line["requestId"], "client-chosen", "request ids are ours");
    }
    let text = std::fs::read_to_string(loopsy.path("logs/audit.jsonl")).expect("audit");
    assert!(!text.contains(&key), "the key never reaches the audit log");
    assert!(!text.contains("wrong-key-123"), "nor does a wrong key");
    let exec = lines
        .iter()
        .find(|l| l["op"].as_str().is_some_and(|op| op.starts_with("exec.")))
        .unwrap_or_else(|| panic!("no exec line in {lines:?}"));
    assert_eq!(exec["started"]["args"][0], "--token=[key]", "{exec}");
    assert_eq!(mode(&loopsy.path("logs/audit.jsonl")), 0o600);

    let outcomes: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["principal"].as_str().unwrap_or(""),
                l["op"].as_str().unwrap_or(""),
                l["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        outcomes.contains(&("owner-key", "status", "ok")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("anonymous", "status", "denied")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("owner-key", "unknown", "not-found")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("owner", "status", "ok")),
        "{outcomes:?}"
    );
    let unix = lines
        .iter()
        .find(|l| l["principal"] == "owner")
        .expect("unix line");
    assert_eq!(unix["transport"], "unix");
    let http = lines
        .iter()
        .find(|l| l["principal"] == "owner-key")
        .expect("http line");
    assert_eq!(http["transport"], "lan-http");
    assert_eq!(http["remote"], "127.0.0.1");

    let json_out = loopsy.ok(&["logs", "--json", "-n", "2"]);
    let shown: Vec<&str> = json_out.lines().collect();
    assert_eq!(shown.len(), 2);
    for line in shown {
        serde_json::from_str::<Value>(line).expect("logs --json prints JSON lines");
    }
    let human = loopsy.ok(&["logs", "-n", "10"]);
    assert!(
        human.contains("not-found") && human.contains("denied"),
        "{human}"
    );
}

#[test]
fn logs_follow_prints_new_lines() {
    let loopsy = Loopsy::started();
    let mut child = KillOnDrop(
        loopsy
            .command(&["logs", "-f", "--json", "-n", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn logs -f"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.contains("\"identity\""))
    });
    let key = loopsy.key();
    // `logs -f -n 0` starts at the end of the log whenever it gets going, so
    // ask again until a request lands after that.
    let mut asked = std::time::Instant::now() - std::time::Duration::from_secs(1);
    wait_until("logs -f to print the identity request", || {
        if asked.elapsed() >= std::time::Duration::from_millis(200) {
            loopsy.get("/api/v1/identity", Some(&key));
            asked = std::time::Instant::now();
        }
        reader.is_finished()
    });
    drop(child);
    let line = reader.join().expect("reader").expect("a followed line");
    assert_eq!(
        serde_json::from_str::<Value>(&line).expect("JSON")["op"],
        "identity"
    );
}
