//! Speaks the socket's wire format by hand (u32 BE length = 1 + payload, type byte,
//! payload), so the framing itself is under test, not just the client library.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

fn connect(loopsy: &Loopsy) -> UnixStream {
    let stream = UnixStream::connect(loopsy.path("loopsyd.sock")).expect("connect to the socket");
    stream.set_read_timeout(Some(patience())).expect("timeout");
    stream
}

fn send(stream: &mut UnixStream, kind: u8, payload: &[u8]) {
    let mut frame = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    frame.push(kind);
    frame.extend_from_slice(payload);
    stream.write_all(&frame).expect("write frame");
}

fn receive(stream: &mut UnixStream) -> Value {
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
