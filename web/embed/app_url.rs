//! Where phones open the app: a page URL such as `https://app.example.com/`
//! or `https://loopsy.you.example/app/`, checked once wherever it is configured
//! (`loopsy-relay --app-origin`, the daemon's `relay.appOrigin`).

use std::fmt;

/// An `http(s)` page URL that names a folder (ends in `/`), with no query
/// and no fragment: the pairing fragment is appended to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUrl {
    page: String,
    origin_len: usize,
}

impl AppUrl {
    /// Checks `text`; a bare origin gets its `/`. The error says what to fix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .ok_or_else(|| {
                format!("the app's address {text:?} must start with https:// (or http:// on a LAN)")
            })?;
        if text.contains(['?', '#']) || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "the app's address {text:?} must be a plain page address, without ?, # or spaces"
            ));
        }
        let authority_len = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let host_ok = !authority.is_empty()
            && authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !host_ok {
            return Err(format!("the app's address {text:?} names no usable host"));
        }
        // As a browser spells its origin: lower-case host, no default port,
        // so that the Origin it sends is the one allowed.
        let scheme = &text[..text.len() - rest.len()];
        let mut authority = authority.to_ascii_lowercase();
        let default_port = if scheme == "https://" { ":443" } else { ":80" };
        if let Some(bare) = authority.strip_suffix(default_port) {
            authority = bare.to_owned();
        }
        let origin_len = scheme.len() + authority.len();
        let mut page = format!("{scheme}{authority}{}", &rest[authority_len..]);
        if !page.ends_with('/') {
            // A folder, so that the page's relative paths resolve inside it.
            page.push('/');
        }
        Ok(Self { page, origin_len })
    }

    /// The page, ending in `/`.
    pub fn page(&self) -> &str {
        &self.page
    }

    /// Scheme, host and port: what a browser sends as `Origin`.
    pub fn origin(&self) -> &str {
        &self.page[..self.origin_len]
    }
}

impl fmt::Display for AppUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_origins() {
        let app = AppUrl::parse("https://app.example.com").expect("valid");
        assert_eq!(app.page(), "https://app.example.com/");
        assert_eq!(app.origin(), "https://app.example.com");
        let app = AppUrl::parse("https://you.github.io/loopsy").expect("valid");
        assert_eq!(app.page(), "https://you.github.io/loopsy/");
        assert_eq!(app.origin(), "https://you.github.io");
        let app = AppUrl::parse("http://192.168.1.5:19532/app/").expect("valid");
        assert_eq!(app.origin(), "http://192.168.1.5:19532");
    }

    #[test]
    fn the_origin_is_spelled_as_a_browser_sends_it() {
        let app = AppUrl::parse("https://App.Example.com:443/Loopsy").expect("valid");
        assert_eq!(app.origin(), "https://app.example.com");
        assert_eq!(app.page(), "https://app.example.com/Loopsy/");
        let app = AppUrl::parse("http://10.0.0.2:80/app/").expect("valid");
        assert_eq!(app.origin(), "http://10.0.0.2");
        let app = AppUrl::parse("https://app.example.com:8443").expect("valid");
        assert_eq!(app.origin(), "https://app.example.com:8443");
    }

    #[test]
    fn what_is_no_page_is_refused_with_a_reason() {
        for bad in [
            "app.example.com",
            "ftp://x/",
            "https://",
            "https:///x",
            "https://a b/",
            "https://x/?q",
            "https://x/#f",
            "javascript:alert(1)",
            "https://x'/",
        ] {
            let error = AppUrl::parse(bad).expect_err(bad);
            assert!(error.contains("app's address"), "{error}");
        }
    }
}
