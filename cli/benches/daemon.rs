//! `just bench`: the daemon's cold start, idle memory, Unix-socket JSON-RPC round
//! trip and LAN HTTP throughput, each next to a baseline measured in the same run
//! on the same machine, so the figures read as ratios rather than absolutes.
//!
//! Baselines: process spawn (`/bin/true`) for cold start; an idle `sleep` for RSS;
//! an in-process Unix-socket echo of the same frames for the JSON-RPC round trip;
//! a minimal keep-alive HTTP responder on loopback, driven by the same load
//! generator, for HTTP throughput.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_loopsy");
const COLD_STARTS: usize = 10;
const RPC_CALLS: usize = 20_000;
const HTTP_CLIENTS: usize = 8;
const HTTP_SECONDS: u64 = 5;

struct Daemon {
    child: Child,
    port: u16,
    data: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn loopsy(data: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data)
        .env_remove("LOOPSY_DATA_DIR");
    command
}

fn health_ok(port: u16) -> bool {
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

fn start_daemon(data: &Path) -> (Daemon, Duration) {
    let port = free_port();
    let began = Instant::now();
    let child = loopsy(data)
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(1);
    out.extend_from_slice(payload);
    out
}

fn read_frame(stream: &mut impl Read, buf: &mut Vec<u8>) {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).unwrap();
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize - 1;
    buf.resize(len, 0);
    stream.read_exact(buf).unwrap();
}

/// Sequential round trips on one connection: latencies and calls per second.
fn round_trips(stream: &mut UnixStream, request: &[u8], calls: usize) -> (Vec<Duration>, f64) {
    let mut buf = Vec::new();
    let mut latencies = Vec::with_capacity(calls);
    let began = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        stream.write_all(request).unwrap();
        read_frame(stream, &mut buf);
        latencies.push(t.elapsed());
    }
    let rate = calls as f64 / began.elapsed().as_secs_f64();
    latencies.sort();
    (latencies, rate)
}

fn echo_server(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    let reply = frame(&vec![b'x'; 420]);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut header = [0u8; 5];
                while stream.read_exact(&mut header).is_ok() {
                    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]])
                        as usize
                        - 1;
                    buf.resize(len, 0);
                    if stream.read_exact(&mut buf).is_err() || stream.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// A keep-alive HTTP/1.1 responder: the ceiling for loopback HTTP with this client.
fn http_baseline_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = r#"{"nodeId":"00000000-0000-0000-0000-000000000000","status":"ok","uptime":1,"version":"1.0.53"}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/json\r\nx-request-id: 00000000-000001\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let response = response.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            if writer.write_all(response.as_bytes()).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    port
}

/// Reads one HTTP response (headers + Content-Length body); false on error.
fn read_response(reader: &mut BufReader<TcpStream>, line: &mut String, body: &mut Vec<u8>) -> bool {
    let mut length = 0usize;
    let mut ok = false;
    loop {
        line.clear();
        if reader.read_line(line).unwrap_or(0) == 0 {
            return false;
        }
        if line.starts_with("HTTP/1.1 200") {
            ok = true;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    body.resize(length, 0);
    reader.read_exact(body).is_ok() && ok
}

/// `clients` keep-alive connections hammering GET /api/v1/health for `seconds`.
fn http_load(port: u16, clients: usize, seconds: u64) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let request = format!("GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, done, failed, request) =
                (stop.clone(), done.clone(), failed.clone(), request.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let (mut line, mut body) = (String::new(), Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    writer.write_all(request.as_bytes()).unwrap();
                    if read_response(&mut reader, &mut line, &mut body) {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            })
        })
        .collect();
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = began.elapsed().as_secs_f64();
    for t in threads {
        let _ = t.join();
    }
    (
        done.load(Ordering::Relaxed) as f64 / elapsed,
        failed.load(Ordering::Relaxed),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test --benches` asks benches to list their tests; this harness has none.
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(
        loopsy(&data)
            .arg("init")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    println!(
        "loopsy daemon benchmark ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Cold start.
    let mut spawn_baseline = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..COLD_STARTS {
        let t = Instant::now();
        Command::new("/bin/true").status().unwrap();
        spawn_baseline.push(t.elapsed());
        let (daemon, elapsed) = start_daemon(&data);
        cold.push(elapsed);
        drop(daemon);
        // The killed daemon's lock must be free before the next start.
        while Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .arg("status")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    cold.sort();
    spawn_baseline.sort();
    let cold_p50 = percentile(&cold, 0.5);
    let spawn_p50 = percentile(&spawn_baseline, 0.5);
    println!("cold start → first healthy /api/v1/health (n={COLD_STARTS})");
    println!(
        "  loopsy p50 {:.1} ms, max {:.1} ms; baseline spawn of /bin/true p50 {:.2} ms; ratio {:.1}x",
        ms(cold_p50),
        ms(*cold.last().unwrap()),
        ms(spawn_p50),
        cold_p50.as_secs_f64() / spawn_p50.as_secs_f64()
    );
    println!("  target < 30 ms; the original: 705 ms (shared/benchmarks/baselines.md)\n");

    let (daemon, _) = start_daemon(&data);

    // Idle RSS.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let daemon_rss = rss_kib(daemon.child.id());
    let sleep_rss = rss_kib(sleeper.id());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    println!("idle RSS, 2 s after start");
    println!(
        "  loopsy {:.1} MiB; baseline idle `sleep` {:.1} MiB; ratio {:.1}x",
        daemon_rss as f64 / 1024.0,
        sleep_rss as f64 / 1024.0,
        daemon_rss as f64 / sleep_rss.max(1) as f64
    );
    println!("  target < 10 MiB; the original: 71-86 MB\n");

    // Unix-socket JSON-RPC round trip.
    let request = frame(br#"{"jsonrpc":"2.0","id":1,"method":"status"}"#);
    let mut stream = UnixStream::connect(daemon.data.join("loopsyd.sock")).unwrap();
    round_trips(&mut stream, &request, 500);
    let (latencies, rate) = round_trips(&mut stream, &request, RPC_CALLS);
    let echo_path = tmp.path().join("echo.sock");
    echo_server(&echo_path);
    let mut echo = UnixStream::connect(&echo_path).unwrap();
    round_trips(&mut echo, &request, 500);
    let (echo_latencies, echo_rate) = round_trips(&mut echo, &request, RPC_CALLS);
    println!("Unix-socket JSON-RPC `status`, sequential, one connection (n={RPC_CALLS})");
    println!(
        "  loopsy p50 {:.3} ms, p99 {:.3} ms, {:.0} calls/s",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        rate
    );
    println!(
        "  baseline frame echo p50 {:.3} ms, p99 {:.3} ms, {:.0} calls/s; loopsy p50 ratio {:.1}x, throughput {:.2}x of baseline\n",
        ms(percentile(&echo_latencies, 0.5)),
        ms(percentile(&echo_latencies, 0.99)),
        echo_rate,
        percentile(&latencies, 0.5).as_secs_f64() / percentile(&echo_latencies, 0.5).as_secs_f64(),
        rate / echo_rate
    );

    // LAN HTTP throughput.
    http_load(daemon.port, HTTP_CLIENTS, 1);
    let (loopsy_rate, loopsy_failed) = http_load(daemon.port, HTTP_CLIENTS, HTTP_SECONDS);
    let baseline_port = http_baseline_server();
    let (baseline_rate, _) = http_load(baseline_port, HTTP_CLIENTS, HTTP_SECONDS);
    println!("LAN HTTP GET /api/v1/health, {HTTP_CLIENTS} keep-alive clients, {HTTP_SECONDS} s");
    println!(
        "  loopsy {:.0} req/s ({} failed); baseline minimal responder {:.0} req/s; ratio {:.2}x",
        loopsy_rate,
        loopsy_failed,
        baseline_rate,
        loopsy_rate / baseline_rate
    );
    println!(
        "  target >= 20,000 req/s; the original: 6,423 req/s (ratio to the original {:.1}x)",
        loopsy_rate / 6423.0
    );
    let rss_after = rss_kib(daemon.child.id());
    println!("\nRSS after the load: {:.1} MiB", rss_after as f64 / 1024.0);
}
