//! Running the daemon: one Actix system with the Router, the audit writer and the
//! transport actors; graceful shutdown on SIGTERM/SIGINT or `daemon.stop`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use loopsy_transports::lan_http::{self, LanHttp};
use loopsy_transports::unix_socket::{StopAccepting, UnixSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use crate::audit::{AuditLog, SyncAudit};
use crate::config::{Overrides, Settings};
use crate::durable;
use crate::identity::{self, NodeIdentity};
use crate::instance::{InstanceError, InstanceLock};
use crate::phone::RelayLink;
use crate::router::{Router, RouterSetup, Services};
use crate::services::context::ContextStore;
use crate::sessions::{SessionManager, SessionSettings, ShutdownAll};

/// Upper bound on the whole graceful shutdown, beyond the HTTP drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error("cannot prepare {what}: {source}")]
    Prepare { what: String, source: io::Error },
    #[error(
        "cannot listen on {addr}: {source}; is another program using it? choose another with --port or server.port"
    )]
    Listen { addr: String, source: io::Error },
    #[error("cannot create the Unix socket {path}: {source}")]
    Socket { path: String, source: io::Error },
}

/// Something a caller may want to know once the daemon is serving.
#[derive(Debug, Clone)]
pub struct Started {
    pub node_id: String,
    pub http: Vec<std::net::SocketAddr>,
    /// The TLS listener for peers.
    pub peers: Vec<std::net::SocketAddr>,
    pub cert_fingerprint: String,
}

/// Runs the daemon until it is told to stop. Blocks the calling thread.
pub fn run(
    settings: Settings,
    overrides: Overrides,
    on_started: impl FnOnce(&Started),
) -> Result<(), RunError> {
    let data_dir = settings.data_dir.clone();
    let prepare = |what: &str| {
        let what = what.to_owned();
        move |source| RunError::Prepare { what, source }
    };
    match durable::ensure_private_dir(data_dir.root()).map_err(prepare("the data dir"))? {
        durable::DirFix::Tightened { old_mode } => tracing::warn!(
            dir = %data_dir.root().display(),
            old_mode = format!("{old_mode:o}"),
            "the data dir was readable by others; tightened it to 0700"
        ),
        durable::DirFix::Created | durable::DirFix::AlreadyPrivate => {}
    }
    if let Some(old_mode) =
        durable::tighten_file(&data_dir.config()).map_err(prepare("config.yaml"))?
    {
        tracing::warn!(
            old_mode = format!("{old_mode:o}"),
            "config.yaml was readable by others; tightened it to 0600"
        );
    }
    durable::ensure_private_dir(&data_dir.logs()).map_err(prepare("the logs dir"))?;
    let instance = InstanceLock::acquire(&data_dir)?;
    durable::ensure_private_dir(&data_dir.transfers()).map_err(prepare("the transfers dir"))?;
    let swept = crate::services::transfer::sweep_left_uploads(&data_dir.transfers());
    if swept > 0 {
        tracing::info!(
            swept,
            "removed the temp files of uploads a previous daemon left unfinished"
        );
    }
    let node_id = identity::load_or_create_node_id(&data_dir).map_err(prepare("the node id"))?;
    let tls = crate::peers::tls_identity::load_or_create(&data_dir, &settings.config.tls)
        .map_err(prepare("the TLS certificate for peers"))?;
    let paired = crate::peers::store::PeerBook::open(&data_dir)
        .and_then(|book| Ok((book.list()?, book.typescript_keys()?)))
        .map_err(|e| RunError::Prepare {
            what: "the peer list in loopsy.db".into(),
            source: io::Error::other(e.to_string()),
        })?;
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }

    let system = System::new();
    let peers = (tls, paired);
    let result = system.block_on(serve(settings, overrides, node_id, peers, on_started));
    drop(instance);
    result
}

async fn serve(
    settings: Settings,
    overrides: Overrides,
    node_id: String,
    (tls, (paired, typescript_keys)): (
        crate::peers::tls_identity::TlsIdentity,
        (
            Vec<crate::peers::store::PeerRecord>,
            Vec<crate::peers::typescript_keys::TypeScriptKey>,
        ),
    ),
    on_started: impl FnOnce(&Started),
) -> Result<(), RunError> {
    let data_dir = settings.data_dir.clone();
    let server = settings.config.server.clone();
    let peer_port = server.peer_port();
    // Announcing and listening on the network only when the daemon is on it.
    let discovery_on = settings.config.discovery.enabled || overrides.lan;
    let peer_tls = loopsy_transports::peer_tls::server_config(&tls.cert_pem, &tls.key_pem)
        .map_err(|e| RunError::Prepare {
            what: "the TLS listener for peers".into(),
            source: io::Error::other(e.to_string()),
        })?;
    let logging = settings.config.logging.clone();
    let audit_path = data_dir.audit_log();
    let audit = SyncArbiter::start(1, move || {
        AuditLog::new(
            audit_path.clone(),
            logging.audit_max_bytes,
            logging.audit_keep,
        )
    });
    let shutdown = Arc::new(Notify::new());
    let identity = NodeIdentity {
        node_id: node_id.clone(),
        hostname: settings.hostname.clone(),
        platform: identity::platform(),
        port: server.port,
    };
    let max_entries = settings.config.context.max_entries as usize;
    let context =
        ContextStore::open(&data_dir.database(), max_entries).map_err(|e| RunError::Prepare {
            what: format!("the state database {}", data_dir.database().display()),
            source: io::Error::other(e.to_string()),
        })?;
    let session_config = &settings.config.session;
    // Sessions run on arbiters of their own, one per core: a session flooding
    // output shares no thread with the connections, the Router or the relay link.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let session_arbiters: Vec<Arbiter> = (0..cores).map(|_| Arbiter::new()).collect();
    let sessions = SessionManager::new(SessionSettings {
        ring_bytes: session_config.ring_bytes as usize,
        scrollback_lines: session_config.scrollback_lines as usize,
        idle_timeout: Duration::from_secs(settings.config.relay.session_idle_timeout_sec),
        exited_retention: Duration::from_secs(session_config.exited_retention),
    })
    .with_pool(session_arbiters.iter().map(Arbiter::handle).collect())
    .start();
    // Kept for the daemon's life: the thread exec jobs start and run on.
    let exec_arbiter = Arbiter::new();
    // Peer links and joins: their TLS and waits share no thread with the Router.
    let peers_arbiter = Arbiter::new();
    let hostname = settings.hostname.clone();
    let ping_every = Duration::from_secs(settings.config.relay.ping_interval_sec);
    // The Router and the relay link have a thread each: sessions and connections
    // never delay their work, and a panic in either is told apart (see `crash`).
    let router_arbiter = Arbiter::new();
    let relay_arbiter = Arbiter::new();
    // Nothing is served without the Router, and phones reach nothing without the
    // link: a panic on either thread ends the process (see `crash`).
    router_arbiter.spawn_fn(|| crate::crash::mark_critical("Router"));
    relay_arbiter.spawn_fn(|| crate::crash::mark_critical("RelayLink"));
    let relay_handle = relay_arbiter.handle();
    let connections = Arbiter::current();
    let link_data_dir = data_dir.clone();
    let relay_origins = crate::phone::RelayOrigins::default();
    let published = relay_origins.clone();
    let discovery = discovery_on.then(|| {
        let ours = crate::peers::discovery::Announcement {
            node_id: node_id.clone(),
            hostname: settings.hostname.clone(),
            platform: identity::platform().to_owned(),
            port: server.port,
            peer_port,
            cert_fp: tls.fingerprint.clone(),
        };
        crate::peers::discovery::Discovery::start_in_arbiter(&peers_arbiter.handle(), move |_| {
            crate::peers::discovery::Discovery::new(ours)
        })
    });
    let services = (
        context,
        sessions.clone(),
        exec_arbiter.handle(),
        peers_arbiter.handle(),
        discovery,
    );
    let peer_setup = crate::router::PeerSetup {
        cert_fp: tls.fingerprint.clone(),
        port: peer_port,
        paired,
        typescript_keys,
    };
    let setup = (
        settings,
        overrides,
        identity,
        audit.clone(),
        shutdown.clone(),
    );
    // The two know each other: the link is started from inside the Router's
    // start, where the Router's address exists.
    let router = Router::start_in_arbiter(&router_arbiter.handle(), move |ctx| {
        let router = ctx.address().recipient();
        let relay = RelayLink::start_in_arbiter(&relay_handle, move |_| {
            RelayLink::new(link_data_dir, router, hostname)
                .with_ping_interval(ping_every)
                .with_connections_on(connections)
                .with_published_origins(published)
        });
        let (context, sessions, exec, peers, discovery) = services;
        let (settings, overrides, identity, audit, shutdown) = setup;
        Router::new(RouterSetup {
            services: Services {
                context,
                sessions,
                exec,
                relay,
                peers,
                discovery,
            },
            peers: peer_setup,
            settings,
            overrides,
            identity,
            audit,
            shutdown,
        })
    });

    let socket_path = data_dir.socket();
    let unix = UnixSocket::bind(&socket_path, router.clone().recipient())
        .map_err(|source| RunError::Socket {
            path: socket_path.display().to_string(),
            source,
        })?
        .start();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let app = relay_origins.sources();
    let listener = lan_http::PeerListener {
        port: peer_port,
        tls: peer_tls,
    };
    let lan = LanHttp::bind(
        &server.host,
        server.port,
        Some(listener),
        workers,
        router.recipient(),
        app,
    )
    .map_err(|source| RunError::Listen {
        addr: format!(
            "{}:{} (and {peer_port} for peers)",
            server.host, server.port
        ),
        source,
    })?;
    let started = Started {
        node_id,
        http: lan.local_addrs().to_vec(),
        peers: lan.tls_addrs().to_vec(),
        cert_fingerprint: tls.fingerprint.clone(),
    };
    let lan = lan.start();
    tracing::info!(
        http = ?started.http,
        peers = ?started.peers,
        socket = %socket_path.display(),
        node_id = %started.node_id,
        "loopsy daemon serving"
    );
    on_started(&started);
    // Seed the CSPRNG now, off the request path: the first seeding gathers entropy
    // for tens of milliseconds, which the first job id or key would otherwise wait for.
    std::thread::spawn(|| {
        let _ = crate::secrets::random_bytes::<1>();
    });

    wait_for_stop(&shutdown).await;
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    unix.do_send(StopAccepting);
    // Sessions do not outlive the daemon (their PTYs belong to it).
    sessions.do_send(ShutdownAll);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, lan.send(lan_http::Drain)).await;
    if drained.is_err() {
        tracing::warn!("in-flight requests did not finish in time; dropping them");
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), audit.send(SyncAudit)).await;
    // Let the socket actor run its `stopped` (removes the socket file).
    tokio::task::yield_now().await;
    System::current().stop();
    tracing::info!("loopsy daemon stopped");
    Ok(())
}

async fn wait_for_stop(shutdown: &Notify) {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        _ => {
            tracing::error!(
                "cannot install signal handlers; only `loopsy stop` will stop this daemon"
            );
            shutdown.notified().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
        () = shutdown.notified() => {}
    }
}
