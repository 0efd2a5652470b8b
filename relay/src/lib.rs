//! `loopsy-relay`: splices each laptop's one outbound WebSocket with its
//! phones' WebSockets. It stores device and phone secrets as digests and
//! one-time pair tokens, and relays end-to-end encrypted bytes it cannot read
//! (`docs/security.md`).
//!
//! # Layout
//! - [`store`]: durable state behind the async `Store` trait: SQLite for one
//!   node, PostgreSQL shared by a fleet (`docs/relay.md`), whose revocations
//!   reach every node (`follow_revocations`).
//! - [`access`]: bearer extraction, Origin check, client addresses behind
//!   trusted proxies, per-IP and relay-wide limits.
//! - [`frame_guard`]: oversized WebSocket frames refused from their header.
//! - [`rooms`]: one `Room` actor per device, splicing sockets by channel.
//! - [`sockets`]: the WebSocket doors (laptop, phone, pairing).
//! - [`http`]: health, metrics, registration, pair tokens, phones.
//! - [`state`]: what the handlers share; [`metrics`]: counters.
//! - [`app_pointer`]: `/app` when phones use an app origin of their own.
//! - [`serve_args`]: the relay's flags (`loopsy-relay`, `loopsy relay serve`).

pub mod access;
pub mod app_pointer;
pub mod frame_guard;
pub mod http;
pub mod metrics;
pub mod rooms;
pub mod serve_args;
pub mod sockets;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use loopsy_transports::secrets::KeyDigest;
use loopsy_webapp::{AppUrl, get_or_head};

use crate::access::{ConnectionCap, RegistrationLimits};
use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::state::RelayState;
use crate::store::Database;

pub use loopsy_transports::clock::now_ms;

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PostgreSQL shared by a fleet; without it, `relay.db` in `data_dir`.
    pub postgres: Option<PostgresUrl>,
    pub public_url: Option<String>,
    pub registration_secret: Option<String>,
    pub allowed_origins: Vec<String>,
    pub max_connections_per_ip: usize,
    pub registrations_per_minute: u32,
    pub registrations_per_minute_total: u32,
    pub max_pair_tokens_per_device: u32,
    pub max_phone_sockets_per_device: usize,
    pub max_pairing_sockets_per_device: usize,
    pub trusted_proxies: Vec<access::Cidr>,
    /// When set, `GET /metrics` needs it as a bearer; otherwise `/metrics` is off.
    pub metrics_secret: Option<String>,
    pub max_pair_ttl: Duration,
    pub workers: usize,
    /// Serve HTTPS/WSS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Where phones open the app, when not here: the relay then serves no app,
    /// lets that origin open WebSockets, and tells daemons to put it in their
    /// pairing links.
    pub app_url: Option<AppUrl>,
}

/// The relay's certificate chain and private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where a fleet's PostgreSQL is, and its password (kept out of the URL).
#[derive(Clone)]
pub struct PostgresUrl {
    pub url: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresUrl(..)")
    }
}

impl RelayConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
            postgres: None,
            public_url: None,
            registration_secret: None,
            allowed_origins: Vec::new(),
            max_connections_per_ip: 256,
            registrations_per_minute: 5,
            registrations_per_minute_total: 60,
            max_pair_tokens_per_device: 5,
            max_phone_sockets_per_device: 32,
            max_pairing_sockets_per_device: 8,
            trusted_proxies: Vec::new(),
            metrics_secret: None,
            max_pair_ttl: Duration::from_secs(3600),
            workers: 2,
            tls: None,
            app_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot create the relay's data dir {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {0}: {1} (is another relay running? pick another --listen)")]
    Bind(SocketAddr, std::io::Error),
    #[error("cannot use the TLS files: {0}")]
    Tls(String),
}

/// A rustls server configuration (aws-lc-rs provider) from PEM files.
fn tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig, RelayError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| RelayError::Tls(format!("{}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(RelayError::Tls(format!(
            "{} holds no certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| RelayError::Tls(format!("{}: {e}", files.key.display())))?;
    rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RelayError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| RelayError::Tls(format!("the certificate and key do not fit together: {e}")))
}

/// Acts on what the database announces to every node (PostgreSQL): closes,
/// here, the sockets of phones revoked on any node (this one's own too), and
/// lets go of a laptop whose phones now reach another node.
fn follow_revocations(state: web::Data<RelayState>, mut feed: store::RevocationFeed) {
    actix_rt::spawn(async move {
        while let Some(said) = feed.recv().await {
            match said {
                store::Announced::Revoked(revoked) => {
                    if let Some(room) = state.rooms.existing(&revoked.device_id) {
                        room.do_send(rooms::RevokePhone {
                            phone_id: revoked.phone_id,
                        });
                    }
                }
                store::Announced::Wanted { device_id } => {
                    if let Some(room) = state.rooms.existing(&device_id) {
                        room.do_send(rooms::LaptopWanted);
                    }
                }
            }
        }
    });
}

/// Opens the store and binds the listener; the returned server runs when awaited.
pub fn serve(config: RelayConfig) -> Result<(actix_web::dev::Server, SocketAddr), RelayError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| RelayError::DataDir(config.data_dir.clone(), e))?;
    let database = match &config.postgres {
        Some(pg) => Database::Postgres {
            url: pg.url.clone(),
            password: pg.password.clone(),
        },
        None => Database::Sqlite(config.data_dir.join("relay.db")),
    };
    let (store, revocations) = store::open(&database)?;
    let metrics = Arc::new(Metrics::default());
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|e| RelayError::Bind(config.listen, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| RelayError::Bind(config.listen, e))?;
    let state = web::Data::new(RelayState {
        store: store.clone(),
        rooms: Rooms::new(
            store,
            metrics.clone(),
            rooms::SocketCaps {
                phones: config.max_phone_sockets_per_device,
                pairings: config.max_pairing_sockets_per_device,
            },
        ),
        metrics,
        allowed_origins: config
            .allowed_origins
            .iter()
            .cloned()
            .chain(config.app_url.iter().map(|app| app.origin().to_owned()))
            .collect(),
        app_url: config.app_url.clone(),
        connection_cap: ConnectionCap::new(config.max_connections_per_ip),
        registrations: RegistrationLimits::new(
            config.registrations_per_minute,
            config.registrations_per_minute_total,
        ),
        registration_secret: config.registration_secret.as_deref().map(KeyDigest::of),
        metrics_secret: config.metrics_secret.as_deref().map(KeyDigest::of),
        trusted_proxies: config.trusted_proxies.clone(),
        max_pair_tokens_per_device: config.max_pair_tokens_per_device,
        public_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}")),
        max_pair_ttl: config.max_pair_ttl,
        last_purge: Default::default(),
    });
    if let Some(feed) = revocations {
        follow_revocations(state.clone(), feed);
    }
    let app_url = config.app_url.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::JsonConfig::default().limit(16 * 1024))
            .configure(|routes| match &app_url {
                Some(app) => app_pointer::routes(routes, app.clone()),
                None => loopsy_webapp::routes(loopsy_webapp::this_host_only())(routes),
            })
            .route("/health", get_or_head().to(http::health))
            .route("/metrics", get_or_head().to(http::metrics))
            .route("/device/register", web::post().to(http::register))
            .route("/pair/issue", web::post().to(http::issue_pair_token))
            .route("/laptop/connect", web::get().to(sockets::laptop_connect))
            .route(
                "/phone/connect/{device}",
                web::get().to(sockets::phone_connect),
            )
            .route(
                "/pair/connect/{device}",
                web::get().to(sockets::pair_connect),
            )
            .route(
                "/device/{device}/phones",
                get_or_head().to(http::list_phones),
            )
            .route(
                "/device/{device}/phones/self",
                web::delete().to(http::revoke_self),
            )
            .route(
                "/device/{device}/phones/self",
                web::method(actix_web::http::Method::OPTIONS).to(http::revoke_self_preflight),
            )
            .route(
                "/device/{device}/phones/{phone}",
                web::delete().to(http::revoke_phone),
            )
            .default_service(web::to(http::not_found))
    })
    // Control and sealed frames are small and often back to back: without
    // TCP_NODELAY, Nagle's algorithm holds the second one for the peer's
    // delayed ACK (tens of milliseconds per phone connection).
    .on_connect(|connection, _| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
        }
    })
    .workers(config.workers);
    let server = match &config.tls {
        Some(files) => server.listen_rustls_0_23(listener, tls_config(files)?),
        None => server.listen(listener),
    }
    .map_err(|e| RelayError::Bind(config.listen, e))?
    .run();
    Ok((server, bound))
}
