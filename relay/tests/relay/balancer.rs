//! HAProxy for the fleet tests (the relay's and the CLI's): Debian's binary
//! with the shipped `config-examples/haproxy.cfg`, changed only in the ports.

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
