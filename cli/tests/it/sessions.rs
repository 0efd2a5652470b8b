//! PTY sessions over the Unix socket, with real PTYs and real shells.

use serde_json::{Value, json};

use crate::harness::*;

fn start(socket: &mut Socket, params: Value) -> String {
    let answer = socket.request("session.start", params);
    answer["result"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("session.start failed: {answer}"))
        .to_owned()
}

/// Attaches and returns the `start` event (offset, resynced, …).
fn attach(socket: &mut Socket, params: Value) -> Value {
    socket.call("session.attach", params);
    loop {
        match socket.receive() {
            Received::Json(note) if note["params"]["type"] == "start" => {
                return note["params"].clone();
            }
            Received::Json(answer) if answer.get("error").is_some() => return answer,
            _ => {}
        }
    }
}

/// Reads output until `needle` appears; returns everything read.
fn read_until(socket: &mut Socket, needle: &str) -> Vec<u8> {
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(needle) {
        if let Received::Binary(bytes) = socket.receive() {
            seen.extend_from_slice(&bytes);
        }
    }
    seen
}

fn shell(socket: &mut Socket, extra: Value) -> String {
    let mut params = json!({ "command": "sh", "env": { "PS1": "$ " } });
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    start(socket, params)
}

#[test]
fn echo_round_trip_and_exit_status() {
    let loopsy = Loopsy::started();
    let mut control = Socket::connect(&loopsy);
    let id = shell(&mut control, json!({}));
    let mut client = Socket::connect(&loopsy);
    let started = attach(&mut client, json!({ "id": id }));
    assert_eq!(started["alive"], true);
    client.send(2, b"echo round-$((20+3))-trip\n");
    read_until(&mut client, "round-23-trip");
    client.send(2, b"exit 3\n");
    let exit = loop {
        if let Received::Json(note) = client.receive()
            && note["params"]["type"] == "exit"
        {
            break note["params"].clone();
        }
    };
    assert_eq!(exit["exitCode"], 3);
    let listed = control.request("session.list", json!({}));
    let session = &listed["result"]["sessions"][0];
    assert_eq!(session["alive"], false);
    assert_eq!(session["exitCode"], 3);
    let refused = control.request("session.input", json!({ "id": id, "data": "ls\n" }));
    assert_eq!(refused["error"]["data"]["loopsyCode"], 7003, "{refused}");
}

#[test]
fn resize_reaches_the_program() {
    let loopsy = Loopsy::started();
    let mut socket = Socket::connect(&loopsy);
    let id = shell(&mut socket, json!({ "cols": 100, "rows": 30 }));
    let mut client = Socket::connect(&loopsy);
    attach(&mut client, json!({ "id": id }));
    client.send(2, b"stty size\n");
    read_until(&mut client, "30 100");
    let resized = socket.request(
        "session.resize",
        json!({ "id": id, "cols": 50, "rows": 20 }),
    );
    assert_eq!(resized["result"]["success"], true);
    wait_until("the debounced resize to apply", || {
        let listed = socket.request("session.list", json!({}));
        listed["result"]["sessions"][0]["cols"] == 50
    });
    client.send(2, b"stty size\n");
    read_until(&mut client, "20 50");
}

#[test]
fn a_new_client_gets_a_snapshot_of_the_alternate_screen() {
    let loopsy = Loopsy::started();
    let mut socket = Socket::connect(&loopsy);
    let id = shell(&mut socket, json!({}));
    let mut first = Socket::connect(&loopsy);
    attach(&mut first, json!({ "id": id }));
    first.send(
        2,
        // The marker is assembled by printf, so the echoed command line never shows it.
        b"printf '\\033[?1049h\\033[HFULL-%s-APP' SCREEN; sleep 30\n",
    );
    read_until(&mut first, "FULL-SCREEN-APP");
    drop(first);

    let mut second = Socket::connect(&loopsy);
    let started = attach(&mut second, json!({ "id": id }));
    assert_eq!(started["resynced"], true);
    let snapshot = read_until(&mut second, "FULL-SCREEN-APP");
    let text = String::from_utf8_lossy(&snapshot);
    assert!(
        text.contains("\x1b[?1049h"),
        "the snapshot switches to the alternate screen: {text:?}"
    );
}

#[test]
fn reattaching_from_an_offset_gets_exactly_the_missed_bytes() {
    let loopsy = Loopsy::started();
    let mut socket = Socket::connect(&loopsy);
    let id = shell(&mut socket, json!({}));
    // A witness stays attached from the start and sees every byte.
    let mut witness = Socket::connect(&loopsy);
    let witness_start = attach(&mut witness, json!({ "id": id, "fromOffset": 0 }));
    assert_eq!(witness_start["resynced"], false);
    let mut client = Socket::connect(&loopsy);
    attach(&mut client, json!({ "id": id, "fromOffset": 0 }));
    client.send(2, b"echo first-part\n");
    read_until(&mut client, "first-part\r\n");
    let offset = socket.request("session.list", json!({}))["result"]["sessions"][0]["outputOffset"]
        .as_u64()
        .expect("offset");
    drop(client);
    // The marker is computed, so the echoed command line never contains it.
    socket.request("session.input", json!({ "id": id, "data": "for i in 1 2 3 4 5; do echo line-$i; done; echo all-$((6*7))-done\n" }));
    let marker = "all-42-done\r\n";
    let upto = |bytes: &[u8]| -> Vec<u8> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let end = text.find(marker).expect("marker") + marker.len();
        text.as_bytes()[..end].to_vec()
    };
    let everything = read_until(&mut witness, marker);

    let mut back = Socket::connect(&loopsy);
    let resumed = attach(&mut back, json!({ "id": id, "fromOffset": offset }));
    assert_eq!(resumed["resynced"], false);
    let missed = upto(&read_until(&mut back, marker));
    // The witness attached from offset 0, so its bytes are indexed by offset.
    let expected = upto(&everything[offset as usize..]);
    assert_eq!(
        String::from_utf8_lossy(&missed),
        String::from_utf8_lossy(&expected)
    );
    assert!(
        String::from_utf8_lossy(&missed).contains("line-3"),
        "the missed output is there"
    );
}

#[test]
fn names_prefixes_and_bad_input() {
    let loopsy = Loopsy::started();
    let mut socket = Socket::connect(&loopsy);
    let id = shell(&mut socket, json!({ "name": "builder" }));
    let twin = socket.request(
        "session.start",
        json!({ "command": "sh", "name": "builder" }),
    );
    assert!(
        twin["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already running")),
        "{twin}"
    );
    let by_name = socket.request(
        "session.input",
        json!({ "id": "builder", "data": "true\n" }),
    );
    assert_eq!(by_name["result"]["id"], id.as_str());
    let by_prefix = socket.request(
        "session.resize",
        json!({ "id": &id[..6], "cols": 80, "rows": 24 }),
    );
    assert_eq!(by_prefix["result"]["id"], id.as_str());

    let mut client = Socket::connect(&loopsy);
    let unknown = attach(&mut client, json!({ "id": "no-such-session" }));
    assert_eq!(unknown["error"]["data"]["loopsyCode"], 7001, "{unknown}");
    let mut client = Socket::connect(&loopsy);
    let beyond = attach(
        &mut client,
        json!({ "id": id, "fromOffset": 1_000_000_000u64 }),
    );
    assert_eq!(beyond["error"]["data"]["httpStatus"], 400, "{beyond}");
    for (cols, rows) in [(0, 0), (5000, 10)] {
        let bad = socket.request(
            "session.resize",
            json!({ "id": id, "cols": cols, "rows": rows }),
        );
        assert_eq!(
            bad["error"]["data"]["httpStatus"], 400,
            "{cols}x{rows}: {bad}"
        );
    }
    let huge = socket.request(
        "session.resize",
        json!({ "id": id, "cols": 100000, "rows": 100000 }),
    );
    assert_eq!(huge["error"]["code"], -32602, "{huge}");
    let missing_agent = socket.request("session.start", json!({ "agent": "no-such-agent" }));
    assert!(missing_agent.get("error").is_some());
    assert!(loopsy.is_running());
}

#[test]
fn a_session_is_renamed_and_names_stay_unique() {
    let loopsy = Loopsy::started();
    let mut socket = Socket::connect(&loopsy);
    let first = shell(&mut socket, json!({ "name": "first" }));
    let second = shell(&mut socket, json!({}));
    let taken = socket.request("session.rename", json!({ "id": second, "name": "first" }));
    assert_eq!(taken["error"]["data"]["httpStatus"], 400, "{taken}");
    let renamed = socket.request(
        "session.rename",
        json!({ "id": second, "name": " builder " }),
    );
    assert_eq!(renamed["result"]["id"], second.as_str(), "{renamed}");
    // Its own name again is no clash; a control character or an unknown key is refused.
    let same = socket.request(
        "session.rename",
        json!({ "id": "builder", "name": "builder" }),
    );
    assert_eq!(same["result"]["id"], second.as_str(), "{same}");
    let control = socket.request("session.rename", json!({ "id": second, "name": "a\u{7}b" }));
    assert_eq!(control["error"]["data"]["httpStatus"], 400, "{control}");
    let stray = socket.request(
        "session.rename",
        json!({ "id": second, "name": "x", "nmae": 1 }),
    );
    assert!(stray.get("error").is_some(), "{stray}");
    let listed = socket.request("session.list", json!({}));
    let names: Vec<(String, Value)> = listed["result"]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or("").to_owned(), s["name"].clone()))
        .collect();
    assert!(
        names.contains(&(first.clone(), json!("first"))),
        "{names:?}"
    );
    assert!(
        names.contains(&(second.clone(), json!("builder"))),
        "{names:?}"
    );
    // Cleared, the name is free for another session.
    let cleared = socket.request("session.rename", json!({ "id": second, "name": null }));
    assert_eq!(cleared["result"]["id"], second.as_str(), "{cleared}");
    shell(&mut socket, json!({ "name": "builder" }));
}

#[test]
fn fifty_sessions_at_once() {
    let loopsy = Loopsy::started();
    let mut socket = Socket::connect(&loopsy);
    let ids: Vec<String> = (0..50).map(|_| shell(&mut socket, json!({}))).collect();
    let listed = socket.request("session.list", json!({}));
    let sessions = listed["result"]["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 50);
    assert!(sessions.iter().all(|s| s["alive"] == true));
    for id in &ids {
        socket.request("session.stop", json!({ "id": id }));
    }
    wait_until("every session to exit", || {
        let listed = socket.request("session.list", json!({}));
        listed["result"]["sessions"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["alive"] == false))
    });
    let removed = socket.request("session.remove", json!({ "id": ids[0] }));
    assert_eq!(removed["result"]["success"], true);
    let listed = socket.request("session.list", json!({}));
    assert_eq!(
        listed["result"]["sessions"].as_array().map(Vec::len),
        Some(49)
    );
}

#[test]
fn a_slow_client_never_holds_back_the_session_or_a_fast_one() {
    let loopsy = Loopsy::started();
    let pid = loopsy.pid().expect("pid");
    let mut socket = Socket::connect(&loopsy);
    let id = shell(&mut socket, json!({}));

    // The slow client reads about 10 kB/s for as long as the test runs.
    let mut slow = Socket::connect(&loopsy);
    attach(&mut slow, json!({ "id": id }));
    let slow_reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buffer = [0u8; 1000];
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(120) {
            if slow.stream.read(&mut buffer).unwrap_or(0) == 0 {
                return;
            }
            sleep(std::time::Duration::from_millis(100));
        }
    });

    let mut fast = Socket::connect(&loopsy);
    let start = attach(&mut fast, json!({ "id": id }));
    assert!(start["offset"].is_u64());
    socket.request(
        "session.input",
        json!({ "id": id, "data": "head -c 200000000 /dev/zero | tr '\\0' a; echo; echo produced-$((1+1))\n" }),
    );
    let mut count: u64 = 0;
    let mut tail = String::new();
    let mut peak_kib = 0;
    loop {
        if let Received::Binary(bytes) = fast.receive() {
            count += bytes.iter().filter(|b| **b == b'a').count() as u64;
            tail.push_str(&String::from_utf8_lossy(
                &bytes[bytes.len().saturating_sub(64)..],
            ));
            if tail.len() > 256 {
                tail.drain(..tail.len() - 128);
            }
            if tail.contains("produced-2") {
                break;
            }
        }
        if count % 10_000_000 < 65_536 {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            peak_kib = peak_kib.max(rss);
        }
    }
    // 200 MB of `a`, plus the few in the echoed command line (`head`, `a;`, …).
    assert!(
        (200_000_000..200_000_100).contains(&count),
        "the fast client got every byte: {count}"
    );
    assert!(
        peak_kib < 128 * 1024,
        "daemon RSS stayed bounded: peak {peak_kib} KiB"
    );
    drop(fast);
    let _ = socket.request("session.stop", json!({ "id": id }));
    drop(slow_reader);
}

#[test]
fn idle_sessions_are_reaped_and_exited_ones_forgotten() {
    let loopsy = Loopsy::started_with(|text| {
        text.replace("sessionIdleTimeoutSec: 3600", "sessionIdleTimeoutSec: 1")
            .replace("exitedRetention: 600", "exitedRetention: 1")
    });
    let mut socket = Socket::connect(&loopsy);
    shell(&mut socket, json!({}));
    let sessions = |socket: &mut Socket| {
        socket.request("session.list", json!({}))["result"]["sessions"].clone()
    };
    assert_eq!(sessions(&mut socket)[0]["alive"], true);
    wait_until("the unattached session to be stopped", || {
        sessions(&mut socket)[0]["alive"] == false
    });
    wait_until("the exited session to be forgotten", || {
        sessions(&mut socket).as_array().is_some_and(Vec::is_empty)
    });
}

#[test]
fn custom_commands_are_validated_saved_and_started_by_id() {
    let loopsy = Loopsy::started();
    let mut socket = Socket::connect(&loopsy);
    let long = socket.request(
        "commands.add",
        json!({ "label": "x".repeat(10_000), "command": "echo" }),
    );
    assert_eq!(long["error"]["data"]["httpStatus"], 400, "{long}");
    let added = socket.request(
        "commands.add",
        json!({ "label": "Greet", "command": "echo", "args": ["from-custom-$HOME"] }),
    );
    let id = added["result"]["customCommands"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let config = std::fs::read_to_string(loopsy.path("config.yaml")).expect("config");
    assert!(
        config.starts_with("# loopsy configuration") && config.contains("label: Greet"),
        "{config}"
    );
    assert_eq!(mode(&loopsy.path("config.yaml")), 0o600);

    let update = socket.request(
        "commands.update",
        json!({ "id": id, "label": "y".repeat(10_000) }),
    );
    assert_eq!(
        update["error"]["data"]["httpStatus"], 400,
        "limits apply on update too: {update}"
    );
    let agents = socket.request("session.agents", json!({}));
    assert_eq!(agents["result"]["customCommands"][0]["label"], "Greet");
    assert!(
        agents["result"]["agents"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("shell")))
    );

    let session = start(&mut socket, json!({ "customCommandId": id }));
    let mut client = Socket::connect(&loopsy);
    attach(&mut client, json!({ "id": session, "fromOffset": 0 }));
    // No shell: the argument is printed literally.
    read_until(&mut client, "from-custom-$HOME");
    let unknown = socket.request("session.start", json!({ "customCommandId": "nope" }));
    assert_eq!(unknown["error"]["data"]["loopsyCode"], 7007);
    socket.request("commands.remove", json!({ "id": id }));
    let agents = socket.request("session.agents", json!({}));
    assert_eq!(agents["result"]["customCommands"], json!([]));
}

#[test]
fn auto_approve_is_the_owners_to_grant() {
    let mut loopsy = Loopsy::new();
    loopsy.fake_program("claude", "echo \"agent-args:$*\"; sleep 30");
    loopsy.ok(&["init"]);
    let trusted = "0123456789abcdef".repeat(4);
    let other = "fedcba9876543210".repeat(4);
    loopsy.write_config(|text| {
        with_capable_peers(
            text,
            &[
                ("trusted", &trusted, &["sessions:agents"]),
                ("other", &other, &["sessions:agents"]),
            ],
        )
        .replace("autoApproveFor: []", "autoApproveFor: [trusted]")
    });
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);

    let rpc = |key: &str, params: Value| rpc_with_key(&loopsy, key, "session.start", params);
    let refused = rpc(&other, json!({ "agent": "claude", "autoApprove": true }));
    assert_eq!(refused["error"]["data"]["loopsyCode"], 7006, "{refused}");
    let smuggled = rpc(
        &other,
        json!({ "agent": "claude", "args": ["--dangerously-skip-permissions"] }),
    );
    assert_eq!(smuggled["error"]["data"]["loopsyCode"], 7006, "{smuggled}");
    let granted = rpc(&trusted, json!({ "agent": "claude", "autoApprove": true }));
    assert_eq!(granted["result"]["alive"], true, "{granted}");

    let mut socket = Socket::connect(&loopsy);
    let owner = start(
        &mut socket,
        json!({ "agent": "claude", "autoApprove": true }),
    );
    let mut client = Socket::connect(&loopsy);
    attach(&mut client, json!({ "id": owner, "fromOffset": 0 }));
    read_until(&mut client, "agent-args:--dangerously-skip-permissions");
    let not_for_shell = socket.request("session.start", json!({ "autoApprove": true }));
    assert_eq!(not_for_shell["error"]["data"]["httpStatus"], 400);

    wait_until("the grants to be audited", || {
        std::fs::read_to_string(loopsy.path("logs/audit.jsonl"))
            .unwrap_or_default()
            .matches("session.start.auto-approve")
            .count()
            >= 3
    });
}

#[test]
fn a_snapshot_carries_the_scrollback() {
    let loopsy = Loopsy::started();
    let mut socket = Socket::connect(&loopsy);
    let id = shell(&mut socket, json!({ "rows": 20, "cols": 80 }));
    let mut first = Socket::connect(&loopsy);
    attach(&mut first, json!({ "id": id }));
    first.send(2, b"seq 1 300; echo seq-$((9*9))-done\n");
    read_until(&mut first, "seq-81-done");
    drop(first);
    let mut second = Socket::connect(&loopsy);
    let started = attach(&mut second, json!({ "id": id }));
    assert_eq!(started["resynced"], true);
    let snapshot = String::from_utf8_lossy(&read_until(&mut second, "seq-81-done")).into_owned();
    // Line 100 scrolled off a 20-row screen long ago; it comes back as history.
    assert!(snapshot.contains("100"), "{snapshot:?}");
    let hundred = snapshot.find("100").expect("100");
    let two_hundred = snapshot.find("200").expect("200");
    assert!(hundred < two_hundred, "history in order");
}

#[test]
fn the_owner_grants_and_withdraws_auto_approve() {
    let mut loopsy = Loopsy::new();
    loopsy.fake_program("codex", "sleep 30");
    loopsy.ok(&["init"]);
    let peer_key = "0123456789abcdef".repeat(4);
    loopsy.write_config(|text| {
        with_capable_peers(text, &[("laptop", &peer_key, &["sessions:agents"])])
    });
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    let start = || {
        let params = json!({ "agent": "codex", "autoApprove": true });
        rpc_with_key(&loopsy, &peer_key, "session.start", params)
    };
    assert_eq!(start()["error"]["data"]["loopsyCode"], 7006);
    assert!(
        loopsy
            .ok(&["auto-approve", "allow", "laptop"])
            .contains("laptop")
    );
    assert_eq!(start()["result"]["alive"], true);
    let config = std::fs::read_to_string(loopsy.path("config.yaml")).expect("config");
    assert!(
        config.contains("autoApproveFor: [\"laptop\"]") && config.starts_with("# loopsy"),
        "{config}"
    );
    assert!(loopsy.ok(&["auto-approve", "list"]).contains("laptop"));
    loopsy.ok(&["auto-approve", "deny", "laptop"]);
    assert_eq!(start()["error"]["data"]["loopsyCode"], 7006);
    let unknown = loopsy.run(&["auto-approve", "allow", "stranger"]);
    assert_eq!(unknown.status.code(), Some(1));
    wait_until("grants to be audited", || {
        std::fs::read_to_string(loopsy.path("logs/audit.jsonl"))
            .unwrap_or_default()
            .matches("grants.autoApprove")
            .count()
            >= 3
    });
}

#[test]
fn input_larger_than_the_pty_buffer_arrives_whole_and_in_order() {
    let loopsy = Loopsy::started();
    let received = loopsy.dir.path().join("received");
    let mut control = Socket::connect(&loopsy);
    let script = format!(
        "stty raw -echo; echo READY; head -c 300000 > '{}'; echo ALL-IN",
        received.display()
    );
    let id = start(
        &mut control,
        json!({ "command": "sh", "args": ["-c", script] }),
    );
    let mut client = Socket::connect(&loopsy);
    attach(&mut client, json!({ "id": id }));
    read_until(&mut client, "READY");
    // Far more than a PTY holds (a few KiB): the writer must wait for room
    // many times, and keystrokes sent after it must queue behind it.
    let sent: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for piece in sent.chunks(64 * 1024) {
        client.send(2, piece);
    }
    read_until(&mut client, "ALL-IN");
    let got = std::fs::read(&received).unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the input arrived altered or out of order");
}
