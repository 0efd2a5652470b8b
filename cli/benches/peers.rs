//! `just bench`, the LAN-peer part, on loopback, each figure beside a baseline
//! from the same run (interleaved blocks, as `support::interleaved` takes them):
//! - `execute` of `true` on a peer through the local daemon (`peers.call` on
//!   the Unix socket → PeerLink → the peer's TLS port) against the same call
//!   made straight to the peer's TLS port with the same credential: the
//!   difference is what the local hop adds;
//! - keystroke echo in a shell on the peer (through the local daemon and a
//!   tunnel) against a shell session on this machine, back to back and at a
//!   typing cadence (80–150 ms between keys);
//! - a file pushed to the peer through the local daemon against the same push
//!   made by a `PeerLink` in this process (MB/s, checksums checked on arrival).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loopsy_daemon::peers::client::PeerClient;
use loopsy_transports::peer_tls::Trust;
use serde_json::{Value, json};
use support::pairing::{client, two_paired_daemons};
use support::*;

/// The certificate fingerprint and the credential `from` calls `to` with.
fn direct_client(from: &Path, to: &Path, to_port: u16) -> PeerClient {
    let status = client(to).call("status", None).unwrap();
    let fp = status["daemon"]["certFingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let node = status["nodeId"].as_str().unwrap().to_owned();
    let db = rusqlite::Connection::open(from.join("loopsy.db")).unwrap();
    let credential: String = db
        .query_row(
            "SELECT outbound_secret FROM peers WHERE node_id = ?1",
            [&node],
            |r| r.get(0),
        )
        .unwrap();
    PeerClient::new(
        "direct",
        "127.0.0.1",
        to_port + 1,
        Trust::Pinned(fp),
        Some(credential),
    )
    .unwrap()
}

fn report(label: &str, subject: &[Duration], baseline: &[Duration]) {
    let (s50, s99) = (percentile(subject, 0.50), percentile(subject, 0.99));
    let (b50, b99) = (percentile(baseline, 0.50), percentile(baseline, 0.99));
    println!(
        "{label}: p50 {:.3} ms / p99 {:.3} ms through the local daemon, p50 {:.3} ms / p99 {:.3} ms straight to the peer; \
         added p50 {:.3} ms ({:.2}x), p99 {:.2}x ({} rounds each)",
        ms(s50),
        ms(s99),
        ms(b50),
        ms(b99),
        ms(s50.saturating_sub(b50)),
        ms(s50) / ms(b50),
        ms(s99) / ms(b99),
        subject.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pair = two_paired_daemons(tmp.path());
    let (mira, kai_data, mira_data, mira_node) = (
        &pair.mira,
        &pair.kai_data,
        &pair.mira_data,
        pair.mira_node.clone(),
    );
    remember_peer_dir(mira_data);
    println!(
        "LAN peers on loopback ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let system = actix_rt::System::new();
    let direct = Rc::new(direct_client(kai_data, mira_data, mira.port));
    let mut through = client(kai_data);
    let call = json!({"peer": mira_node, "method": "exec.run", "params": {"command": "true"}});
    let [subject, baseline] = interleaved(
        500,
        [
            &mut || {
                let t = Instant::now();
                let result = through.call("peers.call", Some(&call)).unwrap();
                assert_eq!(result["exitCode"], 0);
                t.elapsed()
            },
            &mut || {
                let direct = direct.clone();
                let t = Instant::now();
                let result = system
                    .block_on(async move {
                        direct
                            .call(
                                "exec.run",
                                json!({"command": "true"}),
                                Duration::from_secs(30),
                            )
                            .await
                    })
                    .unwrap();
                assert_eq!(result["exitCode"], 0);
                t.elapsed()
            },
        ],
    );
    report("execute `true` on a peer", &subject, &baseline);
    bench_echo(kai_data, &mira_node);
    bench_transfer(&system, kai_data, &mira_node);
}

/// A connection to `socket` tunnelled to `peer` (what `shell --peer` opens).
fn tunnelled(socket: &Path, peer: &str) -> std::os::unix::net::UnixStream {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    rpc(
        &mut stream,
        9,
        "peers.tunnel",
        &format!(r#"{{"peer":"{peer}"}}"#),
    );
    let (_, answer) = read_any(&mut stream);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert!(answer["result"].is_object(), "{answer}");
    stream
}

/// Keystroke echo in a shell on the peer, through the local daemon and a
/// tunnel, against a shell session on this machine; back to back, then at a
/// person's typing cadence.
fn bench_echo(kai_data: &Path, mira_node: &str) {
    use std::io::BufReader;
    let socket = kai_data.join("loopsyd.sock");
    let (_, local) = session_with_client(&socket);
    let mut control = tunnelled(&socket, mira_node);
    let id = start_session(&mut control, r#"{"command":"sh","env":{"PS1":"$ "}}"#);
    let mut remote = tunnelled(&socket, mira_node);
    rpc(
        &mut remote,
        1,
        "session.attach",
        &format!(r#"{{"id":"{id}"}}"#),
    );
    let (mut local_typing, mut remote_typing) =
        (local.try_clone().unwrap(), remote.try_clone().unwrap());
    let mut local = BufReader::with_capacity(256 * 1024, local);
    let mut remote = BufReader::with_capacity(256 * 1024, remote);
    std::thread::sleep(Duration::from_millis(300));
    prepare_session_echo(&mut local_typing, &mut local);
    prepare_session_echo(&mut remote_typing, &mut remote);
    let mut remote_round = || session_echo_round(&mut remote_typing, &mut remote);
    let mut local_round = || session_echo_round(&mut local_typing, &mut local);
    let back_to_back = interleaved(500, [&mut remote_round, &mut local_round]);
    report_echo("back to back", &back_to_back);
    let typed = interleaved_at_cadence(40, [&mut remote_round, &mut local_round]);
    report_echo("at typing cadence (80-150 ms apart)", &typed);
}

/// One line of keystroke echo: the peer's shell against the shell here.
fn report_echo(how: &str, [subject, baseline]: &[Vec<Duration>; 2]) {
    let (s50, s99, b50, b99) = (
        percentile(subject, 0.50),
        percentile(subject, 0.99),
        percentile(baseline, 0.50),
        percentile(baseline, 0.99),
    );
    println!(
        "keystroke echo, {how}: p50 {:.3} ms / p99 {:.3} ms in a shell on the peer (tunnel), p50 {:.3} ms / p99 {:.3} ms in a shell here; {:.2}x p50, {:.2}x p99 ({} rounds each)",
        ms(s50),
        ms(s99),
        ms(b50),
        ms(b99),
        ms(s50) / ms(b50),
        ms(s99) / ms(b99),
        subject.len()
    );
}

/// Pushes `file` (`size` bytes, SHA-256 `checksum`) to `dest` on the peer
/// through `link` (the PeerLink code, in this process), reading it in pieces.
async fn push_direct(
    link: &actix::Addr<loopsy_daemon::peers::link::PeerLink>,
    file: &Path,
    dest: &str,
    checksum: &str,
) -> Value {
    use tokio::io::AsyncReadExt;
    let (pieces, body) = tokio::sync::mpsc::channel(16);
    let path = file.to_owned();
    actix_rt::spawn(async move {
        let mut file = tokio::fs::File::open(path).await.unwrap();
        loop {
            let mut piece = vec![0u8; 256 * 1024];
            let n = file.read(&mut piece).await.unwrap();
            if n == 0 {
                break;
            }
            piece.truncate(n);
            if pieces.send(Ok(bytes::Bytes::from(piece))).await.is_err() {
                break;
            }
        }
    });
    link.send(loopsy_daemon::peers::link_push::PeerPush {
        dest_path: dest.to_owned(),
        checksum: Some(checksum.to_owned()),
        body: loopsy_transports::wire::UploadBody(body),
        idle: Duration::from_secs(30),
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e:?}; the peer's audit log ends: {}", audit_tail()))
}

fn audit_tail() -> String {
    std::fs::read_to_string(std::env::temp_dir().join("loopsy-bench-mira"))
        .map(|d| {
            let text =
                std::fs::read_to_string(Path::new(&d).join("logs/audit.jsonl")).unwrap_or_default();
            text.lines().rev().take(3).collect::<Vec<_>>().join("\n")
        })
        .unwrap_or_default()
}

/// Where `audit_tail` finds the peer's audit log.
fn remember_peer_dir(mira: &Path) {
    let _ = std::fs::write(
        std::env::temp_dir().join("loopsy-bench-mira"),
        mira.display().to_string(),
    );
}

fn transfer_mib() -> u64 {
    std::env::var("LOOPSY_BENCH_PEER_TRANSFER_MIB")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024)
}

/// The push figures: 5 interleaved samples of each, MB/s.
fn bench_transfer(system: &actix_rt::SystemRunner, kai_data: &Path, mira_node: &str) {
    use actix::Actor;
    let mib = transfer_mib();
    let file = kai_data.parent().unwrap().join("payload.bin");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let block: Vec<u8> = (0..1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for round in 0..mib {
            let mut block = block.clone();
            block[0] = round as u8;
            std::io::Write::write_all(&mut out, &block).unwrap();
        }
    }
    let size = mib * 1024 * 1024;
    let checksum = {
        use std::io::Read;
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut reader = std::fs::File::open(&file).unwrap();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            hash.update(&buffer[..n]);
        }
        loopsy_transports::secrets::hex(hash.finish().as_ref())
    };
    let record =
        loopsy_daemon::peers::store::PeerBook::open(&loopsy_daemon::paths::DataDir::new(kai_data))
            .unwrap()
            .get(mira_node)
            .unwrap()
            .unwrap();
    let link =
        system.block_on(async move { loopsy_daemon::peers::link::PeerLink::new(record).start() });
    let mut through = client(kai_data);
    let params = json!({"peer": mira_node, "destPath": "~/through.bin", "checksum": checksum});
    let (mut subject, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let answer = through
            .upload(
                "peers.transfer.push",
                Some(&params),
                std::fs::File::open(&file).unwrap(),
                |_| {},
            )
            .unwrap();
        subject.push(t.elapsed());
        assert_eq!(answer["size"], size, "{answer}");
        let t = Instant::now();
        let answer = system.block_on(push_direct(&link, &file, "~/direct.bin", &checksum));
        baseline.push(t.elapsed());
        assert_eq!(answer["size"], size, "{answer}");
    }
    subject.sort();
    baseline.sort();
    let rate = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();
    println!(
        "push {mib} MiB to a peer: {:.0} MB/s through the local daemon (min {:.0}, max {:.0}), {:.0} MB/s straight from a PeerLink (min {:.0}, max {:.0}); {:.2}x (median of 5 interleaved, checksums checked by the peer)",
        rate(subject[2]),
        rate(subject[4]),
        rate(subject[0]),
        rate(baseline[2]),
        rate(baseline[4]),
        rate(baseline[0]),
        rate(subject[2]) / rate(baseline[2]),
    );
    let _ = std::fs::remove_file(&file);
}
