//! Several relay nodes on one PostgreSQL, behind Debian's HAProxy with the
//! shipped `config-examples/haproxy.cfg`: a laptop and its phone meet on one
//! node through the balancer and again after that node is killed; tokens,
//! limits and revocations hold across nodes; a node killed mid-pairing loses
//! no registered device. Run on the PostgreSQL test binary only.

use std::time::{Duration, Instant};

use actix_web::http::Method;
use bytes::Bytes;
use futures_util::SinkExt;
use loopsy_transports::relay_wire::{
    FromLaptop, ToLaptop, channel_frame, close, split_channel_frame,
};

use crate::support::*;

pub struct Fleet {
    pub nodes: Vec<Option<Relay>>,
    /// HAProxy, as a `Relay` whose URL is the balancer's.
    pub balancer: Relay,
    pub metrics_secret: String,
    /// What a node is started with, for a restart.
    ports: Vec<u16>,
    database: String,
    flags: Vec<String>,
    _secrets: tempfile::TempDir,
}

/// `n` nodes (at most three, as the shipped config names) on one fresh
/// database, and HAProxy in front with the shipped config.
pub async fn fleet(n: usize, extra: &[&str]) -> Fleet {
    assert!(n <= 3);
    let database = crate::postgres_server::fresh_database();
    let secrets = tempfile::tempdir().unwrap();
    let metrics_file = secrets.path().join("metrics");
    std::fs::write(&metrics_file, "fleet-metrics").unwrap();
    let balancer_port = free_port();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let public = format!("http://127.0.0.1:{balancer_port}");
    let mut flags: Vec<String> = [
        "--trusted-proxy",
        "127.0.0.1",
        "--public-url",
        &public,
        "--metrics-secret-file",
        metrics_file.to_str().unwrap(),
    ]
    .iter()
    .map(|f| f.to_string())
    .collect();
    flags.extend(extra.iter().map(|f| f.to_string()));
    let mut nodes = Vec::new();
    for port in &ports[..n] {
        let words: Vec<&str> = flags.iter().map(String::as_str).collect();
        nodes.push(Some(start_relay_at(*port, Some(&database), &words).await));
    }
    let child = crate::balancer::start_balancer(secrets.path(), balancer_port, &ports);
    let balancer = Relay {
        child,
        url: public,
        _dir: tempfile::tempdir().unwrap(),
    };
    // Up once every live node passes its health check through the balancer.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let up = awc::Client::new()
            .get(format!("{}/health", balancer.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "HAProxy did not come up");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    actix_rt::time::sleep(Duration::from_millis(1200)).await;
    Fleet {
        nodes,
        balancer,
        metrics_secret: "fleet-metrics".into(),
        ports,
        database,
        flags,
        _secrets: secrets,
    }
}

impl Fleet {
    /// Starts node `i` again on its port; returns once HAProxy takes it back (`rise 2`).
    pub async fn restart(&mut self, i: usize) {
        let words: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        self.nodes[i] = Some(start_relay_at(self.ports[i], Some(&self.database), &words).await);
        actix_rt::time::sleep(Duration::from_millis(1500)).await;
    }

    pub fn node(&self, i: usize) -> &Relay {
        self.nodes[i].as_ref().expect("a live node")
    }

    /// Open laptop and phone sockets on node `i`, from its metrics.
    pub async fn sockets_on(&self, i: usize) -> (u64, u64) {
        let mut response = awc::Client::new()
            .get(format!("{}/metrics", self.node(i).url))
            .bearer_auth(&self.metrics_secret)
            .send()
            .await
            .unwrap();
        let text = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
        let gauge = |side: &str| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(&format!("loopsy_relay_connections{{side=\"{side}\"}} "))
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        (gauge("laptop"), gauge("phone"))
    }

    /// The live node holding `laptops` laptop and `phones` phone sockets,
    /// asked for up to 5 s: a node counts a socket once its actor has
    /// started, a moment after the handshake the client already saw.
    pub async fn holder(&self, laptops: u64, phones: u64) -> Option<usize> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            for i in 0..self.nodes.len() {
                if self.nodes[i].is_some() && self.sockets_on(i).await == (laptops, phones) {
                    return Some(i);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Connects until the balancer lets the socket in (a node just killed is
/// refused until the health check takes it out), within `bound`.
async fn socket_within(url: &str, bearer: &str, bound: Duration) -> Socket {
    let deadline = Instant::now() + bound;
    loop {
        let attempt = awc::Client::new()
            .ws(url)
            .protocols([
                loopsy_transports::relay_wire::SUBPROTOCOL.to_owned(),
                format!("loopsy.bearer.{bearer}"),
            ])
            .connect()
            .await;
        if let Ok((_, socket)) = attempt {
            return socket;
        }
        assert!(
            Instant::now() < deadline,
            "no way in to {url} within {bound:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The phone's frame reaches the laptop on `channel`, and the laptop's the phone.
async fn bytes_flow(laptop: &mut Socket, phone: &mut Socket, words: &'static [u8]) {
    let channel = phone_opened(laptop).await;
    phone
        .send(awc::ws::Message::Binary(Bytes::from_static(words)))
        .await
        .unwrap();
    let Got::Binary(frame) = next(laptop).await else {
        panic!("the phone's frame did not arrive")
    };
    assert_eq!(
        split_channel_frame(frame),
        Some((channel, Bytes::from_static(words)))
    );
    laptop
        .send(awc::ws::Message::Binary(channel_frame(channel, words)))
        .await
        .unwrap();
    let Got::Binary(back) = next(phone).await else {
        panic!("the laptop's frame did not arrive")
    };
    assert_eq!(&back[..], words);
}

#[actix_rt::test]
async fn a_laptop_and_its_phone_meet_through_the_balancer_and_again_after_their_node_dies() {
    let mut fleet = fleet(3, &[]).await;
    let lb = &fleet.balancer;
    let (device, secret) = register(lb).await;
    let laptop_url = format!("{}/laptop/connect?device_id={device}", lb.url);
    let mut laptop = socket(laptop_url.clone(), &secret).await.unwrap();
    let token = issue(lb, &device, &secret).await;
    let (phone_id, phone_secret) = paired_phone(lb, &device, &mut laptop, &token).await;
    let phone_url = format!("{}/phone/connect/{device}?phone_id={phone_id}", lb.url);
    let mut phone = socket(phone_url.clone(), &phone_secret).await.unwrap();
    bytes_flow(&mut laptop, &mut phone, b"before").await;
    let holder = fleet
        .holder(1, 1)
        .await
        .expect("laptop and phone on one node");

    // The node dies; both reconnect through the balancer and meet again.
    let killed = Instant::now();
    drop(fleet.nodes[holder].take());
    for side in [&mut laptop, &mut phone] {
        let ended = actix_rt::time::timeout(Duration::from_secs(5), async {
            loop {
                if matches!(next(side).await, Got::Closed(_)) {
                    break;
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "a socket on the dead node stayed open");
    }
    let bound = Duration::from_secs(10);
    let mut laptop = socket_within(&laptop_url, &secret, bound).await;
    let mut phone = socket_within(&phone_url, &phone_secret, bound).await;
    let met = killed.elapsed();
    bytes_flow(&mut laptop, &mut phone, b"after").await;
    let again = fleet.holder(1, 1).await.expect("met on one live node");
    assert_ne!(again, holder);
    assert!(met < bound, "reconnected in {met:?}");
}

#[actix_rt::test]
async fn a_token_used_through_one_node_is_refused_through_another() {
    let fleet = fleet(2, &[]).await;
    let (a, b) = (fleet.node(0), fleet.node(1));
    let (device, _, mut laptop, token) = laptop_with_token(a).await;
    let _ = paired_phone(a, &device, &mut laptop, &token).await;
    assert_eq!(
        closed_at_once(format!("{}/pair/connect/{device}", b.url), &token).await,
        (close::PAIRING_REFUSED, "pairing link used".to_owned())
    );
}

#[actix_rt::test]
async fn attempts_and_live_tokens_are_counted_across_nodes() {
    let fleet = fleet(2, &["--max-pair-tokens-per-device", "3"]).await;
    let (a, b) = (fleet.node(0), fleet.node(1));
    let (device, secret) = register(a).await;
    // Six issued at once, three on each node: three live tokens at most.
    let issue_on = |relay: &Relay| {
        post(
            format!("{}/pair/issue?device_id={device}", relay.url),
            Some(&secret),
            serde_json::json!({}),
        )
    };
    let answers = futures_util::future::join_all([
        issue_on(a),
        issue_on(b),
        issue_on(a),
        issue_on(b),
        issue_on(a),
        issue_on(b),
    ])
    .await;
    let issued: Vec<String> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body["token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(issued.len(), 3, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(status, _)| [201, 429].contains(status)),
        "{answers:?}"
    );

    // Five sockets on one token, whichever node they reach; the sixth is refused.
    let token = &issued[0];
    for n in 0..5 {
        let relay = if n % 2 == 0 { a } else { b };
        let (code, reason) =
            closed_at_once(format!("{}/pair/connect/{device}", relay.url), token).await;
        assert_ne!(
            reason, "pairing link closed after wrong codes",
            "attempt {n}: {code}"
        );
    }
    assert_eq!(
        closed_at_once(format!("{}/pair/connect/{device}", b.url), token).await,
        (
            close::PAIRING_REFUSED,
            "pairing link closed after wrong codes".to_owned()
        )
    );
}

#[actix_rt::test]
async fn registrations_are_limited_per_address_across_nodes() {
    let fleet = fleet(2, &[]).await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let (status, _) = post(
            format!("{}/device/register", fleet.node(n % 2).url),
            None,
            serde_json::json!({}),
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [201, 201, 201, 201, 201, 429],
        "five a minute from one address, fleet-wide"
    );
}

#[actix_rt::test]
async fn a_revocation_through_one_node_closes_the_phone_on_another_within_a_second() {
    let fleet = fleet(2, &[]).await;
    let (a, b) = (fleet.node(0), fleet.node(1));
    let (device, secret, mut laptop, token) = laptop_with_token(a).await;
    let (phone_id, phone_secret) = paired_phone(a, &device, &mut laptop, &token).await;
    let mut phone = socket(
        format!("{}/phone/connect/{device}?phone_id={phone_id}", a.url),
        &phone_secret,
    )
    .await
    .unwrap();
    phone_opened(&mut laptop).await;
    let revoked = awc::Client::new()
        .request(
            Method::DELETE,
            format!("{}/device/{device}/phones/{phone_id}", b.url),
        )
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let closed = actix_rt::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Got::Closed(code) = next(&mut phone).await {
                return code;
            }
        }
    })
    .await;
    assert_eq!(
        closed,
        Ok(Some(close::REVOKED)),
        "closed on node A within a second"
    );
}

#[actix_rt::test]
async fn a_node_killed_mid_pairing_loses_no_registered_device() {
    let mut fleet = fleet(2, &[]).await;
    let (device, secret) = register(fleet.node(0)).await;
    let mut laptop = socket(
        format!("{}/laptop/connect?device_id={device}", fleet.node(0).url),
        &secret,
    )
    .await
    .unwrap();
    let token = issue(fleet.node(0), &device, &secret).await;
    let _pairing = socket(
        format!("{}/pair/connect/{device}", fleet.node(0).url),
        &token,
    )
    .await
    .unwrap();
    let ToLaptop::Open { .. } = laptop_message(&mut laptop).await else {
        panic!("expected the pairing's open")
    };
    // kill -9, mid-pairing.
    drop(fleet.nodes[0].take());
    let b = fleet.node(1);
    let (status, _) = post(
        format!("{}/pair/issue?device_id={device}", b.url),
        Some(&secret),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 201, "the device is still registered");
    let mut laptop = socket(
        format!("{}/laptop/connect?device_id={device}", b.url),
        &secret,
    )
    .await
    .unwrap();
    send_control(&mut laptop, FromLaptop::Close { channel: 1 }).await;
}

/// A node that comes back gets its devices again: their phones, hashed to it,
/// find no laptop there and say so; the node holding the laptop lets it go
/// (4011) and it reconnects through the balancer to meet them.
#[actix_rt::test]
async fn a_node_that_comes_back_gets_its_laptops_back_when_their_phones_knock() {
    let mut fleet = fleet(3, &[]).await;
    let lb = fleet.balancer.url.clone();
    let (device, secret) = register(&fleet.balancer).await;
    let laptop_url = format!("{lb}/laptop/connect?device_id={device}");
    let mut laptop = socket(laptop_url.clone(), &secret).await.unwrap();
    let token = issue(&fleet.balancer, &device, &secret).await;
    let (phone_id, phone_secret) =
        paired_phone(&fleet.balancer, &device, &mut laptop, &token).await;
    let phone_url = format!("{lb}/phone/connect/{device}?phone_id={phone_id}");
    let holder = fleet.holder(1, 0).await.expect("the laptop on one node");

    drop(fleet.nodes[holder].take());
    let bound = Duration::from_secs(10);
    let mut laptop = socket_within(&laptop_url, &secret, bound).await;
    let elsewhere = fleet.holder(1, 0).await.expect("the laptop moved");
    assert_ne!(elsewhere, holder);

    // The node comes back; the ring names it for this device again.
    fleet.restart(holder).await;
    let mut first = socket(phone_url.clone(), &phone_secret).await.unwrap();
    let refused = actix_rt::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Got::Closed(code) = next(&mut first).await {
                return code;
            }
        }
    })
    .await;
    assert_eq!(
        refused,
        Ok(Some(close::DEVICE_OFFLINE)),
        "no laptop on the node it came back to, yet"
    );
    let moved = actix_rt::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Got::Closed(code) = next(&mut laptop).await {
                return code;
            }
        }
    })
    .await;
    assert_eq!(moved, Ok(Some(close::MOVED)), "the laptop was let go");
    let mut laptop = socket_within(&laptop_url, &secret, bound).await;
    let mut phone = socket_within(&phone_url, &phone_secret, bound).await;
    bytes_flow(&mut laptop, &mut phone, b"home again").await;
    assert_eq!(
        fleet.holder(1, 1).await,
        Some(holder),
        "both on the node that came back"
    );
}
