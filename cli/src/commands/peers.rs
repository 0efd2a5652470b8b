//! `loopsy peers list|add|invite|remove`: the peers this daemon knows. Pairing
//! itself is `pair`; a machine that runs the original TypeScript Loopsy is
//! added with a key copied from it, and gets a key minted here to call us.

use std::process::ExitCode;

use anyhow::{Context, bail};
use loopsy_daemon::paths::DataDir;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use crate::args::{InviteArgs, PeersAddArgs, PeersCommand};
use crate::daemon_link;

pub fn run(data_dir: &DataDir, command: &PeersCommand) -> anyhow::Result<ExitCode> {
    match command {
        PeersCommand::Add(args) => add(data_dir, args),
        PeersCommand::Invite(args) => invite(data_dir, args),
        PeersCommand::List(flag) => list(data_dir, flag.json),
        PeersCommand::Remove { peer } => {
            let removed =
                daemon_link::call(data_dir, method::PEERS_REMOVE, Some(&json!({"peer": peer})))?;
            println!(
                "Removed {}: {}",
                removed["removed"].as_str().unwrap_or(peer),
                removed["note"].as_str().unwrap_or("")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn add(data_dir: &DataDir, args: &PeersAddArgs) -> anyhow::Result<ExitCode> {
    let Some(address) = &args.pair.address else {
        bail!(
            "name the other machine: `loopsy peers add HOST[:PORT]` (its owner runs `loopsy pair` there first)"
        );
    };
    let Some(key_file) = &args.key_file else {
        return super::pair::join(data_dir, &args.pair, address);
    };
    let key = std::fs::read_to_string(key_file).with_context(|| {
        format!(
            "cannot read the key file {}; put the TypeScript Loopsy's key in it (`loopsy key show` there)",
            key_file.display()
        )
    })?;
    let added = daemon_link::call(
        data_dir,
        method::PEERS_TYPESCRIPT_ADD,
        Some(&json!({"address": address, "key": key.trim(), "plainHttp": args.plain_http})),
    )?;
    if args.output.json {
        println!("{added}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Added {} (TypeScript Loopsy {}); this machine may: {}",
        added["hostname"].as_str().unwrap_or(address),
        added["version"].as_str().unwrap_or("?"),
        names(&added["weMay"])
    );
    if args.plain_http {
        println!(
            "It is reached over plain HTTP: its key and all traffic cross the network unencrypted."
        );
    } else {
        println!(
            "Its certificate is pinned: {}",
            added["certFingerprint"].as_str().unwrap_or("?")
        );
    }
    println!(
        "For it to call this machine, mint it a key: `loopsy peers invite --for-typescript NAME`."
    );
    Ok(ExitCode::SUCCESS)
}

fn invite(data_dir: &DataDir, args: &InviteArgs) -> anyhow::Result<ExitCode> {
    let minted = daemon_link::call(
        data_dir,
        method::PEERS_TYPESCRIPT_INVITE,
        Some(&json!({"name": args.for_typescript, "grants": args.grant})),
    )?;
    let key = minted["key"].as_str().unwrap_or_default();
    if let Some(out) = &args.out {
        loopsy_daemon::durable::write_private_atomic(out, format!("{key}\n").as_bytes())
            .with_context(|| {
                format!("the key works, but {} could not be written", out.display())
            })?;
    }
    if args.output.json {
        println!("{minted}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "A key for '{}', which may: {}",
        args.for_typescript,
        names(&minted["theyMay"])
    );
    println!("\n    {key}\n");
    println!("This is the only time it is shown (only its digest is kept here).");
    println!("On that machine, add to ~/.loopsy/config.yaml and restart its daemon:\n");
    for line in minted["allowedKeysEntry"]
        .as_str()
        .unwrap_or_default()
        .lines()
    {
        println!("    {line}");
    }
    println!(
        "\nIt then calls this machine with the key, and accepts it from this machine too:\n\
         `loopsy peers add THAT_HOST --key-file FILE` with the key in FILE{}.",
        match &args.out {
            Some(out) => format!(" (written to {}, mode 0600)", out.display()),
            None => String::new(),
        }
    );
    println!("`loopsy peers remove {}` revokes it.", args.for_typescript);
    Ok(ExitCode::SUCCESS)
}

fn names(value: &Value) -> String {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

fn list(data_dir: &DataDir, as_json: bool) -> anyhow::Result<ExitCode> {
    let listed = daemon_link::call(data_dir, method::PEERS_LIST, None)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(ExitCode::SUCCESS);
    }
    let peers = listed["peers"].as_array().cloned().unwrap_or_default();
    if peers.is_empty() {
        println!(
            "No paired peers. Pair one with `loopsy pair` here and `loopsy pair <this host>` there."
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<10} {:<8} {:<22} {:<10} {:<28} WE MAY THERE",
        "PEER", "NODE", "STATUS", "ADDRESS", "VERSION", "IT MAY HERE"
    );
    for p in peers {
        let address = match p["address"].as_str() {
            Some(address) => format!("{address}:{}", p["port"]),
            None => "-".to_owned(),
        };
        let node = p["nodeId"].as_str().map_or("-", |n| {
            if n.starts_with("typescript-") {
                "typescript"
            } else {
                n.get(..8).unwrap_or(n)
            }
        });
        println!(
            "{:<20} {:<10} {:<8} {:<22} {:<10} {:<28} {}",
            p["hostname"].as_str().or(p["name"].as_str()).unwrap_or("?"),
            node,
            p["status"].as_str().unwrap_or("?"),
            address,
            p["version"].as_str().unwrap_or("-"),
            names(&p["theyMay"]),
            names(&p["weMay"]),
        );
    }
    Ok(ExitCode::SUCCESS)
}
