//! `loopsy transfer push|pull --peer P`: files to and from a paired peer through
//! this machine's daemon (`peers.transfer.push|pull` over the Unix socket, in
//! binary frames), which relays them over pinned TLS in constant memory. The
//! CLI never holds the peer's credential.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};
use loopsy_daemon::paths::DataDir;
use loopsy_transports::client::UnixRpcClient;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use super::transfer::{progress, receive, sha256_of};
use crate::daemon_link;

pub fn push(
    data_dir: &DataDir,
    peer: &str,
    src: &Path,
    dest: &str,
    as_json: bool,
) -> anyhow::Result<Value> {
    let file = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let size = file.metadata()?.len();
    let checksum = sha256_of(src, as_json)?;
    let bar = progress(size, "push", as_json);
    let mut client = UnixRpcClient::connect(&data_dir.socket(), daemon_link::CALL_TIMEOUT)?
        .without_read_timeout()?;
    let params = json!({"peer": peer, "destPath": dest, "checksum": checksum});
    let result = client.upload(method::PEERS_TRANSFER_PUSH, Some(&params), file, |sent| {
        bar.set_position(sent);
    });
    bar.finish_and_clear();
    let result = result?;
    if result["checksum"].as_str() != Some(checksum.as_str()) {
        bail!("the peer reports a different checksum than the file sent; try again");
    }
    Ok(result)
}

pub fn pull(
    data_dir: &DataDir,
    peer: &str,
    src: &str,
    dest: &Path,
    as_json: bool,
) -> anyhow::Result<Value> {
    let mut client = UnixRpcClient::connect(&data_dir.socket(), daemon_link::CALL_TIMEOUT)?
        .without_read_timeout()?;
    let params = json!({"peer": peer, "sourcePath": src});
    receive(src, dest, 0, as_json, |write, bar| {
        // The size comes first, in the stream's `start` event; the bytes follow,
        // then the answer with the size and SHA-256 the daemon received.
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let answer = client.call_receiving(
            method::PEERS_TRANSFER_PULL,
            Some(&params),
            |event| {
                if let Some(size) = event["size"].as_u64() {
                    bar.set_length(size);
                }
            },
            |piece| {
                hash.update(piece);
                write(piece)
            },
        )?;
        let sent = answer["sha256"].as_str().unwrap_or_default();
        if sent != loopsy_daemon::secrets::hex(hash.finish().as_ref()) {
            bail!("the bytes received differ from what the daemon relayed; try again");
        }
        answer["size"]
            .as_u64()
            .context("the daemon's answer has no size")
    })
}
