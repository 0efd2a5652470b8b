use crate::harness::*;

#[test]
fn rotation_cuts_the_old_key_at_once() {
    let loopsy = Loopsy::started();
    let old = loopsy.key();
    assert_eq!(loopsy.get("/api/v1/status", Some(&old)).status, 200);
    let pid = loopsy.pid();

    let out = loopsy.ok(&["key", "generate", "--json"]);
    let new = serde_json::from_str::<serde_json::Value>(&out).expect("JSON")["apiKey"]
        .as_str()
        .expect("apiKey")
        .to_owned();
    assert_ne!(new, old);
    assert_eq!(new.len(), 64);
    // No wait, no restart.
    assert_eq!(loopsy.get("/api/v1/status", Some(&old)).status, 403);
    assert_eq!(loopsy.get("/api/v1/status", Some(&new)).status, 200);
    assert_eq!(loopsy.pid(), pid, "same daemon process");
    assert_eq!(loopsy.key(), new);

    let config = std::fs::read_to_string(loopsy.path("config.yaml")).expect("config");
    assert!(config.contains(&new) && !config.contains(&old));
    assert!(
        config.starts_with("# loopsy configuration"),
        "comments survive the edit"
    );
    assert_eq!(mode(&loopsy.path("config.yaml")), 0o600);
}

#[test]
fn rotation_without_a_daemon_edits_the_file() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let old = loopsy.key();
    loopsy.ok(&["key", "generate"]);
    let new = loopsy.key();
    assert_ne!(old, new);
    assert_eq!(mode(&loopsy.path("config.yaml")), 0o600);
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    assert_eq!(loopsy.get("/api/v1/status", Some(&old)).status, 403);
    assert_eq!(loopsy.get("/api/v1/status", Some(&new)).status, 200);
}

#[test]
fn peer_keys_edited_by_hand_apply_without_restart() {
    let loopsy = Loopsy::started();
    let peer_key = "f".repeat(8) + &"0123456789abcdef".repeat(4);
    assert_eq!(loopsy.get("/api/v1/status", Some(&peer_key)).status, 403);
    loopsy.write_config(|text| with_peers(text, &[("laptop", &peer_key)]));
    wait_until("the daemon to accept the new peer key", || {
        loopsy.get("/api/v1/status", Some(&peer_key)).status == 200
    });
    loopsy.write_config(|text| {
        text.replace(&format!("laptop: \"{peer_key}\""), "{}")
            .replace("allowedKeys:\n    {}", "allowedKeys: {}")
    });
    wait_until("the daemon to drop the removed peer key", || {
        loopsy.get("/api/v1/status", Some(&peer_key)).status == 403
    });
}
