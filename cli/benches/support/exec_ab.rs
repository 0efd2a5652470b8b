//! `POST /api/v1/execute {"command":"true"}`: this build's daemon against the
//! daemon of an earlier revision (`LOOPSY_BENCH_BEFORE`, the path of its
//! `loopsy` binary; `just bench` builds the one before the threading change)
//! and a bare spawn+wait of `true`, in interleaved rounds of the same run, so
//! that machine noise falls on every side alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::http::{Load, http_load, json_request};
use super::{BIN, Daemon, api_key, loopsy_with, percentile, start_daemon_with};

const ROUNDS: usize = 5;
const SPAWNS_PER_ROUND: usize = 200;
const SEQUENTIAL_SECONDS: u64 = 2;
const CLIENTS: usize = 8;
const CONCURRENT_SECONDS: u64 = 3;

struct Side {
    name: &'static str,
    daemon: Daemon,
    key: String,
    p50: Vec<f64>,
    rate: Vec<f64>,
}

fn side(name: &'static str, bin: &Path, data: PathBuf) -> Side {
    let init = loopsy_with(bin, &data)
        .arg("init")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(init.success(), "{} init failed", bin.display());
    let (daemon, _) = start_daemon_with(bin, &data);
    Side {
        name,
        key: api_key(&data),
        daemon,
        p50: Vec::new(),
        rate: Vec::new(),
    }
}

fn exec_load(side: &Side, clients: usize, seconds: u64) -> Load {
    let (port, key) = (side.daemon.port, side.key.clone());
    http_load(port, clients, seconds, move |_, _| {
        json_request(
            port,
            "POST",
            "/api/v1/execute",
            &key,
            r#"{"command":"true"}"#,
        )
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

pub fn exec_before_after(tmp: &Path) {
    let mut sides = vec![side("this build", Path::new(BIN), tmp.join("exec-now"))];
    match std::env::var_os("LOOPSY_BENCH_BEFORE").map(PathBuf::from) {
        Some(before) => sides.push(side("before", &before, tmp.join("exec-before"))),
        None => println!(
            "(exec before/after: set LOOPSY_BENCH_BEFORE to an earlier revision's loopsy binary; `just bench` builds it)"
        ),
    }
    let mut spawn_p50 = Vec::new();
    for _ in 0..ROUNDS {
        let mut spawns: Vec<Duration> = (0..SPAWNS_PER_ROUND)
            .map(|_| {
                let t = std::time::Instant::now();
                Command::new("true").status().unwrap();
                t.elapsed()
            })
            .collect();
        spawns.sort();
        spawn_p50.push(percentile(&spawns, 0.5).as_secs_f64());
        for side in &mut sides {
            let sequential = exec_load(side, 1, SEQUENTIAL_SECONDS);
            side.p50
                .push(percentile(&sequential.latencies, 0.5).as_secs_f64());
            let concurrent = exec_load(side, CLIENTS, CONCURRENT_SECONDS);
            assert_eq!(concurrent.failed, 0, "{}: failed execs", side.name);
            side.rate.push(concurrent.rate);
        }
    }
    let spawn = median(&spawn_p50);
    println!(
        "exec `true` over HTTP, {ROUNDS} interleaved rounds (medians; spawn+wait of `true` p50 {:.2} ms)",
        spawn * 1000.0
    );
    for side in &sides {
        println!(
            "  {:<10} p50 {:.2} ms ({:.2}x spawn+wait), {CLIENTS} clients {:.0} req/s",
            side.name,
            median(&side.p50) * 1000.0,
            median(&side.p50) / spawn,
            median(&side.rate),
        );
    }
    if let [now, before] = &sides[..] {
        let ratios =
            |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| a / b).collect() };
        let p50 = ratios(&now.p50, &before.p50);
        let rate = ratios(&now.rate, &before.rate);
        println!(
            "  this build / before: p50 {:.2}x (rounds {}), req/s {:.2}x (rounds {})\n",
            median(&p50),
            p50.iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" "),
            median(&rate),
            rate.iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
}
