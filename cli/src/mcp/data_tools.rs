//! The tools over data: peers, the shared context (here, on one peer, or on
//! every online peer), and files to and from a peer.

use loopsy_transports::error::code;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use super::args::Args;
use super::daemon::CALL_TIMEOUT;
use super::{Answer, LoopsyMcp, ToolError};

/// The most a context TTL may be, as the daemon bounds it (30 days).
const MAX_TTL: u64 = 30 * 24 * 3600;

fn context_set_params(args: &Args) -> Result<Value, ToolError> {
    let mut params = json!({"key": args.str("key")?, "value": args.str("value")?});
    if let Some(ttl) = args.opt_u64("ttl_seconds", MAX_TTL)? {
        params["ttl"] = json!(ttl);
    }
    Ok(params)
}

impl LoopsyMcp {
    pub(super) async fn list_peers(&self, _: &Args) -> Result<Answer, ToolError> {
        let listed = self.daemon.call(method::PEERS_LIST, json!({})).await?;
        let peers = listed["peers"].as_array().cloned().unwrap_or_default();
        let online = peers.iter().filter(|p| p["status"] == "online").count();
        let line = format!("{} peers known, {online} online", peers.len());
        Ok(Answer::new(line, json!({ "peers": peers })))
    }

    pub(super) async fn peer_status(&self, args: &Args) -> Result<Answer, ToolError> {
        let peer = args.str("peer")?;
        let status = self
            .daemon
            .on(Some(peer), method::STATUS, json!({}), CALL_TIMEOUT)
            .await?;
        let line = format!(
            "{peer} is up: {} {} on {}",
            status["hostname"].as_str().unwrap_or(peer),
            status["version"].as_str().unwrap_or("?"),
            status["platform"].as_str().unwrap_or("?")
        );
        Ok(Answer::new(line, json!({"peer": peer, "status": status})))
    }

    pub(super) async fn context_set(&self, args: &Args) -> Result<Answer, ToolError> {
        let params = context_set_params(args)?;
        let key = args.str("key")?;
        let entry = self
            .daemon
            .on(args.peer()?, method::CONTEXT_SET, params, CALL_TIMEOUT)
            .await?;
        let line = format!("stored {key}{}", where_(args.peer()?));
        Ok(Answer::new(line, json!({"key": key, "entry": entry})))
    }

    pub(super) async fn context_get(&self, args: &Args) -> Result<Answer, ToolError> {
        let key = args.str("key")?;
        let got = self
            .daemon
            .on(
                args.peer()?,
                method::CONTEXT_GET,
                json!({"key": key}),
                CALL_TIMEOUT,
            )
            .await;
        match got {
            Ok(entry) => {
                let line = format!("{key} = {}", entry["value"]);
                Ok(Answer::new(
                    line,
                    json!({"key": key, "found": true, "value": entry["value"], "entry": entry}),
                ))
            }
            // Absent is an answer, not a failure.
            Err(error) if error.has_code(code::CONTEXT_NOT_FOUND) => Ok(Answer::new(
                format!("{key} is not set{}", where_(args.peer()?)),
                json!({"key": key, "found": false, "value": null, "entry": null}),
            )),
            Err(other) => Err(other),
        }
    }

    pub(super) async fn context_list(&self, args: &Args) -> Result<Answer, ToolError> {
        let mut params = json!({});
        if let Some(prefix) = args.opt_str("prefix")? {
            params["prefix"] = json!(prefix);
        }
        let listed = self
            .daemon
            .on(args.peer()?, method::CONTEXT_LIST, params, CALL_TIMEOUT)
            .await?;
        let entries = listed["entries"].as_array().cloned().unwrap_or_default();
        let line = format!("{} entries{}", entries.len(), where_(args.peer()?));
        Ok(Answer::new(line, json!({ "entries": entries })))
    }

    pub(super) async fn context_delete(&self, args: &Args) -> Result<Answer, ToolError> {
        let key = args.str("key")?;
        self.daemon
            .on(
                args.peer()?,
                method::CONTEXT_DELETE,
                json!({"key": key}),
                CALL_TIMEOUT,
            )
            .await?;
        let line = format!("deleted {key}{}", where_(args.peer()?));
        Ok(Answer::new(line, json!({"key": key, "deleted": true})))
    }

    /// Written here, then on every paired peer online now, each answering for itself.
    pub(super) async fn broadcast_context(&self, args: &Args) -> Result<Answer, ToolError> {
        let params = context_set_params(args)?;
        let key = args.str("key")?;
        self.daemon
            .call(method::CONTEXT_SET, params.clone())
            .await?;
        let listed = self.daemon.call(method::PEERS_LIST, json!({})).await?;
        let targets: Vec<String> = listed["peers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|p| p["paired"] == true && p["status"] == "online")
            .filter_map(|p| p["nodeId"].as_str().map(str::to_owned))
            .collect();
        let calls = targets.iter().map(|peer| {
            let params = params.clone();
            async move {
                let result = self
                    .daemon
                    .on(Some(peer), method::CONTEXT_SET, params, CALL_TIMEOUT)
                    .await;
                match result {
                    Ok(_) => json!({"peer": peer, "ok": true}),
                    Err(ToolError(error)) => json!({"peer": peer, "ok": false, "error": error}),
                }
            }
        });
        let results = futures_util::future::join_all(calls).await;
        let ok = results.iter().filter(|r| r["ok"] == true).count();
        let line = format!(
            "stored {key} here and on {ok} of {} online peers",
            results.len()
        );
        Ok(Answer::new(
            line,
            json!({"key": key, "local": true, "peers": results}),
        ))
    }

    pub(super) async fn list_remote_files(&self, args: &Args) -> Result<Answer, ToolError> {
        let peer = args.str("peer")?;
        let path = args.str("path")?;
        let listed = self
            .daemon
            .on(
                Some(peer),
                method::TRANSFER_LIST,
                json!({"path": path}),
                CALL_TIMEOUT,
            )
            .await?;
        let files = listed["files"].as_array().cloned().unwrap_or_default();
        let line = format!("{} entries in {path} on {peer}", files.len());
        Ok(Answer::new(
            line,
            json!({"peer": peer, "path": path, "files": files}),
        ))
    }

    /// Streamed through this daemon (`peers.transfer.push|pull`), never held whole.
    pub(super) async fn transfer_file(&self, args: &Args) -> Result<Answer, ToolError> {
        let direction = args.str("direction")?.to_owned();
        let peer = args.str("peer")?.to_owned();
        let source = args.str("source_path")?.to_owned();
        let dest = args.str("dest_path")?.to_owned();
        self.require_daemon()?;
        let data_dir = self.data_dir.clone();
        let moved = tokio::task::spawn_blocking(move || match direction.as_str() {
            "push" => {
                let source = loopsy_daemon::paths::expand_home(&source);
                crate::commands::transfer_peer::push(&data_dir, &peer, &source, &dest, true)
                    .map(|r| json!({"direction": "push", "peer": peer, "size": r["size"], "sha256": r["checksum"], "path": dest}))
            }
            "pull" => {
                let dest = loopsy_daemon::paths::expand_home(&dest);
                crate::commands::transfer_peer::pull(&data_dir, &peer, &source, &dest, true).map(
                    |r| json!({"direction": "pull", "peer": peer, "size": r["size"], "path": r["path"].as_str().map_or_else(|| dest.display().to_string(), str::to_owned)}),
                )
            }
            other => Err(anyhow::anyhow!(
                "`direction` is push or pull, not {other:?}"
            )),
        })
        .await
        .map_err(|e| ToolError(format!("the transfer did not finish ({e})")))?
        .map_err(|e| match e.downcast::<loopsy_transports::client::ClientError>() {
            Ok(refused) => ToolError::from(refused),
            Err(other) => ToolError(format!("{other:#}")),
        })?;
        let line = format!(
            "{} {} bytes {} {}",
            if moved["direction"] == "push" {
                "pushed"
            } else {
                "pulled"
            },
            moved["size"],
            if moved["direction"] == "push" {
                "to"
            } else {
                "from"
            },
            moved["peer"].as_str().unwrap_or_default()
        );
        Ok(Answer::new(line, moved))
    }
}

fn where_(peer: Option<&str>) -> String {
    peer.map(|p| format!(" on {p}")).unwrap_or_default()
}
