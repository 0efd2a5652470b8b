//! The phone web app at `/app`, built from `web/` by the build script and
//! embedded in the binary. Served under a strict Content-Security-Policy: only
//! this origin's script (with Subresource Integrity in the page), no inline
//! script, no third-party origin, WebSockets only back to this relay.

use actix_web::{HttpRequest, HttpResponse};

const INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/webapp/index.html"));
const SCRIPT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/webapp/assets/app.js"));
const STYLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/webapp/assets/app.css"));
const ICON: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/webapp/assets/icon.svg"));
const MANIFEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/webapp/manifest.webmanifest"));

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

fn respond(req: &HttpRequest, content_type: &str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", policy(req)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

pub async fn index(req: HttpRequest) -> HttpResponse {
    respond(&req, "text/html; charset=utf-8", INDEX)
}

pub async fn script(req: HttpRequest) -> HttpResponse {
    respond(&req, "text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style(req: HttpRequest) -> HttpResponse {
    respond(&req, "text/css; charset=utf-8", STYLE)
}

pub async fn icon(req: HttpRequest) -> HttpResponse {
    respond(&req, "image/svg+xml", ICON)
}

/// The PWA manifest: the app can be installed and then opens full screen.
pub async fn manifest(req: HttpRequest) -> HttpResponse {
    respond(&req, "application/manifest+json", MANIFEST)
}
