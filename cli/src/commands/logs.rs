//! `loopsy logs`: the audit log, as text or raw JSON lines, optionally followed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use loopsy_daemon::paths::DataDir;
use serde_json::Value;

use crate::args::LogsArgs;

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

fn render(line: &str, as_json: bool) -> String {
    if as_json {
        return line.to_owned();
    }
    let Ok(record) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    let field = |name: &str| {
        record
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let status = record.get("status").and_then(Value::as_u64).unwrap_or(0);
    let duration = record
        .get("durationMs")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let remote = record
        .get("remote")
        .and_then(Value::as_str)
        .map(|r| format!(" from {r}"))
        .unwrap_or_default();
    format!(
        "{} {status} {:<12} {:<10} {:<16} {:<8} {duration:.2}ms{remote}",
        field("ts"),
        field("outcome"),
        field("op"),
        field("principal"),
        field("transport"),
    )
}

pub fn run(data_dir: &DataDir, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let path = data_dir.audit_log();
    let mut position = 0;
    match File::open(&path) {
        Ok(file) => {
            let mut text = String::new();
            BufReader::new(&file)
                .read_to_string(&mut text)
                .with_context(|| format!("cannot read {}", path.display()))?;
            position = text.len() as u64;
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(args.lines)..] {
                println!("{}", render(line, args.json));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !args.follow {
                eprintln!(
                    "no audit log yet at {} (it appears once the daemon answers a request)",
                    path.display()
                );
            }
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    if args.follow {
        follow(&path, position, args.json)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints lines appended after `position`; starts over when the file is rotated.
fn follow(path: &std::path::Path, mut position: u64, as_json: bool) -> anyhow::Result<()> {
    let mut inode = std::fs::metadata(path).map(|m| m.ino()).ok();
    let mut pending = String::new();
    loop {
        if let Ok(meta) = std::fs::metadata(path) {
            if inode != Some(meta.ino()) || meta.len() < position {
                inode = Some(meta.ino());
                position = 0;
                pending.clear();
            }
            if meta.len() > position {
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(position))?;
                let mut reader = BufReader::new(file);
                let mut line = String::new();
                while reader.read_line(&mut line)? > 0 {
                    position += line.len() as u64;
                    pending.push_str(&line);
                    line.clear();
                    if pending.ends_with('\n') {
                        println!("{}", render(pending.trim_end(), as_json));
                        pending.clear();
                    }
                }
            }
        }
        crate::daemon_link::pause(FOLLOW_POLL);
    }
}
