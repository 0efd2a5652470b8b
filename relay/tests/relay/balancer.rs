//! What the fleet tests and benchmarks share (the relay's and the CLI's):
//! HAProxy, Debian's binary with the shipped `config-examples/haproxy.cfg`
//! changed only in the ports, and a node as `loopsy relay serve` runs one.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts HAProxy on `port` in front of the nodes on `nodes` (up to three, as
/// the shipped config names), its config written into `dir`.
pub fn start_balancer(dir: &Path, port: u16, nodes: &[u16]) -> Child {
    assert!(nodes.len() <= 3, "the shipped config names three nodes");
    let mut config = include_str!("../../../config-examples/haproxy.cfg")
        .replace("bind :8787", &format!("bind 127.0.0.1:{port}"));
    for (i, node) in nodes.iter().enumerate() {
        config = config.replace(
            &format!("127.0.0.1:880{}", i + 1),
            &format!("127.0.0.1:{node}"),
        );
    }
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy (install Debian's haproxy)")
}

/// A fleet node: `loopsy relay serve` (`loopsy` at `bin`) on `port`, on the
/// fleet's `database`, behind the balancer at `public_url`, its metrics
/// behind the secret in `metrics`, with `extra` flags.
#[allow(dead_code)]
pub fn node_command(
    bin: &str,
    data: &Path,
    port: u16,
    database: &str,
    public_url: &str,
    metrics: &Path,
    extra: &[&str],
) -> Command {
    let mut command = Command::new(bin);
    command
        .arg("--data-dir")
        .arg(data)
        .args(["relay", "serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--database",
            database,
            "--trusted-proxy",
            "127.0.0.1",
            "--public-url",
            public_url,
        ])
        .arg("--metrics-secret-file")
        .arg(metrics)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}
