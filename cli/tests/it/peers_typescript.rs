//! Peers that run the original TypeScript Loopsy: added with a copied key and
//! reached over its REST routes (plain HTTP only when asked, otherwise TLS
//! with the certificate pinned when added), and keys minted for them to call
//! us with. No TypeScript Loopsy runs here: the stand-in is a loopsy daemon
//! reached only through the REST routes and bearer keys it shares with the
//! original (wire compatibility `compat.rs` tests), never through `/rpc`.

use serde_json::{Value, json};

use crate::harness::{Loopsy, stderr};
use crate::peers::{daemon, fingerprint_of, peers_of};

/// Writes `key` to a file in `loopsy`'s directory and returns its path.
fn key_file(loopsy: &Loopsy, name: &str, key: &str) -> String {
    let path = loopsy.dir.path().join(name);
    std::fs::write(&path, format!("{key}\n")).expect("key file");
    path.to_str().expect("path").to_owned()
}

fn typescript_entries(loopsy: &Loopsy) -> Vec<Value> {
    peers_of(loopsy)
        .into_iter()
        .filter(|p| {
            p["nodeId"]
                .as_str()
                .is_some_and(|n| n.starts_with("typescript-"))
        })
        .collect()
}

#[test]
fn a_typescript_peer_over_plain_http_runs_commands_stores_context_and_takes_files() {
    let (kai, original) = (daemon(), daemon());
    let key = key_file(&kai, "original.key", &original.key());
    let at = format!("127.0.0.1:{}", original.port);

    // Without --plain-http the key goes only over TLS, which a plain port is not.
    let tls_only = kai.run(&["peers", "add", &at, "--key-file", &key]);
    assert!(!tls_only.status.success());
    assert!(
        stderr(&tls_only).contains("--plain-http"),
        "{}",
        stderr(&tls_only)
    );
    // A key it does not accept: refused, and nothing is kept.
    let wrong = key_file(&kai, "wrong.key", &"0".repeat(64));
    let refused = kai.run(&["peers", "add", &at, "--key-file", &wrong, "--plain-http"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("refused the key"),
        "{}",
        stderr(&refused)
    );
    assert!(typescript_entries(&kai).is_empty());

    let added = kai.ok(&[
        "peers",
        "add",
        &at,
        "--key-file",
        &key,
        "--plain-http",
        "--json",
    ]);
    let added: Value = serde_json::from_str(&added).expect("JSON");
    assert_eq!(added["plainHttp"], true);
    let listed = typescript_entries(&kai);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0]["kind"]
            .as_str()
            .is_some_and(|k| k.contains("plain HTTP"))
    );
    crate::harness::wait_until("the TypeScript peer online", || {
        typescript_entries(&kai)[0]["status"] == "online"
    });

    // exec: the original cannot stream, so its buffered run; the exit code carries.
    let out = kai.run(&[
        "exec",
        "--peer",
        "typescript",
        "--",
        "sh",
        "-c",
        "echo there; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "there\n");
    // Context, written there.
    kai.ok(&["context", "set", "build", "green", "--peer", "typescript"]);
    assert!(original.ok(&["context", "get", "build"]).contains("green"));
    // Files, both ways, through the original's multipart push and raw pull.
    let src = kai.dir.path().join("notes.txt");
    std::fs::write(&src, b"for the original\n").expect("write");
    kai.ok(&[
        "transfer",
        "push",
        src.to_str().expect("path"),
        "~/got/notes.txt",
        "--peer",
        "typescript",
    ]);
    assert_eq!(
        std::fs::read(original.dir.path().join("got/notes.txt")).expect("pushed"),
        b"for the original\n"
    );
    let back = kai.dir.path().join("back.txt");
    kai.ok(&[
        "transfer",
        "pull",
        "~/got/notes.txt",
        back.to_str().expect("path"),
        "--peer",
        "typescript",
    ]);
    assert_eq!(std::fs::read(&back).expect("pulled"), b"for the original\n");
    // What the original cannot do is refused before anything is sent.
    let mut shell =
        crate::terminal::Terminal::run(&kai, &["shell", "--peer", "typescript", "--cmd", "sh"]);
    assert_eq!(shell.exit_code(), 1);
    assert!(
        shell.text().contains("TypeScript Loopsy"),
        "{}",
        shell.text()
    );

    // The copied key is redacted from the audit log like the keys we accept,
    // even on a command line here.
    let copied = original.key();
    kai.ok(&["exec", "--", "echo", &format!("--key={copied}")]);
    let audit = std::fs::read_to_string(kai.path("logs/audit.jsonl")).expect("audit log");
    assert!(audit.contains("--key=[key]"), "{audit}");
    assert!(!audit.contains(&copied));
    kai.ok(&["peers", "remove", "typescript"]);
    assert!(typescript_entries(&kai).is_empty());
    let gone = kai.run(&["exec", "--peer", "typescript", "--", "true"]);
    assert!(!gone.status.success());
}

#[test]
fn a_typescript_peer_over_tls_is_pinned_when_added_and_a_new_certificate_is_refused() {
    let (kai, original) = (daemon(), daemon());
    let key = key_file(&kai, "original.key", &original.key());
    let at = format!("127.0.0.1:{}", original.peer_port);
    let added = kai.ok(&["peers", "add", &at, "--key-file", &key, "--json"]);
    let added: Value = serde_json::from_str(&added).expect("JSON");
    assert_eq!(added["certFingerprint"], json!(fingerprint_of(&original)));
    let out = kai.ok(&["exec", "--peer", "typescript", "--", "echo", "pinned"]);
    assert_eq!(out, "pinned\n");

    // The same address with another certificate (another machine, or one in
    // the middle): refused, and the key is not sent to it.
    original.ok(&["stop"]);
    std::fs::remove_file(original.path("peer-tls.pem")).expect("remove the certificate");
    original.ok(&["start", "--port", &original.port.to_string()]);
    assert_ne!(added["certFingerprint"], json!(fingerprint_of(&original)));
    let refused = kai.run(&["exec", "--peer", "typescript", "--", "echo", "pinned"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("certificate") || stderr(&refused).contains("cannot reach"),
        "{}",
        stderr(&refused)
    );
    assert!(kai.is_running());
}

#[test]
fn a_key_minted_for_a_typescript_peer_grants_only_its_capabilities_until_removed() {
    let kai = daemon();
    let out_file = kai.dir.path().join("for-original.key");
    let minted = kai.ok(&[
        "peers",
        "invite",
        "--for-typescript",
        "old-box",
        "--grant",
        "exec",
        "--out",
        out_file.to_str().expect("path"),
        "--json",
    ]);
    let minted: Value = serde_json::from_str(&minted).expect("JSON");
    let key = minted["key"].as_str().expect("a key").to_owned();
    assert_eq!(
        std::fs::read_to_string(&out_file).expect("written").trim(),
        key
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out_file)
        .expect("file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        minted["allowedKeysEntry"]
            .as_str()
            .is_some_and(|e| e.contains(&key))
    );
    // Only its digest is kept: not in the database, not in the config.
    for file in ["loopsy.db", "loopsy.db-wal", "config.yaml"] {
        let bytes = std::fs::read(kai.path(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(&key), "{file}");
    }
    // A name is taken once.
    let again = kai.run(&["peers", "invite", "--for-typescript", "old-box"]);
    assert!(!again.status.success());

    // The original calls with it over its REST routes: exec yes, context no.
    let bearer = format!("Bearer {key}");
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let ran = kai.http(
        "POST",
        "/api/v1/execute",
        &auth,
        Some(br#"{"command":"echo","args":["hi"]}"#),
    );
    assert_eq!(ran.status, 200, "{}", ran.body);
    assert_eq!(ran.json()["stdout"], "hi\n");
    let context = kai.http("PUT", "/api/v1/context/k", &auth, Some(br#"{"value":"v"}"#));
    assert_eq!(context.status, 403, "{}", context.body);
    let audit = std::fs::read_to_string(kai.path("logs/audit.jsonl")).expect("audit log");
    assert!(audit.contains("peer:old-box"));
    assert!(!audit.contains(&key));

    // It survives a restart (the digest is durable), and dies on removal.
    kai.ok(&["stop"]);
    kai.ok(&["start", "--port", &kai.port.to_string()]);
    assert_eq!(kai.get("/api/v1/identity", Some(&key)).status, 200);
    let listed = peers_of(&kai);
    assert!(
        listed
            .iter()
            .any(|p| p["name"] == "old-box" && p["theyMay"] == json!(["exec"]))
    );
    kai.ok(&["peers", "remove", "old-box"]);
    assert_eq!(kai.get("/api/v1/identity", Some(&key)).status, 403);
    let bad_name = kai.run(&["peers", "invite", "--for-typescript", "a b"]);
    assert!(!bad_name.status.success());
}
