//! The phone web app, built from `web/` by the build script and embedded, and
//! the routes that serve it at `/app/` under a strict Content-Security-Policy:
//! only this origin's script (with Subresource Integrity in the page), no
//! inline script, no third-party origin, connections only to this host and to
//! the relays the server names. The relay serves it unless it points phones at
//! an app origin of its own choosing; the daemon serves it on the LAN.
//!
//! Caching: the page names its script and style by content
//! (`app.<first 12 hex of SHA-256>.js`, computed by `web/scripts/build.mjs` and
//! here from the same bytes), so those are cached for a year as `immutable`,
//! sent brotli- or gzip-compressed as the browser accepts (precompressed at
//! build). The page and the service worker are `no-cache` with an `ETag`, so a
//! warm open without the worker costs one conditional request answered 304.
//!
//! Paths in the page are relative, so that `web/dist` works from any folder of
//! any static host; hence the page lives at `/app/`, and `/app` redirects there
//! (a browser keeps the fragment across the redirect).

mod app_url;

pub use app_url::AppUrl;

use std::sync::{Arc, OnceLock};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use aws_lc_rs::digest;

macro_rules! embedded {
    ($path:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/webapp/", $path))
    };
}

const INDEX: &[u8] = embedded!("index.html");
const ICON: &[u8] = embedded!("assets/icon.svg");
const MANIFEST: &[u8] = embedded!("manifest.webmanifest");
const SERVICE_WORKER: &[u8] = embedded!("sw.js");

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

/// Where the page may open connections besides its own origin, asked on each
/// request (a daemon's relay can change while it runs): full origins such as
/// `wss://relay.example.com` and `https://relay.example.com`.
pub type ConnectSources = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Connections to this host only (the relay serving its own app).
pub fn this_host_only() -> ConnectSources {
    Arc::new(Vec::new)
}

/// The `http(s)` and `ws(s)` origins of `url` (`http://10.0.0.2:8787/x` gives
/// `http://10.0.0.2:8787` and `ws://10.0.0.2:8787`); nothing for other schemes.
pub fn origins_of(url: &str) -> Vec<String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => ("https", rest),
        Some(("http", rest)) => ("http", rest),
        _ => return Vec::new(),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Only what a CSP source can hold: no spaces, quotes or semicolons.
    let clean = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !clean {
        return Vec::new();
    }
    let socket = if scheme == "https" { "wss" } else { "ws" };
    vec![
        format!("{scheme}://{authority}"),
        format!("{socket}://{authority}"),
    ]
}

fn sha256_hex(bytes: &[u8]) -> String {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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

/// Whether this binary was built with the app (npm was there at build time).
pub fn built() -> bool {
    !SCRIPT.plain.is_empty()
}

/// The build of the embedded app: the content part of its script's name (12
/// hex digits), which the app compares with its own; empty when not built.
pub fn build_id() -> &'static str {
    if !built() {
        return "";
    }
    let (script, _) = names();
    script
        .strip_prefix("app.")
        .and_then(|s| s.strip_suffix(".js"))
        .unwrap_or_default()
}

/// The request's `Host` as a CSP source may hold it, or `None`. Only the
/// header itself: `X-Forwarded-Host` (which actix would prefer) is the
/// client's to write, and a space or `;` in it would add directives.
fn checked_host(req: &HttpRequest) -> Option<&str> {
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    let clean = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    clean.then_some(host)
}

fn policy(req: &HttpRequest, connect: &ConnectSources) -> String {
    let socket_scheme = if req.connection_info().scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    let mut sources = String::from("'self'");
    // `'self'` covers this host's WebSockets in CSP 3; named too for older browsers.
    if let Some(host) = checked_host(req) {
        sources.push_str(&format!(" {socket_scheme}://{host}"));
    }
    for origin in connect() {
        sources.push(' ');
        sources.push_str(&origin);
    }
    // xterm.js styles its rows from script, hence inline styles (never inline script).
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         font-src 'self'; connect-src {sources}; worker-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'; manifest-src 'self'"
    )
}

fn headers(
    req: &HttpRequest,
    connect: &ConnectSources,
    content_type: &str,
    cache: &str,
) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", policy(req, connect)))
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

fn bundle(
    req: &HttpRequest,
    connect: &ConnectSources,
    bundle: &Bundle,
    cache: &str,
) -> HttpResponse {
    let mut response = headers(req, connect, bundle.content_type, cache);
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

/// A `no-cache` file with an `ETag`, answered 304 when the browser has it.
/// The tag covers the policy too: a 304 keeps the stored headers, and the
/// policy changes with the daemon's relay.
fn validated(
    req: &HttpRequest,
    connect: &ConnectSources,
    content_type: &str,
    bytes: &'static [u8],
) -> HttpResponse {
    let policy = policy(req, connect);
    let tagged = format!(
        "\"{}\"",
        &sha256_hex(&[bytes, policy.as_bytes()].concat())[..16]
    );
    let etag = tagged.as_str();
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
    headers(req, connect, content_type, "no-cache")
        .insert_header((header::ETAG, etag))
        .body(bytes)
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_hostile_host_or_forwarded_host_adds_nothing_to_the_policy() {
        let none: ConnectSources = this_host_only();
        let forwarded = TestRequest::default()
            .insert_header((header::HOST, "relay.example.com"))
            .insert_header((
                "X-Forwarded-Host",
                "x *; frame-src *; report-uri https://evil",
            ))
            .to_http_request();
        let said = policy(&forwarded, &none);
        assert!(
            said.contains("connect-src 'self' ws://relay.example.com;"),
            "{said}"
        );
        assert!(!said.contains("evil") && !said.contains('*'), "{said}");
        let spaced = TestRequest::default()
            .insert_header((header::HOST, "a b;script-src *"))
            .to_http_request();
        let said = policy(&spaced, &none);
        assert!(said.contains("connect-src 'self';"), "{said}");
        assert!(!said.contains("script-src *"), "{said}");
    }
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("no such file")
}

async fn index(req: HttpRequest, connect: web::Data<ConnectSources>) -> HttpResponse {
    validated(&req, &connect, "text/html; charset=utf-8", INDEX)
}

/// The service worker: keeps this build for offline and fast opens, and lets
/// the page offer a new build rather than swap it in silently.
async fn service_worker(req: HttpRequest, connect: web::Data<ConnectSources>) -> HttpResponse {
    if SERVICE_WORKER.is_empty() {
        return not_found();
    }
    validated(
        &req,
        &connect,
        "text/javascript; charset=utf-8",
        SERVICE_WORKER,
    )
}

/// `assets/{file}`: the bundles by content name (cached for good), by their
/// plain names (for pages of an older build; not cached), and the icon.
async fn asset(
    req: HttpRequest,
    file: web::Path<String>,
    connect: web::Data<ConnectSources>,
) -> HttpResponse {
    let (script, style) = names();
    match file.as_str() {
        name if name == script => bundle(&req, &connect, &SCRIPT, FOR_GOOD),
        name if name == style => bundle(&req, &connect, &STYLE, FOR_GOOD),
        "app.js" => bundle(&req, &connect, &SCRIPT, "no-cache"),
        "app.css" => bundle(&req, &connect, &STYLE, "no-cache"),
        "icon.svg" => headers(&req, &connect, "image/svg+xml", "no-cache").body(ICON),
        _ => not_found(),
    }
}

/// The PWA manifest: the app can be installed and then opens full screen.
async fn manifest(req: HttpRequest, connect: web::Data<ConnectSources>) -> HttpResponse {
    headers(&req, &connect, "application/manifest+json", "no-cache").body(MANIFEST)
}

/// `/app` without its slash: the page's relative paths need it.
async fn to_folder() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/app/"))
        .finish()
}

/// A route answering GET and HEAD alike (a HEAD answer has no body).
pub fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The app's routes under `/app`, for `App::configure`.
pub fn routes(connect: ConnectSources) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config.service(
            web::scope("/app")
                .app_data(web::Data::new(connect))
                // Matched before "/", which would take `/app` as well.
                .route("", get_or_head().to(to_folder))
                .route("/", get_or_head().to(index))
                .route("/index.html", get_or_head().to(index))
                .route("/sw.js", get_or_head().to(service_worker))
                .route("/manifest.webmanifest", get_or_head().to(manifest))
                .route("/assets/{file}", get_or_head().to(asset)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_bundles_this_binary_serves() {
        let page = String::from_utf8_lossy(INDEX);
        if !built() {
            return; // Built without npm: a placeholder page, no bundles.
        }
        let (script, style) = names();
        assert!(page.contains(&format!("\"assets/{script}\"")), "{page}");
        assert!(page.contains(&format!("\"assets/{style}\"")), "{page}");
        assert_eq!(build_id().len(), 12);
        let worker = String::from_utf8_lossy(SERVICE_WORKER);
        assert!(
            worker.contains(script.as_str()),
            "the worker keeps the script"
        );
    }

    #[test]
    fn only_http_origins_become_connect_sources() {
        assert_eq!(
            origins_of("https://relay.example.com:8443/x?y#z"),
            [
                "https://relay.example.com:8443",
                "wss://relay.example.com:8443"
            ]
        );
        assert_eq!(
            origins_of("http://[::1]:8787"),
            ["http://[::1]:8787", "ws://[::1]:8787"]
        );
        for bad in [
            "ftp://x",
            "relay.example.com",
            "https://",
            "https://a b",
            "https://a;script-src *",
            "https://'unsafe-inline'",
        ] {
            assert!(origins_of(bad).is_empty(), "{bad}");
        }
    }
}
