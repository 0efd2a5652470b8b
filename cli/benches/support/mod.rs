//! What the benchmarks share: the daemon under test, percentiles, process
//! memory, the text file and the direct-PTY baselines.

#![allow(dead_code)]

pub mod baselines;
pub mod exec_ab;
pub mod flood;
pub mod http;
pub mod pairing;
pub mod raw_ws;

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use loopsy_transports::framing::{Frame, read_frame_blocking, write_frame_blocking};

pub const BIN: &str = env!("CARGO_BIN_EXE_loopsy");

pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub data: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay process, killed when dropped.
pub struct Relay(pub Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `count` devices registered at the relay at `url`, on `threads` threads
/// (each registration is a durable write); (id, secret) each.
pub fn register_many(url: &str, count: usize, threads: usize) -> Vec<(String, String)> {
    let done = std::sync::Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let done = &done;
            scope.spawn(move || {
                for _ in (t..count).step_by(threads) {
                    let text = ureq::post(&format!("{url}/device/register"))
                        .send_empty()
                        .unwrap()
                        .body_mut()
                        .read_to_string()
                        .unwrap();
                    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let device = (
                        body["deviceId"].as_str().unwrap().to_owned(),
                        body["deviceSecret"].as_str().unwrap().to_owned(),
                    );
                    done.lock().unwrap().push(device);
                }
            });
        }
    });
    done.into_inner().unwrap()
}

/// A relay on a free loopback port keeping its state in `data`; its URL.
pub fn relay(data: &std::path::Path, extra: &[&str]) -> (Relay, String) {
    let port = free_port();
    let child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["relay", "serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let began = Instant::now();
    while ureq::get(&format!("{url}/health")).call().is_err() {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the relay did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (Relay(child), url)
}

/// Runs the CLI on `data` and insists on success; returns stdout.
pub fn ok(data: &std::path::Path, args: &[&str]) -> String {
    let out = loopsy(data).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "loopsy {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh daemon (data in `dir/data`) registered at a fresh relay and
/// connected to it; returns both and the daemon's data directory.
pub fn daemon_at_relay(dir: &Path) -> (Daemon, Relay, PathBuf) {
    let data = dir.join("data");
    ok(&data, &["init"]);
    let (daemon, _) = start_daemon(&data);
    let (relay, relay_url) = relay(&dir.join("relay"), &[]);
    ok(&data, &["relay", "configure", &relay_url]);
    let began = Instant::now();
    while !ok(&data, &["relay", "status", "--json"]).contains("\"connected\": true") {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the daemon did not reach the relay"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (daemon, relay, data)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn loopsy(data: &Path) -> Command {
    loopsy_with(Path::new(BIN), data)
}

/// The CLI of the `loopsy` binary at `bin` (another revision's, to compare) on `data`.
pub fn loopsy_with(bin: &Path, data: &Path) -> Command {
    let mut command = Command::new(bin);
    // `~` (the transfer root) is the benchmark's temp dir, never the real home.
    let home = data.parent().unwrap_or(data);
    command
        .arg("--data-dir")
        .arg(data)
        .env_remove("LOOPSY_DATA_DIR")
        .env("HOME", home);
    command
}

pub fn health_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = format!(
        "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

pub fn start_daemon(data: &Path) -> (Daemon, Duration) {
    start_daemon_with(Path::new(BIN), data)
}

/// A daemon of the binary at `bin` on `data`, and how long it took to answer.
pub fn start_daemon_with(bin: &Path, data: &Path) -> (Daemon, Duration) {
    let port = free_port();
    let began = Instant::now();
    let child = loopsy_with(bin, data)
        .args(["start", "--foreground", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn daemon");
    while !health_ok(port) {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = began.elapsed();
    (
        Daemon {
            child,
            port,
            data: data.to_owned(),
        },
        elapsed,
    )
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Bytes of text `cat` pushes through a terminal in the PTY benchmarks.
pub const TEXT_BYTES: usize = 200 * 1000 * 1000;
/// Printed after the text, so a reader knows the end has come.
pub const CAT_MARKER: &[u8] = b"END_MARK_OK";

/// 200 MB of plain numbered lines.
pub fn write_text_file(path: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut written = 0;
    let mut n = 0u64;
    while written < TEXT_BYTES {
        let line = format!("line {n:>10} of the benchmark text, plain ascii, nothing fancy\n");
        out.write_all(line.as_bytes()).unwrap();
        written += line.len();
        n += 1;
    }
}

/// The command line that prints the text and then the marker.
pub fn cat_command(text: &Path) -> String {
    format!("cat {}; printf 'END_%s_OK\\n' MARK\n", text.display())
}

/// Reads until `marker` shows up; returns the bytes read.
pub fn drain_until(read: &mut dyn FnMut() -> Option<Vec<u8>>, marker: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    while let Some(chunk) = read() {
        total += chunk.len() as u64;
        tail.extend_from_slice(&chunk);
        if tail.windows(marker.len()).any(|w| w == marker) {
            break;
        }
        let keep = tail.len().saturating_sub(marker.len());
        tail.drain(..keep);
    }
    total
}

/// The baselines of a terminal: `command` in a PTY of our own, read directly,
/// and the keystroke echo round trip of `cat` in raw mode on it.
/// A shell on a PTY read directly (no daemon): the baselines. After the
/// `cat`, it runs `stty raw -echo; cat`, ready for echo rounds.
pub struct DirectPty {
    pub bytes: u64,
    pub secs: f64,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
}

impl DirectPty {
    /// One keystroke through the PTY and back.
    pub fn echo_round(&mut self) -> Duration {
        let mut sink = [0u8; 4096];
        let t = Instant::now();
        self.writer.write_all(b"x").unwrap();
        let mut got = 0;
        while got == 0 {
            got = self.reader.read(&mut sink).unwrap();
        }
        t.elapsed()
    }
}

impl Drop for DirectPty {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub fn direct_pty(command: &str) -> DirectPty {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new("sh");
    cmd.env("PS1", "$ ");
    let child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut writer = pair.master.take_writer().unwrap();
    let began = Instant::now();
    writer.write_all(command.as_bytes()).unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let bytes = drain_until(
        &mut || match reader.read(&mut buffer) {
            Ok(n) if n > 0 => Some(buffer[..n].to_vec()),
            _ => None,
        },
        CAT_MARKER,
    );
    let secs = began.elapsed().as_secs_f64();
    writer.write_all(b"stty raw -echo; cat\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut sink = [0u8; 4096];
    let _ = reader.read(&mut sink);
    DirectPty {
        bytes,
        secs,
        child,
        reader,
        writer,
    }
}

/// A JSON frame's bytes, encoded by the daemon's own framing.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame_blocking(
        &mut out,
        Frame::Json(bytes::Bytes::copy_from_slice(payload)),
    )
    .unwrap();
    out
}

/// A frame of any type from the daemon: (type, payload).
pub fn read_any(stream: &mut impl Read) -> (u8, Vec<u8>) {
    read_any_timeout(stream).expect("a frame from the daemon")
}

pub fn write_binary(stream: &mut UnixStream, bytes: &[u8]) {
    let frame = Frame::Binary(bytes::Bytes::copy_from_slice(bytes));
    write_frame_blocking(stream, frame).unwrap();
}

pub fn rpc(stream: &mut UnixStream, id: u64, method: &str, params: &str) {
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
    stream.write_all(&frame(body.as_bytes())).unwrap();
}

/// The next frame as (1 JSON or 2 binary, payload), or `None` on a timeout or end.
pub fn read_any_timeout(stream: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    match read_frame_blocking(stream, usize::MAX).ok()? {
        Frame::Json(payload) => Some((1, payload.to_vec())),
        Frame::Binary(payload) => Some((2, payload.to_vec())),
    }
}

/// Starts `sh` as a session and attaches a second connection to it.
/// Starts a session with `params` on `control`; its id.
pub fn start_session(control: &mut UnixStream, params: &str) -> String {
    rpc(control, 1, "session.start", params);
    let (_, answer) = read_any(control);
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    answer["result"]["id"].as_str().unwrap().to_owned()
}

pub fn session_with_client(socket: &Path) -> (String, UnixStream) {
    let mut control = UnixStream::connect(socket).unwrap();
    let id = start_session(&mut control, r#"{"command":"sh","env":{"PS1":"$ "}}"#);
    let mut client = UnixStream::connect(socket).unwrap();
    rpc(
        &mut client,
        1,
        "session.attach",
        &format!(r#"{{"id":"{id}"}}"#),
    );
    (id, client)
}

/// Puts the attached session's shell into `cat` in raw mode, then measures 500
/// keystroke round trips (one byte out, its echo back).
/// Starts `stty raw -echo; cat` in an attached session and drains what the
/// command line printed, ready for [`session_echo_round`].
pub fn prepare_session_echo(typing: &mut UnixStream, client: &mut BufReader<UnixStream>) {
    write_binary(typing, b"stty raw -echo; cat\n");
    std::thread::sleep(Duration::from_millis(300));
    client
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while read_any_timeout(client).is_some() {}
    client.get_ref().set_read_timeout(None).unwrap();
}

/// One keystroke through the daemon's session and back.
pub fn session_echo_round(typing: &mut UnixStream, client: &mut BufReader<UnixStream>) -> Duration {
    let t = Instant::now();
    write_binary(typing, b"x");
    loop {
        let (kind, payload) = read_any(client);
        if kind == 2 && !payload.is_empty() {
            break;
        }
    }
    t.elapsed()
}

/// Rounds of each measurement, taken in turns (blocks of `BLOCK`) so that
/// the baseline and the subject see the same moments of the machine.
pub fn interleaved<const N: usize>(
    rounds: usize,
    mut measures: [&mut dyn FnMut() -> Duration; N],
) -> [Vec<Duration>; N] {
    const BLOCK: usize = 25;
    let mut results: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    // A first block of each, not kept: warm caches and code paths.
    for measure in measures.iter_mut() {
        for _ in 0..BLOCK {
            measure();
        }
    }
    while results[0].len() < rounds {
        for (measure, result) in measures.iter_mut().zip(results.iter_mut()) {
            for _ in 0..BLOCK {
                result.push(measure());
            }
        }
    }
    for result in results.iter_mut() {
        result.sort();
    }
    results
}

/// Rounds of each measurement at a person's typing cadence: one keystroke of
/// each in turn, every one after a pause of 80–150 ms (a fixed pseudo-random
/// sequence, so runs compare). Back-to-back rounds hide what idle costs: a
/// woken reader, an emulator hold tuned to bursts, a cold cache.
pub fn interleaved_at_cadence<const N: usize>(
    rounds: usize,
    mut measures: [&mut dyn FnMut() -> Duration; N],
) -> [Vec<Duration>; N] {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pause = || {
        // xorshift64: spread enough for pauses, no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        std::thread::sleep(Duration::from_millis(80 + state % 71));
    };
    let mut results: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    for round in 0..rounds + 2 {
        for (measure, result) in measures.iter_mut().zip(results.iter_mut()) {
            pause();
            let took = measure();
            // The first two of each warm up and are not kept.
            if round >= 2 {
                result.push(took);
            }
        }
    }
    for result in results.iter_mut() {
        result.sort();
    }
    results
}

/// The owner's API key from `data`'s `config.yaml`.
pub fn api_key(data: &Path) -> String {
    std::fs::read_to_string(data.join("config.yaml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("apiKey: \"")
                .map(|k| k.trim_end_matches('"').to_owned())
        })
        .unwrap()
}
