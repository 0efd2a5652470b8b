//! Who may use the relay: bearer secrets (only from `Authorization` or the
//! `Sec-WebSocket-Protocol` entry `loopsy.bearer.<secret>`, never from a URL,
//! which would end up in logs), the Origin check on upgrades, the per-IP
//! registration limit and the per-IP connection cap.

use std::collections::HashMap;
use std::net::IpAddr;
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
