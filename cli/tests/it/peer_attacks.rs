//! Attacks on LAN pairing and peer calls that need a hostile party in the
//! middle: a man in the middle who knows the invite code, a TLS-terminating
//! proxy, and a paired peer's address taken over by a server that hangs or
//! answers garbage. The hostile parties are real TLS servers in this process,
//! built from the daemon's own protocol pieces (what an attacker would use).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use loopsy_daemon::peers::client::PeerClient;
use loopsy_daemon::peers::pairing::host::HostWindow;
use loopsy_daemon::peers::pairing::protocol::Introduction;
use loopsy_transports::peer_tls::{self, Trust};
use serde_json::{Value, json};

use crate::harness::{Socket, free_port, patience, stderr, stdout};
use crate::peers::{daemon, node_id, open_window, pair, peers_of, wait_for};

/// A certificate and key of the attacker's own.
fn attacker_identity() -> (Vec<u8>, Vec<u8>, String) {
    let made = rcgen::generate_simple_self_signed(vec!["loopsy".to_owned()]).expect("cert");
    let fp = peer_tls::fingerprint(made.cert.der());
    (
        made.cert.pem().into_bytes(),
        made.key_pair.serialize_pem().into_bytes(),
        fp,
    )
}

/// Serves `app` over TLS with `cert`/`key` on `port`, on a thread of its own.
fn serve_tls<F>(cert: Vec<u8>, key: Vec<u8>, port: u16, app: F)
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let (ready, up) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let tls = peer_tls::server_config(&cert, &key).expect("TLS config");
            let server = HttpServer::new(move || App::new().configure(app.clone()))
                .workers(1)
                .disable_signals()
                .bind_rustls_0_23(("127.0.0.1", port), tls)
                .expect("bind")
                .run();
            let _ = ready.send(());
            let _ = server.await;
        });
    });
    up.recv_timeout(patience())
        .expect("the attacker's server is up");
}

fn rpc_answer(result: Result<Value, loopsy_transports::error::ApiError>) -> HttpResponse {
    HttpResponse::Ok().json(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": 1, "result": result}),
        Err(e) => json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": e.message,
            "data": {"httpStatus": e.status, "loopsyCode": e.code}}}),
    })
}

/// The impostor host: a real `HostWindow` opened with the code it learned.
async fn impostor_rpc(
    window: web::Data<Arc<Mutex<HostWindow>>>,
    body: web::Json<Value>,
) -> HttpResponse {
    let now = Instant::now();
    let params = &body["params"];
    let text = |k: &str| params[k].as_str().unwrap_or_default().to_owned();
    let mut window = window.lock().expect("window");
    let result = match body["method"].as_str() {
        Some("peer.pair.hello") => window.hello(&text("message"), [127, 0, 0, 1].into(), now),
        Some("peer.pair.finish") => window.finish(
            &text("pairing"),
            &text("message"),
            [127, 0, 0, 1].into(),
            &[],
            now,
        ),
        Some("peer.pair.step") => window
            .step(
                &text("pairing"),
                &text("message"),
                [127, 0, 0, 1].into(),
                now,
            )
            .map(|reply| json!({"message": reply.message})),
        _ => Err(loopsy_transports::error::ApiError::bad_request("no")),
    };
    rpc_answer(result)
}

#[test]
fn a_man_in_the_middle_who_knows_the_code_gets_two_check_codes() {
    let (kai, mira) = (daemon(), daemon());
    // Kai opens a window; the attacker has learned its code (the strongest
    // case: shoulder surfing, or cracked offline from a message 3).
    let mut kai_socket = Socket::connect(&kai);
    let code = open_window(&mut kai_socket);
    // Mira is steered to the attacker (a rogue mDNS answer, a spoofed address),
    // who poses as Kai there with a window of the same code…
    let (cert, key, fp) = attacker_identity();
    let port = free_port();
    let posing_as_kai = Introduction {
        node_id: node_id(&kai),
        hostname: "kai".into(),
        version: "0.1.0".into(),
        platform: "linux".into(),
        cert_fp: fp,
        peer_port: port,
    };
    let window = HostWindow::open_with_code(
        posing_as_kai,
        code.clone(),
        Instant::now(),
        Duration::from_secs(300),
    )
    .expect("window");
    let window = web::Data::new(Arc::new(Mutex::new(window)));
    serve_tls(cert, key, port, move |config| {
        config
            .app_data(window.clone())
            .route("/rpc", web::post().to(impostor_rpc));
    });
    let mut mira_socket = Socket::connect(&mira);
    mira_socket.request(
        "peers.join",
        json!({"address": format!("127.0.0.1:{port}"), "code": code}),
    );
    let at_mira = wait_for(&mut mira_socket, "peers.join.status", &["connecting"]);
    assert_eq!(at_mira["state"], "comparing", "{at_mira}");
    // …and joins Kai as Mira would, with the same code.
    let posing_as_mira = Introduction {
        node_id: node_id(&mira),
        hostname: "mira".into(),
        version: "0.1.0".into(),
        platform: "linux".into(),
        cert_fp: "ab".repeat(32),
        peer_port: 1,
    };
    let kai_port = kai.peer_port;
    let joined = actix_rt::System::new().block_on(async move {
        let seen = Arc::new(Mutex::new(None));
        let client = PeerClient::new(
            "kai",
            "127.0.0.1",
            kai_port,
            Trust::Record(seen.clone()),
            None,
        )
        .expect("client");
        loopsy_daemon::peers::pairing::join::handshake(
            std::rc::Rc::new(client),
            seen,
            posing_as_mira,
            code,
        )
        .await
        .map(|(_, _, sas, _)| sas)
    });
    let attacker_sas_with_kai = joined.expect("the attacker completes a handshake with Kai");
    let at_kai = wait_for(&mut kai_socket, "peers.pair.status", &["waiting"]);
    assert_eq!(at_kai["state"], "comparing", "{at_kai}");
    assert_eq!(at_kai["sas"], attacker_sas_with_kai.as_str());
    // The two owners see different check codes, so they decline: nothing is stored.
    assert_ne!(
        at_kai["sas"], at_mira["sas"],
        "the middleman made the codes agree"
    );
    kai_socket.request("peers.pair.confirm", json!({"accept": false}));
    mira_socket.request("peers.join.confirm", json!({"accept": false}));
    assert!(peers_of(&kai).is_empty() && peers_of(&mira).is_empty());
}

/// Forwards every call to the real host over TLS, presenting its own certificate.
async fn forwarding_rpc(target: web::Data<u16>, body: web::Json<Value>) -> HttpResponse {
    let seen = Arc::new(Mutex::new(None));
    let client =
        PeerClient::new("host", "127.0.0.1", **target, Trust::Record(seen), None).expect("client");
    let method = body["method"].as_str().unwrap_or_default().to_owned();
    rpc_answer(
        client
            .call(&method, body["params"].clone(), patience())
            .await,
    )
}

#[test]
fn a_tls_proxy_between_the_daemons_is_refused_at_pairing() {
    let (kai, mira) = (daemon(), daemon());
    let mut kai_socket = Socket::connect(&kai);
    let code = open_window(&mut kai_socket);
    let (cert, key, _) = attacker_identity();
    let port = free_port();
    let target = web::Data::new(kai.peer_port);
    serve_tls(cert, key, port, move |config| {
        config
            .app_data(target.clone())
            .route("/rpc", web::post().to(forwarding_rpc));
    });
    let mut mira_socket = Socket::connect(&mira);
    mira_socket.request(
        "peers.join",
        json!({"address": format!("127.0.0.1:{port}"), "code": code}),
    );
    let status = wait_for(&mut mira_socket, "peers.join.status", &["connecting"]);
    assert_eq!(status["state"], "ended", "{status}");
    assert!(
        status["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("intercepting"),
        "{status}"
    );
    assert!(peers_of(&mira).is_empty());
}

async fn garbage(_: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body("<html>this is not JSON-RPC")
}

async fn hang(_: web::Bytes) -> HttpResponse {
    tokio::time::sleep(Duration::from_secs(600)).await;
    HttpResponse::Ok().finish()
}

#[test]
fn a_peer_that_hangs_or_answers_garbage_costs_a_bounded_clear_error() {
    let (kai, mira) = (daemon(), daemon());
    pair(&kai, &mira, "exec", "exec");
    let kai_id = node_id(&kai);
    // Kai's address is taken over by a server holding Kai's own key (so the pin
    // still matches: the worst case) that answers garbage, then one that hangs.
    let pem = std::fs::read(kai.path("peer-tls.pem")).expect("Kai's certificate");
    kai.ok(&["stop"]);
    serve_tls(pem.clone(), pem.clone(), kai.peer_port, |config| {
        config.default_service(web::to(garbage));
    });
    // A call (JSON-RPC) and a tunnel (the framed WebSocket) both fail clearly.
    let out = mira.run(&["context", "get", "k", "--peer", &kai_id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not JSON-RPC"), "{}", stderr(&out));
    let out = mira.run(&["exec", "--peer", &kai_id, "--", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tunnel"), "{}", stderr(&out));

    let hanging = free_port();
    serve_tls(pem.clone(), pem, hanging, |config| {
        config.default_service(web::to(hang));
    });
    // Point Mira's record at the hanging server (as if Kai had moved there).
    let db = rusqlite::Connection::open(mira.path("loopsy.db")).expect("db");
    db.execute("UPDATE peers SET port = ?1", [hanging])
        .expect("update");
    mira.ok(&["stop"]);
    mira.ok(&["start", "--port", &mira.port.to_string()]);
    let started = Instant::now();
    let out = mira.run(&["exec", "--peer", &kai_id, "--", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("did not open the tunnel"),
        "{}",
        stderr(&out)
    );
    assert!(
        started.elapsed() < patience(),
        "the wait is bounded (10 s for a tunnel to open)"
    );
    // Mira's daemon is unaffected.
    let status = mira.ok(&["status", "--json"]);
    assert!(status.contains("nodeId"), "{status}");
    assert_eq!(stdout(&mira.run(&["exec", "--", "echo", "fine"])), "fine\n");
}
