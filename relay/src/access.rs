//! Who may use the relay: bearer secrets (only from `Authorization` or the
//! `Sec-WebSocket-Protocol` entry `loopsy.bearer.<secret>`, never from a URL,
//! which would end up in logs), the Origin check on upgrades, the client's
//! address (from `X-Forwarded-For` only when the peer is a `--trusted-proxy`),
//! the registration windows and the per-IP connection cap.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::http::header;
use loopsy_transports::relay_wire::BEARER_PROTOCOL_PREFIX;

/// The bearer secret a request presents, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    from_header
        .or_else(|| {
            req.headers()
                .get_all(header::SEC_WEBSOCKET_PROTOCOL)
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .find_map(|p| {
                    p.trim()
                        .strip_prefix(BEARER_PROTOCOL_PREFIX)
                        .map(str::to_owned)
                })
        })
        .filter(|t| !t.is_empty())
}

/// An address range, `10.0.0.0/8` or `::1/128` (a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not an address or range such as 10.0.0.0/8"))?;
        let most = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => most,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= most)
                .ok_or_else(|| format!("'{text}': the prefix must be 0 to {most}"))?,
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the
/// last address in `X-Forwarded-For` that is not itself a trusted proxy (what
/// a client writes further left is not believed).
pub fn client_ip(req: &HttpRequest, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|hop| !is_trusted(*hop))
            .unwrap_or(peer),
    )
}

/// Browsers send `Origin` on WebSocket upgrades: refuse pages of other sites.
/// No Origin (native clients, the daemon) and `null` are let through; the
/// bearer still decides.
pub fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    if origin == "null" || allowed.iter().any(|a| a == origin) {
        return true;
    }
    let host = req.connection_info().host().to_owned();
    origin
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host)
}

/// [`origin_allowed`] without its pass for `Origin: null`: for the HTTP
/// endpoints a page could call (registration, a phone's own revocation),
/// since any site can send `null` from a sandboxed frame. Native clients
/// send no Origin at all and pass.
pub fn page_origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let null = req
        .headers()
        .get(header::ORIGIN)
        .is_some_and(|v| v.as_bytes() == b"null");
    !null && origin_allowed(req, allowed)
}

/// A fixed window per IP address: at most `limit` calls per `window`.
pub struct PerIpWindow {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PerIpWindow {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a call; `Err(seconds)` until the window ends once over the limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return Err(self.window.as_secs());
        };
        if seen.len() > 100_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.limit {
            return Err(self
                .window
                .saturating_sub(now.duration_since(entry.0))
                .as_secs()
                .max(1));
        }
        Ok(())
    }
}

/// Registrations per client address and per minute, and for the whole relay.
pub struct RegistrationLimits {
    pub per_ip: PerIpWindow,
    /// One window keyed by a fixed address: every registration counts.
    pub total: PerIpWindow,
}

impl RegistrationLimits {
    pub fn new(per_ip: u32, total: u32) -> Self {
        Self {
            per_ip: PerIpWindow::new(per_ip, Duration::from_secs(60)),
            total: PerIpWindow::new(total, Duration::from_secs(60)),
        }
    }

    pub fn per_ip_limit(&self) -> u32 {
        self.per_ip.limit
    }

    pub fn total_limit(&self) -> u32 {
        self.total.limit
    }

    /// Counts one registration from `ip`; `Err(seconds to wait)` past either limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.per_ip.check(ip)?;
        self.total.check(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

/// Open sockets per IP address, capped.
#[derive(Clone)]
pub struct ConnectionCap {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One counted socket; the count drops with it.
pub struct ConnectionSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionCap {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Arc::default(),
        }
    }

    pub fn take(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(count) = open.get_mut(&self.ip)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_what_they_say() {
        let range: Cidr = "10.1.0.0/16".parse().expect("range");
        assert!(range.contains("10.1.255.3".parse().expect("ip")));
        assert!(!range.contains("10.2.0.1".parse().expect("ip")));
        assert!(range.contains("::ffff:10.1.0.9".parse().expect("mapped")));
        let host: Cidr = "::1".parse().expect("host");
        assert!(host.contains("::1".parse().expect("ip")));
        assert!(!host.contains("::2".parse().expect("ip")));
        let all: Cidr = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains("203.0.113.7".parse().expect("ip")));
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
