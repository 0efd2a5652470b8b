//! `just bench`, the relay part, all on loopback, each figure beside a
//! baseline from the same run:
//! - memory per idle laptop connection on one node, at 1,000 and at 10,000
//!   connections (the per-connection cost should not grow with the count);
//! - how evenly HAProxy's consistent hashing spreads devices over 3 nodes;
//! - failover: from `kill -9` of a node to each of its laptops being back
//!   through the balancer on another node, against reconnecting as many
//!   laptops through the balancer with no node dying;
//! - pairings per second through the balancer against one node directly.
//!
//! Needs Debian's postgresql and haproxy (as the tests do).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

#[path = "../../relay/tests/relay/balancer.rs"]
mod balancer;
#[path = "../../relay/tests/relay/postgres_server.rs"]
mod postgres_server;

use std::collections::VecDeque;
use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::raw_ws::{read_text, send_text, upgrade};
use support::*;

/// Flags that lift the relay's per-address limits: every client here is 127.0.0.1.
const UNLIMITED: [&str; 6] = [
    "--max-connections-per-ip",
    "1000000",
    "--registrations-per-minute",
    "1000000",
    "--registrations-per-minute-total",
    "1000000",
];

fn connections_wanted() -> usize {
    std::env::var("LOOPSY_BENCH_RELAY_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

fn laptop(host: &str, device: &(String, String)) -> std::io::Result<TcpStream> {
    upgrade(
        host,
        &format!("/laptop/connect?device_id={}", device.0),
        &device.1,
    )
}

/// Memory per idle laptop connection on one node (SQLite), at 1,000 and at `many`.
fn memory(dir: &std::path::Path) {
    // Each connection is a descriptor here and one in the relay, a process of
    // its own that inherits the limit.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let wanted = (connections_wanted() as u64 + 1024)
        .max(limit.current.unwrap_or(u64::MAX))
        .min(limit.maximum.unwrap_or(u64::MAX));
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        },
    );
    let many = connections_wanted().min((wanted as usize).saturating_sub(1024));
    let (relay, url) = relay(&dir.join("memory"), &UNLIMITED);
    let pid = relay.0.id();
    let devices = register_many(&url, many, 8);
    let host = host_port(&url);
    let settle = || std::thread::sleep(Duration::from_millis(1500));
    settle();
    let idle = vm_kib(pid, "VmRSS:");
    let mut sockets = Vec::with_capacity(many);
    let first = many.min(1000);
    for device in &devices[..first] {
        sockets.push(laptop(&host, device).unwrap());
    }
    settle();
    let at_first = vm_kib(pid, "VmRSS:");
    for device in &devices[first..] {
        sockets.push(laptop(&host, device).unwrap());
    }
    settle();
    let at_many = vm_kib(pid, "VmRSS:");
    let per = |rss: u64, n: usize| (rss.saturating_sub(idle)) as f64 / n as f64;
    let (small, large) = (per(at_first, first), per(at_many, many));
    println!(
        "relay memory per idle laptop connection  {large:>6.1} KiB at {many}   {small:>6.1} KiB at {first}   ratio {:.2}x (RSS {idle} KiB idle -> {at_many} KiB; for reference, the issue's target is under 64 KiB each)",
        large / small
    );
    drop(sockets);
}

struct Fleet {
    nodes: Vec<Option<Relay>>,
    ports: Vec<u16>,
    url: String,
    _balancer: Relay,
    database: String,
    metrics: std::path::PathBuf,
    dir: std::path::PathBuf,
}

/// Node `i` of the fleet, started and answering on its port.
fn start_node(
    dir: &std::path::Path,
    i: usize,
    port: u16,
    database: &str,
    url: &str,
    metrics: &std::path::Path,
) -> Relay {
    let data = dir.join(format!("node{i}"));
    let child = balancer::node_command(BIN, &data, port, database, url, metrics, &UNLIMITED)
        .spawn()
        .unwrap();
    while ureq::get(&format!("http://127.0.0.1:{port}/health"))
        .call()
        .is_err()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    Relay(child)
}

fn fleet(dir: &std::path::Path) -> Fleet {
    let database = postgres_server::fresh_database();
    let balancer_port = free_port();
    let url = format!("http://127.0.0.1:{balancer_port}");
    std::fs::create_dir_all(dir).unwrap();
    let metrics = dir.join("metrics");
    std::fs::write(&metrics, "bench").unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes = (0..3)
        .map(|i| Some(start_node(dir, i, ports[i], &database, &url, &metrics)))
        .collect();
    let balancer = balancer::start_balancer(dir, balancer_port, &ports);
    while ureq::get(&format!("{url}/health")).call().is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    Fleet {
        nodes,
        ports,
        url,
        _balancer: Relay(balancer),
        database,
        metrics,
        dir: dir.to_path_buf(),
    }
}

impl Fleet {
    /// Starts node `i` again on its port; returns once HAProxy has it back (`rise 2`).
    fn restart(&mut self, i: usize) {
        self.nodes[i] = Some(start_node(
            &self.dir,
            i,
            self.ports[i],
            &self.database,
            &self.url,
            &self.metrics,
        ));
        std::thread::sleep(Duration::from_millis(1500));
    }

    fn laptops_on(&self, i: usize) -> u64 {
        let page = ureq::get(&format!("http://127.0.0.1:{}/metrics", self.ports[i]))
            .header("Authorization", "Bearer bench")
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        page.lines()
            .find_map(|l| l.strip_prefix("loopsy_relay_connections{side=\"laptop\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Reconnects `devices` through the balancer, `parallel` at a time, each
/// retried until in; the time from `since` to each one being back, sorted.
fn reconnect_all(
    host: &str,
    devices: Vec<(String, String)>,
    since: Instant,
    parallel: usize,
) -> (Vec<Duration>, Vec<TcpStream>) {
    let queue = Arc::new(Mutex::new(devices.into_iter().collect::<VecDeque<_>>()));
    let results = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            let (queue, results) = (queue.clone(), results.clone());
            scope.spawn(move || {
                loop {
                    // Popped apart from the loop's body: the queue stays unlocked while connecting.
                    let next = queue.lock().unwrap().pop_front();
                    let Some(device) = next else { break };
                    let mut tries = 0;
                    let socket = loop {
                        match laptop(host, &device) {
                            Ok(socket) => break socket,
                            Err(e) => {
                                tries += 1;
                                assert!(
                                    tries < 400,
                                    "a laptop could not get back in for 20 s: {e}"
                                );
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    };
                    let mut held = results.lock().unwrap();
                    held.0.push(since.elapsed());
                    held.1.push(socket);
                }
            });
        }
    });
    let (mut times, sockets) = Arc::try_unwrap(results).unwrap().into_inner().unwrap();
    times.sort();
    (times, sockets)
}

/// Which sockets the relay closed (a killed node's), without waiting on live ones.
fn closed(sockets: &mut [TcpStream]) -> Vec<bool> {
    sockets
        .iter_mut()
        .map(|s| {
            s.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 64];
            let gone = matches!(s.read(&mut byte), Ok(0)) || matches!(s.read(&mut byte), Err(e) if e.kind() != std::io::ErrorKind::WouldBlock);
            s.set_nonblocking(false).unwrap();
            gone
        })
        .collect()
}

/// Spread over three nodes, then failover against plain reconnects.
fn spread_and_failover(dir: &std::path::Path) {
    const DEVICES: usize = 3000;
    const PARALLEL: usize = 32;
    let mut fleet = fleet(&dir.join("fleet"));
    let host = host_port(&fleet.url);
    let devices = register_many(&fleet.url, DEVICES, 8);
    let mut sockets: Vec<TcpStream> = devices.iter().map(|d| laptop(&host, d).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let counts: Vec<u64> = (0..3).map(|i| fleet.laptops_on(i)).collect();
    let mean = counts.iter().sum::<u64>() as f64 / 3.0;
    let most = *counts.iter().max().unwrap();
    println!(
        "spread of {DEVICES} laptops over 3 nodes (HAProxy, consistent hash)  max/mean {:.2}x   per node {counts:?}",
        most as f64 / mean
    );

    // Several rounds: kill the busiest node, time its laptops back through the
    // balancer, then (the baseline) close as many laptops ourselves and time
    // them back the same way with no node dying; restart the node and spread
    // every laptop afresh before the next round.
    const ROUNDS: usize = 3;
    let (mut failover, mut plain, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let mut moved = 0;
    for _ in 0..ROUNDS {
        let counts: Vec<u64> = (0..3).map(|i| fleet.laptops_on(i)).collect();
        let victim = (0..3).max_by_key(|&i| counts[i]).unwrap();
        let killed = Instant::now();
        drop(fleet.nodes[victim].take());
        // The killed node's sockets tell which laptops were there.
        std::thread::sleep(Duration::from_millis(300));
        let gone = closed(&mut sockets);
        let orphans: Vec<(String, String)> = devices
            .iter()
            .zip(&gone)
            .filter(|(_, g)| **g)
            .map(|(d, _)| d.clone())
            .collect();
        moved += orphans.len();
        let (times, back) = reconnect_all(&host, orphans.clone(), killed, PARALLEL);
        first.push(times[0]);
        failover.extend(times);
        drop(back);
        std::thread::sleep(Duration::from_millis(500));
        let began = Instant::now();
        let (times, back) = reconnect_all(&host, orphans, began, PARALLEL);
        plain.extend(times);
        drop(back);
        fleet.restart(victim);
        drop(sockets);
        sockets = devices.iter().map(|d| laptop(&host, d).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(500));
    }
    failover.sort();
    plain.sort();
    first.sort();
    println!(
        "node killed -> its laptops back on live nodes   p50 {:>7.1} ms  p99 {:>7.1} ms   plain reconnect of as many p50 {:.1} ms p99 {:.1} ms   ratio p50 {:.1}x p99 {:.1}x ({ROUNDS} kills, {moved} laptops moved, {PARALLEL} reconnecting at a time; the first back {:.0}-{:.0} ms after the kill)",
        ms(percentile(&failover, 0.5)),
        ms(percentile(&failover, 0.99)),
        ms(percentile(&plain, 0.5)),
        ms(percentile(&plain, 0.99)),
        ms(percentile(&failover, 0.5)) / ms(percentile(&plain, 0.5)),
        ms(percentile(&failover, 0.99)) / ms(percentile(&plain, 0.99)),
        ms(first[0]),
        ms(first[first.len() - 1]),
    );

    pairings(&fleet);
}

/// One pairing on `route` for the laptop `held` of `device`: issue, pairing
/// socket, the laptop's accept, the phone's credentials.
fn pair_once(route: &str, device: &(String, String), held: &mut TcpStream) -> Duration {
    let began = Instant::now();
    let text = ureq::post(&format!("{route}/pair/issue?device_id={}", device.0))
        .header("Authorization", &format!("Bearer {}", device.1))
        .content_type("application/json")
        .send(r#"{"ttlSeconds": 60}"#)
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let issued: Value = serde_json::from_str(&text).unwrap();
    let token = issued["token"].as_str().unwrap();
    let mut pairing = upgrade(
        &host_port(route),
        &format!("/pair/connect/{}", device.0),
        token,
    )
    .unwrap();
    let channel = loop {
        let said: Value = serde_json::from_str(&read_text(held).unwrap()).unwrap();
        if said["type"] == "open" {
            break said["channel"].as_u64().unwrap();
        }
    };
    send_text(
        held,
        &format!(r#"{{"type":"pair-accept","channel":{channel}}}"#),
    )
    .unwrap();
    let credentials: Value = serde_json::from_str(&read_text(&mut pairing).unwrap()).unwrap();
    assert_eq!(credentials["type"], "credentials", "{credentials}");
    began.elapsed()
}

/// Pairings one after another through the balancer and directly to one node, interleaved.
fn pairings(fleet: &Fleet) {
    let live = (0..3).find(|&i| fleet.nodes[i].is_some()).unwrap();
    let direct = format!("http://127.0.0.1:{}", fleet.ports[live]);
    let through = fleet.url.clone();
    let mut routes: Vec<(String, (String, String), TcpStream)> = [through, direct]
        .into_iter()
        .map(|route| {
            let device = register_many(&route, 1, 1).remove(0);
            let held = laptop(&host_port(&route), &device).unwrap();
            (route, device, held)
        })
        .collect();
    let mut times = [Vec::new(), Vec::new()];
    for _block in 0..10 {
        for (n, (route, device, held)) in routes.iter_mut().enumerate() {
            for _ in 0..20 {
                times[n].push(pair_once(route, device, held));
            }
        }
    }
    let rate = |t: &[Duration]| t.len() as f64 / t.iter().sum::<Duration>().as_secs_f64();
    println!(
        "pairings one after another: through HAProxy {:>6.1}/s   one node directly {:>6.1}/s   ratio {:.2}x ({} each, interleaved blocks of 20; issue + pairing socket + accept + credentials)",
        rate(&times[0]),
        rate(&times[1]),
        rate(&times[0]) / rate(&times[1]),
        times[0].len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    println!(
        "relay on loopback ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    memory(dir.path());
    spread_and_failover(dir.path());
}
