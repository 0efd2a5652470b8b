//! Avahi, the mDNS stack of most Linux desktops, lists our daemon: the service
//! and TXT records we announce are what other mDNS software understands, not
//! just what our own browser parses. Avahi runs in one network namespace
//! (on a private D-Bus, so the machine's own buses are untouched), our daemon
//! in the other, and the announcement crosses the veth between them as
//! multicast. Skipped, with the reason printed, without root or without
//! Debian's `avahi-daemon`, `avahi-utils` and `dbus` (CI installs them).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{KillOnDrop, wait_until};
use crate::netns::{Link, daemon_in};
use crate::peers::{fingerprint_of, node_id};

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A system-type D-Bus of the test's own, open to everyone in it: Avahi
/// registers there and `avahi-browse` asks it.
fn private_bus(dir: &Path) -> (KillOnDrop, String) {
    let socket = dir.join("bus");
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .expect("bus config");
    let child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .arg("--nofork")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dbus-daemon");
    wait_until("the private D-Bus listens", || socket.exists());
    (KillOnDrop(child), format!("unix:path={}", socket.display()))
}

/// Avahi in namespace `ns`, browsing only (it publishes nothing). Its pid file
/// lives on a tmpfs private to that process's mount namespace, so a system
/// Avahi, if any, is not disturbed.
fn avahi_in(ns: &str, bus: &str, dir: &Path) -> KillOnDrop {
    let config = dir.join("avahi.conf");
    std::fs::write(
        &config,
        "[server]\nhost-name=avahi-probe\nuse-ipv4=yes\nuse-ipv6=no\nenable-dbus=yes\n\
         [publish]\ndisable-publishing=yes\n",
    )
    .expect("avahi config");
    let script = format!(
        "mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon && \
         exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f {}",
        config.display()
    );
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", &script])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start avahi-daemon");
    KillOnDrop(child)
}

/// `avahi-browse`'s resolved `_loopsy._tcp` services, as its parsable lines:
/// `=;iface;proto;name;type;domain;host;address;port;"txt"…`.
fn browse(ns: &str, bus: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "10"])
        .args(["avahi-browse", "--parsable", "--resolve", "--terminate"])
        .arg("_loopsy._tcp")
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stderr(Stdio::null())
        .output()
        .expect("run avahi-browse");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.starts_with("=;"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn avahi_lists_the_daemon_with_its_txt_records() {
    let missing: Vec<_> = ["avahi-daemon", "avahi-browse", "dbus-daemon"]
        .into_iter()
        .filter(|p| !installed(p))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: {} not installed (apt-get install avahi-daemon avahi-utils dbus)",
            missing.join(", ")
        );
        return;
    }
    let Some(link) = Link::make() else {
        return;
    };
    let kai = daemon_in(&link.names[0], "kai");
    let scratch = tempfile::tempdir().expect("temp dir");
    let (_bus, bus) = private_bus(scratch.path());
    let _avahi = avahi_in(&link.names[1], &bus, scratch.path());
    let id = node_id(&kai);
    let mut found = None;
    wait_until("Avahi resolves Kai's service across the veth", || {
        found = browse(&link.names[1], &bus)
            .into_iter()
            .find(|line| line.contains(&format!("\"nodeId={id}\"")));
        found.is_some()
    });
    let line = found.expect("found");
    let fields: Vec<&str> = line.splitn(10, ';').collect();
    assert_eq!(fields.len(), 10, "{line}");
    // The instance is named as the original names it, on the HTTP API's port
    // at Kai's address on the link.
    assert_eq!(fields[2], "IPv4", "{line}");
    assert_eq!(fields[3], format!("loopsy-{}", &id[..8]), "{line}");
    assert_eq!(fields[4], "_loopsy._tcp", "{line}");
    assert_eq!(fields[7], link.addresses[0], "{line}");
    assert_eq!(fields[8], kai.port.to_string(), "{line}");
    let txt = fields[9];
    for record in [
        format!("\"fp={}\"", fingerprint_of(&kai)),
        format!("\"peerPort={}\"", kai.peer_port),
        "\"platform=linux\"".to_owned(),
        "\"capabilities=execute,".to_owned(),
        "\"version=".to_owned(),
    ] {
        assert!(txt.contains(&record), "no {record} in {txt}");
    }
    kai.ok(&["stop"]);
}
