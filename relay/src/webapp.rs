//! The phone web app at `/app`, built from `web/` by the build script and
//! embedded in the binary. Served under a strict Content-Security-Policy: only
//! this origin's script (with Subresource Integrity in the page), no inline
//! script, no third-party origin, WebSockets only back to this relay.
//!
//! Caching: the page names its script and style by content
//! (`app.<first 12 hex of SHA-256>.js`, computed by `web/scripts/build.mjs` and
//! here from the same bytes), so those are cached for a year as `immutable`,
//! sent brotli- or gzip-compressed as the browser accepts (precompressed at
//! build). The page itself is `no-cache` with an `ETag`, so a warm open costs
//! one conditional request answered 304.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use loopsy_transports::secrets::sha256_hex;

macro_rules! embedded {
    ($path:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/webapp/", $path))
    };
}

const INDEX: &[u8] = embedded!("index.html");
const ICON: &[u8] = embedded!("assets/icon.svg");
const MANIFEST: &[u8] = embedded!("manifest.webmanifest");

/// A bundle and its precompressed forms (empty when the build had no npm).
struct Bundle {
    plain: &'static [u8],
    brotli: &'static [u8],
    gzip: &'static [u8],
    content_type: &'static str,
    extension: &'static str,
}

const SCRIPT: Bundle = Bundle {
    plain: embedded!("assets/app.js"),
    brotli: embedded!("assets/app.js.br"),
    gzip: embedded!("assets/app.js.gz"),
    content_type: "text/javascript; charset=utf-8",
    extension: "js",
};

const STYLE: Bundle = Bundle {
    plain: embedded!("assets/app.css"),
    brotli: embedded!("assets/app.css.br"),
    gzip: embedded!("assets/app.css.gz"),
    content_type: "text/css; charset=utf-8",
    extension: "css",
};

const FOR_GOOD: &str = "public, max-age=31536000, immutable";

impl Bundle {
    /// `app.<hash>.<extension>`, as the page names it.
    fn content_name(&self) -> String {
        format!("app.{}.{}", &sha256_hex(self.plain)[..12], self.extension)
    }
}

/// The bundles' content names, computed once.
fn names() -> &'static (String, String) {
    static NAMES: OnceLock<(String, String)> = OnceLock::new();
    NAMES.get_or_init(|| (SCRIPT.content_name(), STYLE.content_name()))
}

/// The page's validator, computed once.
fn index_etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| format!("\"{}\"", &sha256_hex(INDEX)[..16]))
}

fn policy(req: &HttpRequest) -> String {
    let info = req.connection_info();
    let socket_scheme = if info.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    // xterm.js styles its rows from script, hence inline styles (never inline script).
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self' {socket_scheme}://{}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'; manifest-src 'self'",
        info.host()
    )
}

fn headers(req: &HttpRequest, content_type: &str, cache: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", policy(req)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((header::CACHE_CONTROL, cache));
    response
}

/// Whether the request's `Accept-Encoding` takes `coding` (and not with `q=0`).
fn accepts(req: &HttpRequest, coding: &str) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let named = parts.next().is_some_and(|c| c.eq_ignore_ascii_case(coding));
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            named && !refused
        })
}

fn bundle(req: &HttpRequest, bundle: &Bundle, cache: &str) -> HttpResponse {
    let mut response = headers(req, bundle.content_type, cache);
    response.insert_header((header::VARY, "Accept-Encoding"));
    if !bundle.brotli.is_empty() && accepts(req, "br") {
        return response
            .insert_header((header::CONTENT_ENCODING, "br"))
            .body(bundle.brotli);
    }
    if !bundle.gzip.is_empty() && accepts(req, "gzip") {
        return response
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(bundle.gzip);
    }
    response.body(bundle.plain)
}

pub async fn index(req: HttpRequest) -> HttpResponse {
    let etag = index_etag();
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .finish();
    }
    headers(&req, "text/html; charset=utf-8", "no-cache")
        .insert_header((header::ETAG, etag))
        .body(INDEX)
}

/// `/app/assets/{file}`: the bundles by content name (cached for good), by
/// their plain names (for pages of an older build; not cached), and the icon.
pub async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let (script, style) = names();
    match file.as_str() {
        name if name == script => bundle(&req, &SCRIPT, FOR_GOOD),
        name if name == style => bundle(&req, &STYLE, FOR_GOOD),
        "app.js" => bundle(&req, &SCRIPT, "no-cache"),
        "app.css" => bundle(&req, &STYLE, "no-cache"),
        "icon.svg" => headers(&req, "image/svg+xml", "no-cache").body(ICON),
        _ => crate::state::refuse(404, "no such file"),
    }
}

/// The PWA manifest: the app can be installed and then opens full screen.
pub async fn manifest(req: HttpRequest) -> HttpResponse {
    headers(&req, "application/manifest+json", "no-cache").body(MANIFEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_bundles_this_binary_serves() {
        let page = String::from_utf8_lossy(INDEX);
        if SCRIPT.plain.is_empty() {
            return; // Built without npm: a placeholder page, no bundles.
        }
        let (script, style) = names();
        assert!(page.contains(&format!("/app/assets/{script}")), "{page}");
        assert!(page.contains(&format!("/app/assets/{style}")), "{page}");
    }
}
