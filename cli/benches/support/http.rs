//! A keep-alive HTTP load generator and the requests it sends, shared by the
//! benches that drive the LAN API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Reads one HTTP response (headers + Content-Length body); false on error.
pub fn read_response(
    reader: &mut BufReader<TcpStream>,
    line: &mut String,
    body: &mut Vec<u8>,
) -> bool {
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

/// Throughput and latency of one load run.
pub struct Load {
    pub rate: f64,
    pub failed: u64,
    pub latencies: Vec<Duration>,
}

/// `clients` keep-alive connections sending `request(client, n)` for `seconds`;
/// a non-200 answer counts as failed.
pub fn http_load(
    port: u16,
    clients: usize,
    seconds: u64,
    request: impl Fn(usize, u64) -> Vec<u8> + Send + Sync + 'static,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let request = Arc::new(request);
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (stop, done, failed, request) =
                (stop.clone(), done.clone(), failed.clone(), request.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let (mut line, mut body) = (String::new(), Vec::new());
                let mut latencies = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    writer.write_all(&request(client, n)).unwrap();
                    n += 1;
                    if read_response(&mut reader, &mut line, &mut body) {
                        latencies.push(t.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return latencies;
                    }
                }
                latencies
            })
        })
        .collect();
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = began.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    latencies.sort();
    Load {
        rate: done.load(Ordering::Relaxed) as f64 / elapsed,
        failed: failed.load(Ordering::Relaxed),
        latencies,
    }
}

pub fn get_request(port: u16, path: &str, key: Option<&str>) -> Vec<u8> {
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n").into_bytes()
}

pub fn json_request(port: u16, method: &str, path: &str, key: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
