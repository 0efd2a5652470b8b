use serde_json::{Value, json};

use crate::harness::*;

fn put(loopsy: &Loopsy, key: &str, body: &Value) -> Http {
    let bearer = format!("Bearer {}", loopsy.key());
    loopsy.http(
        "PUT",
        &format!("/api/v1/context/{key}"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        Some(body.to_string().as_bytes()),
    )
}

#[test]
fn rest_routes_keep_the_original_shapes() {
    let loopsy = Loopsy::started();
    let key = loopsy.key();
    let first = put(&loopsy, "build:status", &json!({"value": "green"}));
    assert_eq!(first.status, 200, "{}", first.body);
    let entry = first.json();
    assert_eq!(entry["key"], "build:status");
    assert_eq!(entry["value"], "green");
    assert_eq!(entry["fromNodeId"], "local");
    assert!(entry["createdAt"].is_i64() && entry["updatedAt"].is_i64());
    assert!(entry.get("expiresAt").is_none() && entry.get("ttl").is_none());

    let bearer = format!("Bearer {key}");
    let second = loopsy.http(
        "PUT",
        "/api/v1/context/build:status",
        &[("Authorization", &bearer), ("X-Loopsy-Node-Id", "node-b")],
        Some(br#"{"value":"red","ttl":60}"#),
    );
    let second = second.json();
    assert_eq!(
        second["createdAt"], entry["createdAt"],
        "createdAt kept on overwrite"
    );
    assert_eq!(second["fromNodeId"], "node-b");
    assert_eq!(second["ttl"], 60);
    let expires = second["expiresAt"].as_i64().expect("expiresAt");
    assert_eq!(
        expires - second["updatedAt"].as_i64().expect("updatedAt"),
        60_000
    );

    assert_eq!(
        loopsy
            .get("/api/v1/context/build:status", Some(&key))
            .json()["value"],
        "red"
    );
    put(&loopsy, "other", &json!({"value": "x"}));
    let listed = loopsy
        .get("/api/v1/context?prefix=build:", Some(&key))
        .json();
    assert_eq!(listed["entries"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        loopsy.get("/api/v1/context", Some(&key)).json()["entries"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let status = loopsy.get("/api/v1/status", Some(&key)).json();
    assert_eq!(status["context"]["entries"], 2);

    let deleted = loopsy.http(
        "DELETE",
        "/api/v1/context/build:status",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(
        deleted.json(),
        json!({"success": true, "key": "build:status"})
    );
    let missing = loopsy.get("/api/v1/context/build:status", Some(&key));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], 5001);
    let again = loopsy.http(
        "DELETE",
        "/api/v1/context/build:status",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(again.status, 404);
}

#[test]
fn bad_input_gets_the_right_codes() {
    let loopsy = Loopsy::started();
    let over = "v".repeat(1024 * 1024 + 1);
    let cases: Vec<(String, Value, u16, u64)> = vec![
        ("big".into(), json!({"value": over}), 400, 5002),
        (String::new(), json!({"value": "v"}), 400, 9003),
        ("k".repeat(10_000), json!({"value": "v"}), 400, 9003),
        ("neg".into(), json!({"value": "v", "ttl": -5}), 400, 9003),
        ("novalue".into(), json!({}), 400, 9003),
        ("emptyvalue".into(), json!({"value": ""}), 400, 9003),
        ("numeric".into(), json!({"value": 5}), 400, 9003),
        (
            "badttl".into(),
            json!({"value": "v", "ttl": "soon"}),
            400,
            9003,
        ),
    ];
    for (key, body, status, code) in cases {
        let response = put(&loopsy, &key, &body);
        assert_eq!(
            response.status,
            status,
            "key {} body {}: {}",
            key.len(),
            &body.to_string()[..40.min(body.to_string().len())],
            response.body
        );
        assert_eq!(response.json()["error"]["code"], code, "{}", response.body);
    }
    let exactly = "v".repeat(1024 * 1024);
    assert_eq!(
        put(&loopsy, "max", &json!({"value": exactly})).status,
        200,
        "a 1 MiB value fits"
    );
    let bearer = format!("Bearer {}", loopsy.key());
    let garbled = loopsy.http(
        "PUT",
        "/api/v1/context/x",
        &[("Authorization", &bearer)],
        Some(b"{\"value\": "),
    );
    assert_eq!(garbled.status, 400);
    assert_eq!(garbled.json()["error"]["code"], 9003);
    let key = loopsy.key();
    assert_eq!(
        loopsy.get("/api/v1/context", Some(&key)).json()["entries"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "nothing else was stored"
    );
}

#[test]
fn entry_cap_and_expiry() {
    let loopsy = Loopsy::started_with(|text| text.replace("maxEntries: 1000", "maxEntries: 3"));
    for key in ["a", "b", "c"] {
        assert_eq!(put(&loopsy, key, &json!({"value": "1"})).status, 200);
    }
    let full = put(&loopsy, "d", &json!({"value": "1"}));
    assert_eq!(full.status, 400);
    assert_eq!(full.json()["error"]["code"], 5003);
    assert_eq!(
        put(&loopsy, "a", &json!({"value": "2"})).status,
        200,
        "overwrites still work"
    );

    assert_eq!(
        put(&loopsy, "b", &json!({"value": "short-lived", "ttl": 1})).status,
        200
    );
    let key = loopsy.key();
    wait_until("the entry to expire", || {
        loopsy.get("/api/v1/context/b", Some(&key)).status == 404
    });
    let listed = loopsy.get("/api/v1/context", Some(&key)).json();
    assert!(
        !listed.to_string().contains("short-lived"),
        "expired entries are never listed"
    );
    assert_eq!(
        put(&loopsy, "d", &json!({"value": "1"})).status,
        200,
        "an expired entry frees its slot"
    );
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let loopsy = Loopsy::started();
    for n in 0..50 {
        assert_eq!(
            put(
                &loopsy,
                &format!("k{n}"),
                &json!({"value": format!("v{n}")})
            )
            .status,
            200
        );
    }
    signal(loopsy.pid().expect("pid"), rustix::process::Signal::KILL);
    wait_until("the daemon to die", || !loopsy.is_running());
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    let key = loopsy.key();
    for n in 0..50 {
        assert_eq!(
            loopsy
                .get(&format!("/api/v1/context/k{n}"), Some(&key))
                .json()["value"],
            format!("v{n}")
        );
    }
    assert_eq!(mode(&loopsy.path("loopsy.db")), 0o600);
}

#[test]
fn cli_commands() {
    let loopsy = Loopsy::started();
    assert!(
        loopsy
            .ok(&["context", "set", "greeting", "hello world", "--ttl", "600"])
            .contains("stored greeting")
    );
    assert_eq!(
        loopsy.ok(&["context", "get", "greeting"]).trim(),
        "hello world"
    );
    let entry: Value =
        serde_json::from_str(&loopsy.ok(&["context", "get", "greeting", "--json"])).expect("JSON");
    assert_eq!(entry["ttl"], 600);
    let mut child = loopsy
        .command(&["context", "set", "piped", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"line one\nline two\n")
            .expect("write");
    }
    assert!(child.wait().expect("wait").success());
    assert_eq!(
        loopsy.ok(&["context", "get", "piped"]),
        "line one\nline two\n\n"
    );
    let list = loopsy.ok(&["context", "list"]);
    assert!(
        list.contains("greeting") && list.contains("expires in"),
        "{list}"
    );
    let listed: Value =
        serde_json::from_str(&loopsy.ok(&["context", "list", "--prefix", "pi", "--json"]))
            .expect("JSON");
    assert_eq!(listed["entries"].as_array().map(Vec::len), Some(1));
    loopsy.ok(&["context", "delete", "greeting"]);
    let missing = loopsy.run(&["context", "get", "greeting"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("not found"),
        "{}",
        stderr(&missing)
    );
}
