//! Two daemons on loopback, paired over their sockets (both owners accept),
//! with the rate limits lifted for a run: what the peer and MCP benches share.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loopsy_transports::client::UnixRpcClient;
use serde_json::{Value, json};

use super::{Daemon, ok, start_daemon};

pub fn client(data: &Path) -> UnixRpcClient {
    UnixRpcClient::connect(&data.join("loopsyd.sock"), Duration::from_secs(60))
        .unwrap()
        .without_read_timeout()
        .unwrap()
}

fn wait_state(socket: &mut UnixRpcClient, method: &str, leaving: &[&str]) -> Value {
    let began = Instant::now();
    loop {
        let status = socket.call(method, None).unwrap();
        if !leaving.contains(&status["state"].as_str().unwrap_or_default()) {
            return status;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "pairing stalled: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pairs `host` and `joiner` over their sockets (both owners accept), each
/// granting the other exec, transfer, context and shells; the host's TLS port.
pub fn pair(host: &Path, joiner: &Path, host_port: u16) {
    let (mut h, mut j) = (client(host), client(joiner));
    let code = h.call("peers.pair.open", None).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    j.call(
        "peers.join",
        Some(&json!({"address": format!("127.0.0.1:{}", host_port + 1), "code": code})),
    )
    .unwrap();
    assert_eq!(
        wait_state(&mut j, "peers.join.status", &["connecting"])["state"],
        "comparing"
    );
    let grants =
        json!({"accept": true, "grants": ["exec", "transfer", "context", "sessions:shell"]});
    j.call("peers.join.confirm", Some(&grants)).unwrap();
    h.call("peers.pair.confirm", Some(&grants)).unwrap();
    assert_eq!(
        wait_state(&mut j, "peers.join.status", &["waiting-for-peer"])["state"],
        "paired"
    );
}

/// Kai and Mira on loopback, Mira hosting the pairing.
pub struct PairedDaemons {
    pub kai: Daemon,
    pub mira: Daemon,
    pub kai_data: PathBuf,
    pub mira_data: PathBuf,
    pub mira_node: String,
}

/// Kai and Mira, started in `dir` and paired, their rate limits lifted.
pub fn two_paired_daemons(dir: &Path) -> PairedDaemons {
    let (kai_data, mira_data) = (dir.join("kai/data"), dir.join("mira/data"));
    for data in [&kai_data, &mira_data] {
        ok(data, &["init"]);
        // Every principal is rate limited; lift the limits for the run.
        let config = data.join("config.yaml");
        let text = std::fs::read_to_string(&config).unwrap();
        let text = ["execute: 30", "transfer: 10", "context: 60", "default: 120"]
            .iter()
            .fold(text, |text, limit| {
                let (name, _) = limit.split_once(':').unwrap();
                text.replace(limit, &format!("{name}: 1000000"))
            });
        std::fs::write(&config, text).unwrap();
    }
    let (kai, _) = start_daemon(&kai_data);
    let (mira, _) = start_daemon(&mira_data);
    pair(&mira_data, &kai_data, mira.port);
    let mira_node = client(&mira_data).call("status", None).unwrap()["nodeId"]
        .as_str()
        .unwrap()
        .to_owned();
    PairedDaemons {
        kai,
        mira,
        kai_data,
        mira_data,
        mira_node,
    }
}
