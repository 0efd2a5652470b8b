//! Does a session flooding output slow the daemon's answers to everyone else?
//! `status` round trips on the Unix socket, in interleaved blocks, while a
//! session runs `yes` with an attached client draining it, and while the same
//! `yes` is stopped (SIGTSTP): same daemon, same session, same moments of the
//! machine, only the flood differs.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{frame, percentile, read_any, rpc};

/// Round trips per block, and blocks of each kind.
const PER_BLOCK: usize = 200;
const BLOCKS: usize = 10;
/// After each switch, time for the flood to start, or for its backlog to drain.
const SETTLE: Duration = Duration::from_millis(400);

fn status_round(stream: &mut UnixStream, request: &[u8]) -> Duration {
    let t = Instant::now();
    stream.write_all(request).unwrap();
    let _ = read_any(stream);
    t.elapsed()
}

fn signal(control: &mut UnixStream, id: &str, signal: &str) {
    rpc(
        control,
        7,
        "session.signal",
        &format!(r#"{{"id":"{id}","signal":"{signal}"}}"#),
    );
    let _ = read_any(control);
}

/// Prints `status` p50/p99 with and without the flood, and their ratios.
pub fn status_under_flood(socket: &Path) {
    let mut control = UnixStream::connect(socket).unwrap();
    let id = super::start_session(&mut control, r#"{"command":"yes"}"#);
    // A client that reads everything, as a phone watching the session would.
    let mut watcher = UnixStream::connect(socket).unwrap();
    rpc(
        &mut watcher,
        1,
        "session.attach",
        &format!(r#"{{"id":"{id}"}}"#),
    );
    let drained = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, done) = (drained.clone(), stop.clone());
    let reader = std::thread::spawn(move || {
        watcher
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        while !done.load(Ordering::Relaxed) {
            if let Some((_, payload)) = super::read_any_timeout(&mut watcher) {
                count.fetch_add(payload.len() as u64, Ordering::Relaxed);
            }
        }
    });
    let request = frame(br#"{"jsonrpc":"2.0","id":1,"method":"status"}"#);
    let mut asker = UnixStream::connect(socket).unwrap();
    for _ in 0..200 {
        status_round(&mut asker, &request);
    }
    let (mut flood, mut idle) = (Vec::new(), Vec::new());
    let began = drained.load(Ordering::Relaxed);
    let mut flood_time = Duration::ZERO;
    for _ in 0..BLOCKS {
        // The flood's time runs from CONT to TSTP, as the watcher's bytes do.
        let t = Instant::now();
        signal(&mut control, &id, "CONT");
        std::thread::sleep(SETTLE);
        flood.extend((0..PER_BLOCK).map(|_| status_round(&mut asker, &request)));
        signal(&mut control, &id, "TSTP");
        flood_time += t.elapsed();
        std::thread::sleep(SETTLE);
        idle.extend((0..PER_BLOCK).map(|_| status_round(&mut asker, &request)));
    }
    let flooded_bytes = drained.load(Ordering::Relaxed) - began;
    stop.store(true, Ordering::Relaxed);
    signal(&mut control, &id, "KILL");
    let _ = reader.join();
    flood.sort();
    idle.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ratio = |p: f64| percentile(&flood, p).as_secs_f64() / percentile(&idle, p).as_secs_f64();
    println!(
        "Unix-socket `status` while a session floods (`yes`, a client draining it), {BLOCKS} interleaved blocks of {PER_BLOCK}"
    );
    println!(
        "  flooding: p50 {:.3} ms, p99 {:.3} ms (the watcher took ~{:.0} MB/s of output)",
        ms(percentile(&flood, 0.5)),
        ms(percentile(&flood, 0.99)),
        flooded_bytes as f64 / flood_time.as_secs_f64().max(1e-9) / 1e6
    );
    println!(
        "  same session stopped: p50 {:.3} ms, p99 {:.3} ms; ratio p50 {:.2}x, p99 {:.2}x (target at most 2x)\n",
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 0.99)),
        ratio(0.5),
        ratio(0.99)
    );
}
