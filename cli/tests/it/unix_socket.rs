//! Speaks the socket's wire format by hand (u32 BE length = 1 + payload, type byte,
//! payload), so the framing itself is under test, not just the client library.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

pub fn connect(loopsy: &Loopsy) -> UnixStream {
    let stream = UnixStream::connect(loopsy.path("loopsyd.sock")).expect("connect to the socket");
    stream.set_read_timeout(Some(patience())).expect("timeout");
    stream
}

pub fn send(stream: &mut UnixStream, kind: u8, payload: &[u8]) {
    let mut frame = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    frame.push(kind);
    frame.extend_from_slice(payload);
    stream.write_all(&frame).expect("write frame");
}

pub fn receive(stream: &mut UnixStream) -> Value {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).expect("frame header");
    assert_eq!(header[4], 1, "a JSON frame");
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize - 1;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).expect("frame payload");
    serde_json::from_slice(&payload).expect("JSON payload")
}

#[test]
fn json_rpc_calls_and_errors_share_one_connection() {
    let loopsy = Loopsy::started();
    let mut stream = connect(&loopsy);

    send(
        &mut stream,
        1,
        br#"{"jsonrpc":"2.0","id":1,"method":"status"}"#,
    );
    let answer = receive(&mut stream);
    assert_eq!(answer["id"], 1);
    assert_eq!(
        answer["result"]["daemon"]["pid"].as_i64(),
        loopsy.pid().map(i64::from)
    );

    send(&mut stream, 1, b"{this is not json");
    let answer = receive(&mut stream);
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(answer["error"]["code"], -32700);

    send(
        &mut stream,
        1,
        br#"[{"jsonrpc":"2.0","id":2,"method":"status"}]"#,
    );
    assert_eq!(
        receive(&mut stream)["error"]["code"],
        -32600,
        "batches are refused clearly"
    );

    send(
        &mut stream,
        1,
        br#"{"jsonrpc":"2.0","id":"x","method":"nope"}"#,
    );
    let answer = receive(&mut stream);
    assert_eq!(answer["id"], "x");
    assert_eq!(answer["error"]["code"], -32601);

    send(&mut stream, 2, b"keystrokes");
    assert_eq!(
        receive(&mut stream)["error"]["code"],
        -32600,
        "binary frames need a session"
    );

    // Still the same, healthy connection.
    send(
        &mut stream,
        1,
        br#"{"jsonrpc":"2.0","id":3,"method":"health"}"#,
    );
    let answer = receive(&mut stream);
    assert_eq!(answer["id"], 3);
    assert_eq!(answer["result"]["status"], "ok");
}

#[test]
fn oversized_frame_closes_only_that_connection() {
    let loopsy = Loopsy::started();
    let mut stream = connect(&loopsy);
    // Announce 1 MiB + 2 bytes of payload; send only the header.
    let mut header = ((1024 * 1024 + 2) as u32 + 1).to_be_bytes().to_vec();
    header.push(1);
    stream.write_all(&header).expect("header");
    let answer = receive(&mut stream);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cap")),
        "{answer}"
    );
    let mut rest = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let closed = stream.read_to_end(&mut rest).is_ok();
    assert!(closed, "the daemon closes the connection");

    let mut fresh = connect(&loopsy);
    send(
        &mut fresh,
        1,
        br#"{"jsonrpc":"2.0","id":1,"method":"health"}"#,
    );
    assert_eq!(
        receive(&mut fresh)["result"]["status"],
        "ok",
        "the daemon is unaffected"
    );
}

#[test]
fn unknown_frame_type_is_refused() {
    let loopsy = Loopsy::started();
    let mut stream = connect(&loopsy);
    send(&mut stream, 9, b"??");
    let answer = receive(&mut stream);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("frame type")),
        "{answer}"
    );
    assert!(loopsy.is_running());
}

fn receive_any(stream: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).expect("frame header");
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize - 1;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).expect("frame payload");
    (header[4], payload)
}

#[test]
fn transfer_push_and_pull_over_the_socket() {
    let loopsy = Loopsy::started();
    let content: Vec<u8> = (0..700_000u32).map(|n| (n % 251) as u8).collect();
    let mut stream = connect(&loopsy);
    send(&mut stream, 1, br#"{"jsonrpc":"2.0","id":1,"method":"transfer.push","params":{"destPath":"~/rpc/copy.bin"}}"#);
    for chunk in content.chunks(100_000) {
        send(&mut stream, 2, chunk);
    }
    send(&mut stream, 2, b"");
    let answer = receive(&mut stream);
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["result"]["size"], content.len());
    let home = std::fs::canonicalize(loopsy.dir.path()).expect("home");
    assert_eq!(
        std::fs::read(home.join("rpc/copy.bin")).expect("pushed"),
        content
    );

    send(&mut stream, 1, br#"{"jsonrpc":"2.0","id":2,"method":"transfer.pull","params":{"sourcePath":"~/rpc/copy.bin"}}"#);
    let answer = receive(&mut stream);
    assert_eq!(answer["result"]["size"], content.len());
    let mut pulled = Vec::new();
    loop {
        let (kind, payload) = receive_any(&mut stream);
        assert_eq!(kind, 2, "binary frames follow the answer");
        if payload.is_empty() {
            break;
        }
        pulled.extend_from_slice(&payload);
    }
    assert_eq!(pulled, content);

    send(&mut stream, 1, br#"{"jsonrpc":"2.0","id":3,"method":"transfer.pull","params":{"sourcePath":"/etc/passwd"}}"#);
    assert_eq!(receive(&mut stream)["error"]["code"], 4001);
    send(
        &mut stream,
        1,
        br#"{"jsonrpc":"2.0","id":4,"method":"transfer.list","params":{"path":"~/rpc"}}"#,
    );
    assert_eq!(
        receive(&mut stream)["result"]["files"][0]["name"],
        "copy.bin"
    );
}

#[test]
fn a_refused_upload_is_answered_before_its_end_and_the_rest_is_dropped_quietly() {
    let loopsy = Loopsy::started();
    let mut stream = connect(&loopsy);
    send(
        &mut stream,
        1,
        br#"{"jsonrpc":"2.0","id":1,"method":"transfer.push","params":{"destPath":"/etc/loopsy-x"}}"#,
    );
    send(&mut stream, 2, &[7u8; 65_536]);
    // The refusal comes now, with the upload still open: a client can stop
    // sending a large file here instead of after its last byte.
    let answer = receive(&mut stream);
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["error"]["code"], 4001, "{answer}");
    // The bytes a client had in flight are dropped without an answer each,
    // and the connection goes on.
    for _ in 0..64 {
        send(&mut stream, 2, &[7u8; 65_536]);
    }
    send(&mut stream, 2, b"");
    send(
        &mut stream,
        1,
        br#"{"jsonrpc":"2.0","id":2,"method":"transfer.list","params":{"path":"~"}}"#,
    );
    let next = receive(&mut stream);
    assert_eq!(
        next["id"], 2,
        "the next frame answers the next call: {next}"
    );
    assert!(next["result"]["files"].is_array(), "{next}");
    assert!(!std::path::Path::new("/etc/loopsy-x").exists());
}

#[test]
fn an_upload_cut_off_by_a_closed_socket_leaves_nothing() {
    let loopsy = Loopsy::started();
    let home = std::fs::canonicalize(loopsy.dir.path()).expect("home");
    std::fs::create_dir_all(home.join("cut")).expect("dir");
    let mut stream = connect(&loopsy);
    send(
        &mut stream,
        1,
        br#"{"jsonrpc":"2.0","id":1,"method":"transfer.push","params":{"destPath":"~/cut/file"}}"#,
    );
    send(&mut stream, 2, &[9u8; 50_000]);
    drop(stream);
    wait_until("the partial upload to be removed", || {
        std::fs::read_dir(home.join("cut"))
            .map(|d| d.count())
            .unwrap_or(1)
            == 0
    });
    assert!(loopsy.is_running());
}

#[test]
fn a_client_that_stops_reading_slows_its_stream_instead_of_growing_the_daemon() {
    let loopsy = Loopsy::started();
    let pid = loopsy.pid().expect("pid");
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .map(str::to_owned)
            })
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut stream = connect(&loopsy);
    // ~270 MB of output, far more than any buffer on the way.
    send(
        &mut stream,
        1,
        br#"{"jsonrpc":"2.0","id":1,"method":"exec.stream","params":{"command":"sh","args":["-c","head -c 200000000 /dev/zero | base64"]}}"#,
    );
    let key = loopsy.key();
    let jobs = || {
        loopsy.get("/api/v1/execute/jobs", Some(&key)).json()["jobs"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    wait_until("the job to start", || jobs() == 1);
    // Not reading: the job must block on its pipe rather than finish into memory.
    let before = rss();
    sleep(Duration::from_secs(2));
    assert_eq!(
        jobs(),
        1,
        "the unread job is held back, not buffered to completion"
    );
    let after = rss();
    assert!(
        after < before + 64 * 1024,
        "daemon RSS grew from {before} to {after} KiB"
    );
    drop(stream);
    wait_until("the job to stop with its client", || jobs() == 0);
}
