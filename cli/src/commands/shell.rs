//! `loopsy shell` and `loopsy attach`: this terminal, in raw mode, attached to a
//! session over the Unix socket. Ctrl-A d detaches (the session keeps running),
//! Ctrl-A Ctrl-A sends a literal Ctrl-A; window size changes follow SIGWINCH;
//! the exit code is the session's.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use bytes::Bytes;
use loopsy_daemon::paths::DataDir;
use loopsy_transports::framing::{self, Frame, MAX_FRAME_PAYLOAD};
use loopsy_transports::jsonrpc;
use loopsy_transports::wire::{STREAM_EVENT_METHOD, method};
use serde_json::{Value, json};

use crate::args::ShellArgs;
use crate::terminal::{self, RawMode};

/// The detach prefix, Ctrl-A.
const ESCAPE: u8 = 0x01;
const ATTACH_CALL: u64 = 1;
const DETACH_CALL: u64 = 2;
const TUNNEL_CALL: u64 = 3;
const START_CALL: u64 = 4;

pub fn open(data_dir: &DataDir, args: &ShellArgs) -> anyhow::Result<ExitCode> {
    if !terminal::is_terminal() {
        bail!("`loopsy shell` needs a terminal; for scripts use `loopsy exec -- …`");
    }
    let (cols, rows) = terminal::size().unwrap_or((120, 40));
    let mut params = json!({ "cols": cols, "rows": rows, "args": args.args });
    match &args.cmd {
        Some(cmd) => params["command"] = json!(cmd),
        None => params["agent"] = json!(args.agent),
    }
    if let Some(cwd) = &args.cwd {
        params["cwd"] = json!(cwd);
    }
    if let Some(name) = &args.name {
        params["name"] = json!(name);
    }
    let mut connection = connect(data_dir, args.peer.as_deref())?;
    let info = request(&mut connection, START_CALL, method::SESSION_START, &params)?;
    let id = info["id"]
        .as_str()
        .context("the daemon did not say which session it started")?;
    run_attached(connection, id)
}

pub fn attach(data_dir: &DataDir, target: &str, peer: Option<&str>) -> anyhow::Result<ExitCode> {
    if !terminal::is_terminal() {
        bail!("`loopsy attach` needs a terminal");
    }
    run_attached(connect(data_dir, peer)?, target)
}

/// A connection to this machine's daemon or, with `peer`, a tunnel through it
/// to the peer's (`peers.tunnel`): everything after goes to the peer.
fn connect(data_dir: &DataDir, peer: Option<&str>) -> anyhow::Result<UnixStream> {
    let path = data_dir.socket();
    let mut stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "cannot reach the daemon at {}; start it with `loopsy start`",
            path.display()
        )
    })?;
    if let Some(peer) = peer {
        request(
            &mut stream,
            TUNNEL_CALL,
            method::PEERS_TUNNEL,
            &json!({ "peer": peer }),
        )?;
    }
    Ok(stream)
}

/// One call on `stream` and its answer (nothing else is in flight yet).
fn request(
    stream: &mut UnixStream,
    id: u64,
    method: &str,
    params: &Value,
) -> anyhow::Result<Value> {
    let call = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    framing::write_frame_blocking(stream, Frame::Json(Bytes::from(call.to_string())))?;
    loop {
        let Frame::Json(bytes) = framing::read_frame_blocking(stream, MAX_FRAME_PAYLOAD)? else {
            continue;
        };
        let Ok(answer) = jsonrpc::parse_answer(&bytes) else {
            continue;
        };
        if answer.id.is_some_and(|answer_id| answer_id != id) {
            continue;
        }
        return answer
            .result
            .map_err(|failure| anyhow::anyhow!("{}", failure.message));
    }
}

fn send(writer: &Mutex<UnixStream>, frame: Frame) {
    if let Ok(mut stream) = writer.lock() {
        let _ = framing::write_frame_blocking(&mut *stream, frame);
    }
}

fn send_json(writer: &Mutex<UnixStream>, message: &Value) {
    send(writer, Frame::Json(Bytes::from(message.to_string())));
}

/// Keystrokes → binary frames, minding the Ctrl-A prefix.
fn forward_keys(writer: Arc<Mutex<UnixStream>>) {
    let mut stdin = std::io::stdin();
    let mut buffer = [0u8; 4096];
    let mut escaped = false;
    loop {
        let n = match stdin.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n);
        for &byte in &buffer[..n] {
            match (escaped, byte) {
                (false, ESCAPE) => escaped = true,
                (false, other) => out.push(other),
                (true, b'd' | b'D') => {
                    if !out.is_empty() {
                        send(
                            &writer,
                            Frame::Binary(Bytes::from(std::mem::take(&mut out))),
                        );
                    }
                    send_json(
                        &writer,
                        &json!({ "jsonrpc": "2.0", "id": DETACH_CALL, "method": method::SESSION_DETACH }),
                    );
                    return;
                }
                (true, ESCAPE) => {
                    out.push(ESCAPE);
                    escaped = false;
                }
                (true, other) => {
                    out.extend_from_slice(&[ESCAPE, other]);
                    escaped = false;
                }
            }
        }
        if !out.is_empty() {
            send(&writer, Frame::Binary(Bytes::from(out)));
        }
    }
    // Standard input closed: leave the session running.
    send_json(
        &writer,
        &json!({ "jsonrpc": "2.0", "id": DETACH_CALL, "method": method::SESSION_DETACH }),
    );
}

/// SIGWINCH → `session.resize` (a notification: nothing is answered).
fn forward_resizes(writer: Arc<Mutex<UnixStream>>, session: Arc<Mutex<Option<String>>>) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async move {
        let Ok(mut changes) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
            return;
        };
        while changes.recv().await.is_some() {
            let id = session.lock().ok().and_then(|s| s.clone());
            if let (Some(id), Some((cols, rows))) = (id, terminal::size()) {
                let note = json!({ "jsonrpc": "2.0", "method": method::SESSION_RESIZE, "params": { "id": id, "cols": cols, "rows": rows } });
                send_json(&writer, &note);
            }
        }
    });
}

enum Ending {
    Exited(Option<i64>),
    Detached(String),
    Refused(String),
    Lost(String),
}

fn run_attached(mut reader: UnixStream, target: &str) -> anyhow::Result<ExitCode> {
    let writer = Arc::new(Mutex::new(reader.try_clone()?));
    let (cols, rows) = terminal::size().unwrap_or((120, 40));
    send_json(
        &writer,
        &json!({ "jsonrpc": "2.0", "id": ATTACH_CALL, "method": method::SESSION_ATTACH,
                 "params": { "id": target, "cols": cols, "rows": rows } }),
    );
    let session = Arc::new(Mutex::new(None::<String>));
    let raw = RawMode::enter().context("cannot switch the terminal to raw mode")?;
    {
        let writer = writer.clone();
        std::thread::spawn(move || forward_keys(writer));
    }
    {
        let (writer, session) = (writer.clone(), session.clone());
        std::thread::spawn(move || forward_resizes(writer, session));
    }
    let mut stdout = std::io::stdout().lock();
    let ending = loop {
        let frame = match framing::read_frame_blocking(&mut reader, MAX_FRAME_PAYLOAD) {
            Ok(frame) => frame,
            Err(e) => break Ending::Lost(e.to_string()),
        };
        let bytes = match frame {
            Frame::Binary(bytes) => {
                let _ = stdout.write_all(&bytes).and_then(|()| stdout.flush());
                continue;
            }
            Frame::Json(bytes) => bytes,
        };
        let Ok(message) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if message["method"] == STREAM_EVENT_METHOD {
            if message["params"]["type"] == "start"
                && let (Ok(mut slot), Some(id)) = (session.lock(), message["params"]["id"].as_str())
            {
                *slot = Some(id.to_owned());
            }
            continue;
        }
        // An error about the connection itself (a peer's tunnel closed).
        if message["id"].is_null() && message["error"].is_object() {
            let why = message["error"]["message"]
                .as_str()
                .unwrap_or("the connection ended");
            break Ending::Lost(why.to_owned());
        }
        if message["id"] != ATTACH_CALL {
            continue;
        }
        let Ok(answer) = jsonrpc::parse_answer(&bytes) else {
            continue;
        };
        break match answer.result {
            Err(failure) => Ending::Refused(failure.message),
            Ok(result) if result["detached"] == true => {
                Ending::Detached(result["id"].as_str().unwrap_or(target).to_owned())
            }
            Ok(result) => Ending::Exited(result["exitCode"].as_i64()),
        };
    };
    drop(stdout);
    drop(raw);
    match ending {
        Ending::Exited(code) => Ok(ExitCode::from(
            code.and_then(|c| u8::try_from(c).ok()).unwrap_or(1),
        )),
        Ending::Detached(id) => {
            eprintln!(
                "\r\n[detached — session {} keeps running; `loopsy attach {}` returns to it]",
                &id[..id.len().min(8)],
                &id[..id.len().min(8)]
            );
            Ok(ExitCode::SUCCESS)
        }
        Ending::Refused(message) => bail!("{message}"),
        Ending::Lost(why) => {
            bail!("lost the connection to the daemon ({why}); the session may still be running")
        }
    }
}
