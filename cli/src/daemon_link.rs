//! How one-shot commands find and talk to the daemon of a data dir.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use loopsy_daemon::instance;
use loopsy_daemon::paths::DataDir;
use loopsy_transports::client::{ClientError, UnixRpcClient};
use serde_json::Value;

/// How long a one-shot call waits for the daemon's answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub fn data_dir(flag: Option<&Path>) -> anyhow::Result<DataDir> {
    let root = match flag {
        Some(dir) => {
            std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?
        }
        None => DataDir::default_root().context(
            "cannot find your home directory; pass --data-dir DIR or set LOOPSY_DATA_DIR",
        )?,
    };
    Ok(DataDir::new(root))
}

/// Whether a daemon holds this data dir, and its pid if known.
pub fn running_pid(data_dir: &DataDir) -> Option<Option<u32>> {
    instance::is_locked(data_dir).then(|| instance::read_pid(data_dir))
}

/// One call over the Unix socket.
pub fn call(
    data_dir: &DataDir,
    method: &str,
    params: Option<&Value>,
) -> Result<Value, ClientError> {
    UnixRpcClient::connect(&data_dir.socket(), CALL_TIMEOUT)?.call(method, params)
}

/// One call, on this machine's daemon or, with `peer`, on a paired peer
/// through it (`peers.call`): the CLI never holds a peer's credential.
pub fn call_on(
    data_dir: &DataDir,
    peer: Option<&str>,
    method: &str,
    params: Option<&Value>,
) -> Result<Value, ClientError> {
    match peer {
        None => call(data_dir, method, params),
        Some(peer) => {
            let through = serde_json::json!({"peer": peer, "method": method, "params": params});
            call(
                data_dir,
                loopsy_transports::wire::method::PEERS_CALL,
                Some(&through),
            )
        }
    }
}

/// Base URL of the daemon's REST API as seen from this machine.
pub fn api_base(host: &str, port: u16) -> String {
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1".to_owned(),
        "::" => "[::1]".to_owned(),
        v6 if v6.contains(':') && !v6.starts_with('[') => format!("[{v6}]"),
        other => other.to_owned(),
    };
    format!("http://{host}:{port}/api/v1")
}

/// An HTTP client that reports statuses instead of failing on them.
pub fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The node id in a successful `/health` answer, if there is one.
pub fn health_node_id(agent: &ureq::Agent, url: &str) -> Option<String> {
    let mut response = agent.get(url).call().ok()?;
    if response.status() != 200 {
        return None;
    }
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
    body.get("nodeId")?.as_str().map(str::to_owned)
}

/// Waits between polls. The CLI is a plain blocking program, not actor code.
#[expect(
    clippy::disallowed_methods,
    reason = "the CLI blocks by design; actors must not"
)]
pub fn pause(interval: Duration) {
    std::thread::sleep(interval);
}
