//! Keeps web pages out: a browser page on another origin (or a DNS-rebinding
//! page whose name now points here) must not reach the daemon. The original
//! reflected any origin (spec §1.1 [WEAK]); we send no CORS headers at all and
//! refuse foreign `Host`, `Origin` and `Sec-Fetch-Site` values.

use std::net::IpAddr;

use loopsy_transports::error::{ApiError, code};
use loopsy_transports::wire::HttpEvidence;

pub struct OriginPolicy {
    port: u16,
    /// Lower-case DNS names this daemon answers to.
    names: Vec<String>,
}

/// Splits `host[:port]` or `[v6]:port`.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((host, tail)) = rest.split_once(']')
    {
        return (host, tail.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

fn refuse(message: String) -> ApiError {
    ApiError::new(code::INVALID_REQUEST, 403, message)
}

impl OriginPolicy {
    pub fn new(port: u16, hostname: &str, extra: &[String]) -> Self {
        let hostname = hostname.trim_end_matches('.').to_ascii_lowercase();
        let mut names = vec![
            "localhost".to_owned(),
            format!("{hostname}.local"),
            hostname,
        ];
        names.extend(
            extra
                .iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase()),
        );
        names.retain(|n| !n.is_empty() && n != ".local");
        Self { port, names }
    }

    fn host_allowed(&self, host: &str) -> bool {
        if host.parse::<IpAddr>().is_ok() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&host)
    }

    pub fn check(&self, evidence: &HttpEvidence) -> Result<(), ApiError> {
        if let Some(host_header) = &evidence.host {
            let (host, _) = split_host_port(host_header.trim());
            if !self.host_allowed(host) {
                return Err(refuse(format!(
                    "Host '{host}' is not a name of this daemon; if you reach it by that name, add it to server.allowedHosts"
                )));
            }
        }
        if let Some(site) = &evidence.fetch_site
            && site != "same-origin"
            && site != "none"
        {
            return Err(refuse(
                "Requests from other web sites are refused".to_owned(),
            ));
        }
        if let Some(origin) = &evidence.origin
            && !self.origin_allowed(origin.trim())
        {
            return Err(refuse(
                "Requests from other web origins are refused".to_owned(),
            ));
        }
        Ok(())
    }

    /// Only this daemon's own origin (`http://<allowed host>:<our port>`) may call it.
    fn origin_allowed(&self, origin: &str) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let (host, port) = split_host_port(authority);
        let port = match port {
            Some(p) => p.parse::<u16>().ok(),
            None => Some(default_port),
        };
        self.host_allowed(host) && port == Some(self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(host: Option<&str>, origin: Option<&str>, site: Option<&str>) -> HttpEvidence {
        HttpEvidence {
            host: host.map(String::from),
            origin: origin.map(String::from),
            fetch_site: site.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn hosts() {
        let policy = OriginPolicy::new(19532, "Laptop", &["loopsy.home".into()]);
        for ok in [
            "127.0.0.1:19532",
            "localhost:19532",
            "laptop",
            "LAPTOP.local:19532",
            "[::1]:19532",
            "10.0.0.5",
            "loopsy.home.",
        ] {
            assert!(policy.check(&with(Some(ok), None, None)).is_ok(), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:19532",
            "localhost.evil.com",
            "127.0.0.1.nip.io:19532",
        ] {
            assert!(policy.check(&with(Some(bad), None, None)).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let policy = OriginPolicy::new(19532, "laptop", &[]);
        assert!(
            policy
                .check(&with(
                    None,
                    Some("http://127.0.0.1:19532"),
                    Some("same-origin")
                ))
                .is_ok()
        );
        assert!(
            policy
                .check(&with(None, Some("http://localhost:3000"), None))
                .is_err()
        );
        assert!(
            policy
                .check(&with(None, Some("https://evil.com"), None))
                .is_err()
        );
        assert!(policy.check(&with(None, Some("null"), None)).is_err());
        assert!(policy.check(&with(None, None, Some("cross-site"))).is_err());
        assert!(policy.check(&with(None, None, Some("same-site"))).is_err());
    }
}
