//! `loopsy transfer push|pull|list`: files to and from a daemon over its HTTP
//! API (the same routes peers use), streamed in constant memory with a progress
//! bar; pushes carry a SHA-256 the receiver checks before the file appears.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_lc_rs::digest;
use indicatif::{ProgressBar, ProgressStyle};
use loopsy_daemon::paths::DataDir;
use loopsy_daemon::{config, secrets};
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use crate::args::{PeerArgs, TransferCommand};
use crate::daemon_link;

/// Default port of a peer given without one.
const DEFAULT_PORT: u16 = 19532;
/// Transfers may take long; only a stalled connection should fail.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);
const READ_BUFFER: usize = 256 * 1024;

struct Target {
    api: String,
    key: String,
}

fn target(data_dir: &DataDir, peer: &PeerArgs) -> anyhow::Result<Target> {
    let api = match &peer.address {
        Some(address) => {
            let (host, port) = match address.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (
                    host.to_owned(),
                    port.parse()
                        .with_context(|| format!("bad port in '{address}'"))?,
                ),
                _ => (address.clone(), DEFAULT_PORT),
            };
            daemon_link::api_base(&host, port)
        }
        None => {
            let status = daemon_link::call(data_dir, method::STATUS, None)?;
            let listen = status["daemon"]["listen"].as_str().unwrap_or_default();
            let (host, port) = listen
                .rsplit_once(':')
                .context("the daemon did not say where it listens")?;
            daemon_link::api_base(
                host,
                port.parse().context("the daemon reported a bad port")?,
            )
        }
    };
    let key = match &peer.key {
        Some(key) => key.clone(),
        None => config::file_api_key(data_dir)?
            .context("no API key: run `loopsy init`, or pass --key")?,
    };
    Ok(Target { api, key })
}

pub(super) fn progress(size: u64, label: &str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_owned());
    bar
}

/// The error body of a refused transfer, as a sentence.
fn refusal(mut response: ureq::http::Response<ureq::Body>) -> anyhow::Error {
    let status = response.status();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    match serde_json::from_str::<Value>(&body) {
        Ok(value) if value["error"]["message"].is_string() => anyhow::anyhow!(
            "the daemon refused ({status}): {} (code {})",
            value["error"]["message"].as_str().unwrap_or_default(),
            value["error"]["code"]
        ),
        _ => anyhow::anyhow!("the daemon answered {status}: {body}"),
    }
}

pub(super) fn sha256_of(path: &Path, hidden: bool) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata()?.len();
    let bar = progress(size, "checksum", hidden);
    let mut reader = bar.wrap_read(file);
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0u8; READ_BUFFER];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
    }
    bar.finish_and_clear();
    Ok(secrets::hex(hash.finish().as_ref()))
}

fn form_text(boundary: &str, name: &str, value: &str) -> String {
    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

fn push(target: &Target, src: &Path, dest: &str, as_json: bool) -> anyhow::Result<Value> {
    let file = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let size = file.metadata()?.len();
    let checksum = sha256_of(src, as_json)?;
    let boundary = format!("loopsy-{}", secrets::hex(&secrets::random_bytes::<12>()?));
    let file_name: String = src
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(|c| *c != '"' && !c.is_control())
                .collect()
        })
        .unwrap_or_else(|| "file".to_owned());
    let head = format!(
        "{}{}--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        form_text(&boundary, "destPath", dest),
        form_text(&boundary, "checksum", &checksum),
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + size + tail.len() as u64;
    let bar = progress(size, "push", as_json);
    let body = io::Cursor::new(head.into_bytes())
        .chain(bar.wrap_read(file))
        .chain(io::Cursor::new(tail.into_bytes()));
    let response = daemon_link::http_agent(TRANSFER_TIMEOUT)
        .post(format!("{}/transfer/push", target.api))
        .header("Authorization", format!("Bearer {}", target.key))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("Content-Length", length.to_string())
        .send(ureq::SendBody::from_owned_reader(body))
        .context("the push failed")?;
    bar.finish_and_clear();
    if response.status() != 200 {
        return Err(refusal(response));
    }
    let mut response = response;
    let result: Value = serde_json::from_str(&response.body_mut().read_to_string()?)?;
    if result["checksum"].as_str() != Some(checksum.as_str()) {
        bail!("the receiver reports a different checksum than the file sent; try again");
    }
    Ok(result)
}

fn pull(target: &Target, src: &str, dest: &Path, as_json: bool) -> anyhow::Result<Value> {
    let mut response = daemon_link::http_agent(TRANSFER_TIMEOUT)
        .post(format!("{}/transfer/pull", target.api))
        .header("Authorization", format!("Bearer {}", target.key))
        .header("Content-Type", "application/json")
        .send(json!({ "sourcePath": src }).to_string().as_str())
        .context("the pull failed")?;
    if response.status() != 200 {
        return Err(refusal(response));
    }
    let size: u64 = response
        .headers()
        .get("x-loopsy-file-size")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    receive(src, dest, size, as_json, |write, _| {
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        let mut buffer = vec![0u8; READ_BUFFER];
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                return Ok(size);
            }
            write(&buffer[..n])?;
        }
    })
}

/// Writes a pulled file: `fill` hands over its bytes (and may set the progress
/// bar's length), which go to a temp file beside `dest` (or into `dest` if it is
/// a directory), and returns the size it should have; the file is renamed into
/// place only if exactly that many bytes arrived.
pub(super) fn receive(
    src: &str,
    dest: &Path,
    size_hint: u64,
    as_json: bool,
    fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> io::Result<()>, &ProgressBar) -> anyhow::Result<u64>,
) -> anyhow::Result<Value> {
    let name = Path::new(src)
        .file_name()
        .map(ToOwned::to_owned)
        .unwrap_or_else(|| "download".into());
    let dest: PathBuf = if dest.is_dir() {
        dest.join(name)
    } else {
        dest.to_owned()
    };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        ".{}.loopsy-{}.part",
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        secrets::hex(&secrets::random_bytes::<6>()?)
    ));
    let bar = progress(size_hint, "pull", as_json);
    let result = (|| -> anyhow::Result<u64> {
        let mut out =
            File::create(&temp).with_context(|| format!("cannot write in {}", dir.display()))?;
        let mut received = 0u64;
        let size = fill(
            &mut |piece: &[u8]| {
                out.write_all(piece)?;
                received += piece.len() as u64;
                bar.set_position(received);
                Ok(())
            },
            &bar,
        )?;
        if received != size {
            bail!("the connection ended after {received} of {size} bytes");
        }
        out.sync_all()?;
        Ok(received)
    })();
    bar.finish_and_clear();
    match result {
        Ok(received) => {
            std::fs::rename(&temp, &dest)
                .with_context(|| format!("cannot move the file to {}", dest.display()))?;
            Ok(json!({ "path": dest.display().to_string(), "size": received }))
        }
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

fn list(target: &Target, path: &str) -> anyhow::Result<Value> {
    let mut response = daemon_link::http_agent(Duration::from_secs(30))
        .post(format!("{}/transfer/list", target.api))
        .header("Authorization", format!("Bearer {}", target.key))
        .header("Content-Type", "application/json")
        .send(json!({ "path": path }).to_string().as_str())
        .context("the listing failed")?;
    if response.status() != 200 {
        return Err(refusal(response));
    }
    Ok(serde_json::from_str(
        &response.body_mut().read_to_string()?,
    )?)
}

pub fn run(data_dir: &DataDir, command: &TransferCommand) -> anyhow::Result<ExitCode> {
    match command {
        TransferCommand::Push { src, dest, peer } => {
            let result = match &peer.peer {
                Some(name) => super::transfer_peer::push(data_dir, name, src, dest, peer.json)?,
                None => push(&target(data_dir, peer)?, src, dest, peer.json)?,
            };
            if peer.json {
                println!("{result}");
            } else {
                println!(
                    "sent {} ({} bytes, sha256 {})",
                    result["path"].as_str().unwrap_or(dest),
                    result["size"],
                    result["checksum"].as_str().unwrap_or_default()
                );
            }
        }
        TransferCommand::Pull { src, dest, peer } => {
            let result = match &peer.peer {
                Some(name) => super::transfer_peer::pull(data_dir, name, src, dest, peer.json)?,
                None => pull(&target(data_dir, peer)?, src, dest, peer.json)?,
            };
            if peer.json {
                println!("{result}");
            } else {
                println!(
                    "received {} ({} bytes)",
                    result["path"].as_str().unwrap_or_default(),
                    result["size"]
                );
            }
        }
        TransferCommand::List { path, peer } => {
            let result = match &peer.peer {
                Some(name) => daemon_link::call_on(
                    data_dir,
                    Some(name),
                    method::TRANSFER_LIST,
                    Some(&json!({ "path": path })),
                )?,
                None => list(&target(data_dir, peer)?, path)?,
            };
            if peer.json {
                println!("{result}");
            } else {
                for file in result["files"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let kind = match file["type"].as_str() {
                        Some("directory") => "d",
                        Some("symlink") => "l",
                        _ => "-",
                    };
                    println!(
                        "{kind} {:>12} {}",
                        file["size"],
                        file["name"].as_str().unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
