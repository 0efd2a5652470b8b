//! Network namespaces for tests that need real network stacks: two named
//! namespaces joined by a veth link, and a daemon started inside one. Needs
//! root (CI is root); without it `Link::make` prints why and gives `None`.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::Loopsy;

/// Two namespaces and the veth between them, removed on drop.
pub struct Link {
    pub names: [String; 2],
    pub addresses: [String; 2],
}

pub fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl Link {
    pub fn make() -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: named network namespaces need root (CI runs as root)");
            return None;
        }
        // Unique per link: `cargo test` runs this binary's tests as threads of one
        // process. (Subnets may repeat: each pair of namespaces routes alone.)
        static LINKS: AtomicU32 = AtomicU32::new(0);
        let n = LINKS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}{n}", std::process::id() & 0xffff);
        let names = [format!("lpa{tag}"), format!("lpb{tag}")];
        let subnet = 10 + (std::process::id() % 200);
        let addresses = [format!("10.77.{subnet}.1"), format!("10.77.{subnet}.2")];
        let link = Self { names, addresses };
        let (a, b) = (&link.names[0], &link.names[1]);
        let (va, vb) = (format!("v{a}"), format!("v{b}"));
        let made = ip(&["netns", "add", a])
            && ip(&["netns", "add", b])
            && ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])
            && ip(&["link", "set", &va, "netns", a])
            && ip(&["link", "set", &vb, "netns", b])
            && [(a, &va, &link.addresses[0]), (b, &vb, &link.addresses[1])]
                .iter()
                .all(|(ns, dev, addr)| {
                    ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])
                        && ip(&["-n", ns, "link", "set", dev, "up"])
                        && ip(&["-n", ns, "link", "set", "lo", "up"])
                });
        if !made {
            eprintln!("skipped: `ip netns`/veth setup failed on this machine");
            return None;
        }
        Some(link)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for name in &self.names {
            ip(&["netns", "del", name]);
        }
    }
}

/// A daemon in namespace `ns`, named `hostname`, on every interface there.
pub fn daemon_in(ns: &str, hostname: &str) -> Loopsy {
    let mut loopsy = Loopsy::new();
    loopsy.wrapper = vec!["ip".into(), "netns".into(), "exec".into(), ns.into()];
    loopsy.ok(&["init"]);
    loopsy.write_config(|text| {
        text.replace("# hostname: my-laptop", &format!("hostname: {hostname}"))
    });
    loopsy.ok(&["start", "--lan", "--port", &loopsy.port.to_string()]);
    loopsy
}
