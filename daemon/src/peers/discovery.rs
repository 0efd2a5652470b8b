//! mDNS discovery (mdns-sd): this daemon announces `_loopsy._tcp` as the
//! original does (instance `loopsy-<first 8 of node id>`, the HTTP port, TXT
//! `nodeId`, `version`, `platform`, `capabilities` comma-joined) plus `fp`, its
//! certificate's fingerprint, and `peerPort`, its TLS port; and it lists the
//! daemons it hears. A discovered host is only a name and an address: nothing
//! is sent to it, credentials least of all, until its owner pairs with it, and
//! then the pinned certificate, not the announcement, says who it is.
//! Runs only with `--lan` or `discovery.enabled`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use actix::prelude::*;
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use serde_json::{Value, json};

pub const SERVICE_TYPE: &str = "_loopsy._tcp.local.";
/// What the REST API serves, as the original advertises it.
const CAPABILITIES: &str = "execute,transfer,context";
/// Most announcements kept (a LAN is tens of machines; a flood is not kept).
const MAX_DISCOVERED: usize = 256;

/// What this daemon announces.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub node_id: String,
    pub hostname: String,
    pub platform: String,
    pub port: u16,
    pub peer_port: u16,
    pub cert_fp: String,
}

/// A daemon heard on the network (untrusted: anyone can announce anything).
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub node_id: String,
    pub hostname: String,
    pub address: IpAddr,
    pub port: u16,
    pub peer_port: Option<u16>,
    pub cert_fp: Option<String>,
    pub version: String,
    pub platform: String,
    pub capabilities: Vec<String>,
}

impl Discovered {
    pub fn to_json(&self) -> Value {
        json!({
            "nodeId": self.node_id,
            "hostname": self.hostname,
            "address": self.address.to_string(),
            "port": self.port,
            "peerPort": self.peer_port,
            "certFingerprint": self.cert_fp,
            "version": self.version,
            "platform": self.platform,
            "capabilities": self.capabilities,
            "paired": false,
            "status": "discovered",
        })
    }
}

/// Reads one resolved announcement; `None` for ours or for one without a node id.
pub fn read(
    own_node_id: &str,
    host: &str,
    port: u16,
    addresses: &[IpAddr],
    property: impl Fn(&str) -> Option<String>,
) -> Option<Discovered> {
    let clip = |s: String, n: usize| {
        s.chars()
            .filter(|c| !c.is_control())
            .take(n)
            .collect::<String>()
    };
    let node_id = clip(property("nodeId")?, 64);
    if node_id.is_empty() || node_id == own_node_id {
        return None;
    }
    // The first IPv4 address, else the first one (as the original).
    let address = addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .copied()?;
    let hostname = clip(
        host.trim_end_matches('.')
            .trim_end_matches(".local")
            .to_owned(),
        253,
    );
    Some(Discovered {
        node_id,
        hostname,
        address,
        port,
        peer_port: property("peerPort")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p != 0),
        cert_fp: property("fp").filter(|fp| loopsy_transports::peer_tls::is_fingerprint(fp)),
        version: clip(property("version").unwrap_or_default(), 64),
        platform: clip(property("platform").unwrap_or_default(), 32),
        capabilities: property("capabilities")
            .unwrap_or_default()
            .split(',')
            .filter(|c| !c.is_empty())
            .take(32)
            .map(|c| clip(c.to_owned(), 32))
            .collect(),
    })
}

pub struct Discovery {
    ours: Announcement,
    mdns: Option<ServiceDaemon>,
    /// Heard daemons by node id, with the announcement's full name.
    heard: BTreeMap<String, (String, Discovered)>,
}

impl Discovery {
    pub fn new(ours: Announcement) -> Self {
        Self {
            ours,
            mdns: None,
            heard: BTreeMap::new(),
        }
    }

    fn announce(&self, mdns: &ServiceDaemon) -> Result<(), mdns_sd::Error> {
        let ours = &self.ours;
        let instance = format!("loopsy-{}", ours.node_id.get(..8).unwrap_or(&ours.node_id));
        let host = format!("{}.local.", ours.hostname);
        let properties = [
            ("nodeId", ours.node_id.as_str()),
            ("version", crate::identity::PROTOCOL_VERSION),
            ("platform", ours.platform.as_str()),
            ("capabilities", CAPABILITIES),
            ("fp", ours.cert_fp.as_str()),
            ("peerPort", &ours.peer_port.to_string()),
        ];
        let info = ServiceInfo::new(
            SERVICE_TYPE,
            &instance,
            &host,
            (),
            ours.port,
            &properties[..],
        )?
        .enable_addr_auto();
        mdns.register(info)
    }
}

impl Actor for Discovery {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let mdns = match ServiceDaemon::new() {
            Ok(mdns) => mdns,
            Err(error) => {
                tracing::warn!(%error, "mDNS is unavailable; peers can still be paired by address");
                return;
            }
        };
        if let Err(error) = self.announce(&mdns) {
            tracing::warn!(%error, "cannot announce this daemon over mDNS");
        }
        match mdns.browse(SERVICE_TYPE) {
            Ok(events) => {
                let me = ctx.address();
                // mdns-sd's channel is blocking; a thread forwards its events.
                let forward = std::thread::Builder::new()
                    .name("mdns-events".into())
                    .spawn(move || {
                        while let Ok(event) = events.recv() {
                            if me.try_send(Heard(event)).is_err() && !me.connected() {
                                break;
                            }
                        }
                    });
                if let Err(error) = forward {
                    tracing::warn!(%error, "cannot start the mDNS listener");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot browse for peers over mDNS"),
        }
        tracing::info!(service = SERVICE_TYPE, "mDNS discovery on");
        self.mdns = Some(mdns);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(mdns) = self.mdns.take() {
            let _ = mdns.shutdown();
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Heard(ServiceEvent);

impl Handler<Heard> for Discovery {
    type Result = ();

    fn handle(&mut self, Heard(event): Heard, _: &mut Self::Context) {
        match event {
            ServiceEvent::ServiceResolved(service) => {
                let addresses: Vec<IpAddr> =
                    service.addresses.iter().map(|a| a.to_ip_addr()).collect();
                let property = |key: &str| service.get_property_val_str(key).map(str::to_owned);
                let Some(found) = read(
                    &self.ours.node_id,
                    &service.host,
                    service.port,
                    &addresses,
                    property,
                ) else {
                    return;
                };
                if self.heard.len() >= MAX_DISCOVERED && !self.heard.contains_key(&found.node_id) {
                    return;
                }
                tracing::debug!(node_id = %found.node_id, address = %found.address, "heard a loopsy daemon");
                self.heard
                    .insert(found.node_id.clone(), (service.fullname.clone(), found));
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                self.heard.retain(|_, (name, _)| *name != fullname);
            }
            _ => {}
        }
    }
}

/// The daemons heard so far.
#[derive(Message)]
#[rtype(result = "Vec<Discovered>")]
pub struct ListDiscovered;

impl Handler<ListDiscovered> for Discovery {
    type Result = MessageResult<ListDiscovered>;

    fn handle(&mut self, _: ListDiscovered, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.heard.values().map(|(_, d)| d.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_read_as_the_original_does_and_our_own_is_ignored() {
        let props = |key: &str| match key {
            "nodeId" => Some("other-node".to_owned()),
            "version" => Some("1.0.53".to_owned()),
            "platform" => Some("darwin".to_owned()),
            "capabilities" => Some("execute,transfer,context,ai-tasks".to_owned()),
            "fp" => Some("ab".repeat(32)),
            "peerPort" => Some("19533".to_owned()),
            _ => None,
        };
        let v6: IpAddr = "fe80::1".parse().expect("ip");
        let v4: IpAddr = "192.168.1.7".parse().expect("ip");
        let found = read("me", "kai.local.", 19532, &[v6, v4], props).expect("found");
        assert_eq!(found.address, v4, "IPv4 preferred");
        assert_eq!(found.hostname, "kai");
        assert_eq!(found.capabilities.len(), 4);
        assert_eq!(found.peer_port, Some(19533));
        assert!(
            read("other-node", "kai.local.", 1, &[v4], props).is_none(),
            "our own"
        );
        assert!(
            read("me", "kai.local.", 1, &[v4], |_| None).is_none(),
            "no node id"
        );
        // A TypeScript Loopsy announces no fp or peerPort.
        let ts = read("me", "old.local.", 19532, &[v4], |k| {
            (k == "nodeId").then(|| "ts".to_owned())
        })
        .expect("found");
        assert_eq!((ts.peer_port, ts.cert_fp), (None, None));
        let garbage = read("me", "x", 1, &[v4], |k| match k {
            "nodeId" => Some("n\u{7}".to_owned()),
            "fp" => Some("not a fingerprint".to_owned()),
            "peerPort" => Some("99999".to_owned()),
            _ => None,
        })
        .expect("found");
        assert_eq!(garbage.node_id, "n");
        assert_eq!((garbage.peer_port, garbage.cert_fp), (None, None));
    }
}
