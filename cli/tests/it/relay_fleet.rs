//! The real daemon and the test phone on a relay fleet: three `loopsy relay
//! serve` nodes on one PostgreSQL behind HAProxy with the shipped config
//! (`docs/relay.md`). The node that holds a laptop and its phone is killed
//! mid-session: both come back through the balancer on another node, and the
//! phone resumes from its offset with no line lost.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::phone::{assert_numbered_lines, drain, numbered_run, paired, reconnect};

#[path = "../../../relay/tests/relay/balancer.rs"]
mod balancer;
#[path = "../../../relay/tests/relay/postgres_server.rs"]
mod postgres_server;

const METRICS_SECRET: &str = "fleet-metrics";

struct Fleet {
    nodes: Vec<Option<KillOnDrop>>,
    ports: Vec<u16>,
    url: String,
    _balancer: KillOnDrop,
    _dir: tempfile::TempDir,
}

/// Three nodes and HAProxy, all on loopback.
fn fleet() -> Fleet {
    let database = postgres_server::fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics");
    std::fs::write(&metrics, METRICS_SECRET).unwrap();
    let balancer_port = free_port();
    let url = format!("http://127.0.0.1:{balancer_port}");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let node_dir = dir.path().join(format!("node{i}"));
        let child = balancer::node_command(BIN, &node_dir, *port, &database, &url, &metrics, &[])
            .spawn()
            .unwrap();
        nodes.push(Some(KillOnDrop(child)));
        let health = format!("http://127.0.0.1:{port}/health");
        wait_until("a relay node answers", || ureq::get(&health).call().is_ok());
    }
    let balancer = balancer::start_balancer(dir.path(), balancer_port, &ports);
    let health = format!("{url}/health");
    wait_until("HAProxy answers", || ureq::get(&health).call().is_ok());
    // Every node up in HAProxy's eyes (its health checks need `rise 2`).
    sleep(Duration::from_millis(1200));
    Fleet {
        nodes,
        ports,
        url,
        _balancer: KillOnDrop(balancer),
        _dir: dir,
    }
}

impl Fleet {
    /// The live node with a laptop socket open.
    fn holder(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i].is_some() && {
                let page = ureq::get(&format!("http://127.0.0.1:{}/metrics", self.ports[i]))
                    .header("Authorization", &format!("Bearer {METRICS_SECRET}"))
                    .call()
                    .ok()
                    .and_then(|mut r| r.body_mut().read_to_string().ok())
                    .unwrap_or_default();
                page.lines().any(|l| {
                    l.starts_with("loopsy_relay_connections{side=\"laptop\"} ")
                        && !l.ends_with(" 0")
                })
            }
        })
    }
}

#[test]
fn a_session_crosses_the_death_of_its_relay_node_with_no_line_lost() {
    let mut fleet = fleet();
    let loopsy = Loopsy::started();
    loopsy.ok(&["relay", "configure", &fleet.url]);
    let connected = || {
        let out = loopsy.run(&["relay", "status", "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|s| s["connected"] == true)
    };
    wait_until("the daemon's link through the balancer", connected);
    let phone = paired(&loopsy);
    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.unwrap();
        let (id, from, snapshot_bytes, mut output) = numbered_run(&mut connection, 150).await;
        let holder = fleet.holder().expect("a node holds the laptop");

        // kill -9 the node; the balancer takes it out; both sides come back.
        let killed = Instant::now();
        drop(fleet.nodes[holder].take());
        drain(&mut connection, &mut output).await;
        wait_until("the daemon to reconnect through the balancer", connected);
        let mut connection = reconnect(&phone).await;
        let back = killed.elapsed();
        let resume_at = from + output.len() as u64 - snapshot_bytes;
        let (offset, replayed_snapshot) = connection.attach(&id, Some(resume_at)).await;
        assert_eq!(replayed_snapshot, 0, "the gap was still in the ring");
        assert_eq!(offset, resume_at, "resumed exactly where the phone stopped");
        assert!(connection.output_until("ALL-DONE-2", &mut output).await);
        assert_numbered_lines(&output, 150);
        assert!(back < Duration::from_secs(10), "back in {back:?}");
        let now = fleet.holder().expect("a live node holds the laptop again");
        assert_ne!(now, holder);
    });
}
