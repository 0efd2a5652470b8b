//! The Router against real requests: who is the owner, what keys may ask, and
//! that the relay link's phone-channel operations are its alone.
use loopsy_transports::wire::{BearerToken, HttpEvidence};

use super::*;
use crate::config::initial_config;
use crate::paths::DataDir;

const OWNER_KEY: &str = "0a1b2c3d4e5f67890a1b2c3d4e5f67890a1b2c3d4e5f67890a1b2c3d4e5f6789";
const PEER_KEY: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn settings(dir: &std::path::Path) -> Settings {
    let data = DataDir::new(dir);
    let text = initial_config(OWNER_KEY).replace(
        "allowedKeys: {}",
        &format!("allowedKeys:\n    laptop: \"{PEER_KEY}\""),
    );
    std::fs::write(data.config(), text).expect("config");
    std::fs::create_dir_all(data.logs()).expect("logs");
    Settings::load(data, &Overrides::default()).expect("settings")
}

fn http(key: Option<&str>) -> Evidence {
    Evidence::LanHttp(HttpEvidence {
        remote: Some(([127, 0, 0, 1], 40000).into()),
        bearer: key.map(BearerToken::new),
        host: Some("127.0.0.1:19532".into()),
        ..Default::default()
    })
}

/// Runs requests through a real Router (with its real audit writer) and
/// returns each answer's HTTP status.
fn statuses(cases: Vec<(Request, Evidence)>) -> Vec<u16> {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = settings(dir.path());
    let audit_path = settings.data_dir.audit_log();
    let db = settings.data_dir.database();
    let data_dir = settings.data_dir.clone();
    actix::System::new().block_on(async move {
        let relay_context = actix::Context::<crate::phone::RelayLink>::new();
        let relay = relay_context.address();
        let audit = SyncArbiter::start(1, move || AuditLog::new(audit_path.clone(), 1 << 20, 1));
        let router = Router::new(RouterSetup {
            settings,
            overrides: Overrides::default(),
            identity: NodeIdentity {
                node_id: "test-node".into(),
                hostname: "test".into(),
                platform: "linux",
                port: 19532,
            },
            audit,
            shutdown: Arc::new(Notify::new()),
            services: Services {
                context: ContextStore::open(&db, 100).expect("context store"),
                sessions: crate::sessions::SessionManager::new(crate::sessions::SessionSettings {
                    ring_bytes: 1 << 20,
                    scrollback_lines: 100,
                    idle_timeout: std::time::Duration::from_secs(60),
                    exited_retention: std::time::Duration::from_secs(60),
                })
                .start(),
                exec: actix::Arbiter::current(),
                relay,
                peers: actix::Arbiter::current(),
                discovery: None,
            },
            peers: super::PeerSetup {
                cert_fp: "ab".repeat(32),
                port: 19533,
                paired: Vec::new(),
                typescript_keys: Vec::new(),
            },
        })
        .start();
        relay_context.run(crate::phone::RelayLink::new(
            data_dir,
            router.clone().recipient(),
            "test".into(),
        ));
        let mut out = Vec::new();
        for (request, evidence) in cases {
            let handled = router
                .send(Inbound { request, evidence })
                .await
                .expect("router answers");
            out.push(match handled.outcome {
                Ok(reply) => reply.status,
                Err(error) => error.status,
            });
        }
        out
    })
}

#[test]
fn only_the_daemons_own_uid_is_the_owner_on_the_socket() {
    let own = rustix::process::geteuid().as_raw();
    let got = statuses(vec![
        (
            Request::Status,
            Evidence::UnixSocket {
                peer_uid: Some(own),
            },
        ),
        (
            Request::Status,
            Evidence::UnixSocket {
                peer_uid: Some(own.wrapping_add(1)),
            },
        ),
        (Request::Status, Evidence::UnixSocket { peer_uid: None }),
        (
            Request::KeyShow,
            Evidence::UnixSocket {
                peer_uid: Some(own.wrapping_add(1)),
            },
        ),
    ]);
    assert_eq!(got, vec![200, 403, 403, 403]);
}

#[test]
fn owner_only_operations_are_refused_to_keys() {
    let got = statuses(vec![
        (Request::KeyShow, http(Some(OWNER_KEY))),
        (Request::KeyRotate, http(Some(OWNER_KEY))),
        (Request::KeyShow, http(Some(PEER_KEY))),
        (Request::DaemonStop, http(Some(PEER_KEY))),
        (Request::Status, http(Some(PEER_KEY))),
        (Request::Identity, http(None)),
        (Request::Health, http(None)),
        (Request::Health, http(Some("wrong"))),
    ]);
    assert_eq!(got, vec![403, 403, 403, 403, 200, 401, 200, 200]);
}

/// The phone-channel operations answer the relay link only, and the link's
/// evidence opens nothing else: not even the owner may ask a phone's key.
#[test]
fn phone_channel_operations_are_the_relay_links_alone() {
    let own = rustix::process::geteuid().as_raw();
    let owner = Evidence::UnixSocket {
        peer_uid: Some(own),
    };
    let link = Evidence::RelayChannel {
        subject: "pairing:t1".into(),
    };
    let connect = || Request::PhoneConnect {
        phone_id: "p1".into(),
    };
    let got = statuses(vec![
        (connect(), owner.clone()),
        (connect(), http(Some(OWNER_KEY))),
        (
            Request::Call {
                method: "phone.pair.open".into(),
                params: Some(serde_json::json!({ "tokenId": "t1" })),
            },
            owner.clone(),
        ),
        (Request::Status, link.clone()),
        (Request::KeyShow, link.clone()),
        (
            Request::PhonePairOpen {
                token_id: "t1".into(),
            },
            link.clone(),
        ),
        (
            Request::PhonePairCode {
                token_id: "t1".into(),
                code: "1234".into(),
            },
            link.clone(),
        ),
        (connect(), link),
    ]);
    // Refused to everyone else (403); asked by the link, no window (404) and
    // no such phone (403, not paired).
    assert_eq!(got, vec![403, 403, 403, 403, 403, 404, 404, 403]);
}
