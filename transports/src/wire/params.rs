//! Parameter shapes of requests, shared by the REST bodies (the original's JSON)
//! and the JSON-RPC params. Parsing checks shape only; limits are the services'.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Request;
use crate::error::ApiError;

/// Parses JSON-RPC params into `T`, with an error that names the method.
pub fn parse_params<T: DeserializeOwned>(
    method: &str,
    params: Option<&Value>,
) -> Result<T, ApiError> {
    let value = params.cloned().unwrap_or(Value::Object(Default::default()));
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("Invalid params for '{method}': {e}")))
}

/// Body of `PUT /api/v1/context/:key`.
#[derive(Debug, Default, Deserialize)]
pub struct ContextPutBody {
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub ttl: Option<Value>,
}

impl ContextPutBody {
    /// Checks the shape the original checks (a non-empty string value, a numeric ttl).
    pub fn into_request(
        self,
        key: String,
        from_node_id: Option<String>,
    ) -> Result<Request, ApiError> {
        let value = match self.value {
            Some(Value::String(s)) if !s.is_empty() => s,
            None | Some(Value::Null) => return Err(ApiError::bad_request("Missing value")),
            Some(Value::String(_)) => return Err(ApiError::bad_request("Missing value")),
            Some(_) => return Err(ApiError::bad_request("value must be a string")),
        };
        let ttl_secs = match self.ttl {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => return Err(ApiError::bad_request("ttl must be a number of seconds")),
        };
        Ok(Request::ContextSet {
            key,
            value,
            ttl_secs,
            from_node_id,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct ContextSetParams {
    pub key: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub ttl: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ContextKeyParams {
    pub key: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContextListParams {
    #[serde(default)]
    pub prefix: Option<String>,
}

/// Body of `POST /api/v1/execute` and `/execute/stream` (`ExecuteParams` in the original).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecParams {
    /// The program: an executable on PATH or a path. No shell is involved.
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    /// Added to the child's environment.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// Milliseconds; `execution.defaultTimeout` when absent.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Accepted for compatibility; the route decides whether output streams.
    #[serde(default)]
    pub stream: Option<bool>,
}

impl ExecParams {
    /// The original's schema checks: a non-empty command, a positive timeout.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.command.trim().is_empty() {
            return Err(ApiError::bad_request("command must be a non-empty string"));
        }
        if self.command.contains('\0') || self.args.iter().any(|a| a.contains('\0')) {
            return Err(ApiError::bad_request(
                "command and args must not contain NUL bytes",
            ));
        }
        if let Some(timeout) = self.timeout
            && (!timeout.is_finite() || timeout <= 0.0)
        {
            return Err(ApiError::bad_request(
                "timeout must be a positive number of milliseconds",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobIdParams {
    pub job_id: String,
}

/// `{"path": …}` of `transfer/list`.
#[derive(Debug, Deserialize)]
pub struct PathParams {
    pub path: String,
}

/// `{"sourcePath": …}` of `transfer/pull` (a `destPath` is accepted and ignored, as the original).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullParams {
    pub source_path: String,
}

/// Params of `transfer.push` on the Unix socket (the bytes follow as binary frames).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushParams {
    pub dest_path: String,
    #[serde(default)]
    pub checksum: Option<String>,
}

/// Params of `session.start`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStartParams {
    /// `shell` (default), `claude`, `codex`, `gemini`, `opencode`.
    #[serde(default)]
    pub agent: Option<String>,
    /// A program to run instead of an agent (resolved on PATH, no shell).
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub cols: Option<u16>,
    #[serde(default)]
    pub rows: Option<u16>,
    #[serde(default)]
    pub name: Option<String>,
    /// Typed into the session once it starts.
    #[serde(default)]
    pub initial_input: Option<String>,
    /// Start one of the configured custom commands (its command, args and cwd).
    #[serde(default)]
    pub custom_command_id: Option<String>,
    /// Add the agent's own "act without asking" flag; only for principals the owner granted it to.
    #[serde(default)]
    pub auto_approve: Option<bool>,
}

/// A custom command as `commands.add` takes it (`commands.update` adds `id`, all optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomCommandParams {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
}

/// `{"id": …}`: a session by id, unique name or unique id prefix.
#[derive(Debug, Deserialize)]
pub struct SessionTargetParams {
    pub id: String,
}

/// `session.rename`: a new name, or none to clear it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRenameParams {
    pub id: String,
    pub name: Option<String>,
}

/// `session.read`: output from a byte offset.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionReadParams {
    pub id: String,
    #[serde(default)]
    pub from_offset: Option<u64>,
    #[serde(default)]
    pub max_bytes: Option<u64>,
    #[serde(default)]
    pub strip_ansi: bool,
}

/// `session.wait`: a regex over the output after an offset, or the exit.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionWaitParams {
    pub id: String,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub from_offset: Option<u64>,
    /// Seconds; 60 when absent.
    #[serde(default)]
    pub timeout_sec: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct SessionInputParams {
    pub id: String,
    pub data: String,
}

#[derive(Debug, Deserialize)]
pub struct SessionResizeParams {
    pub id: String,
    pub cols: u16,
    pub rows: u16,
}

#[derive(Debug, Deserialize)]
pub struct SessionSignalParams {
    pub id: String,
    #[serde(default)]
    pub signal: Option<String>,
}

/// Params of `session.attach` on the Unix socket.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttachParams {
    pub id: String,
    #[serde(default)]
    pub from_offset: Option<u64>,
    #[serde(default)]
    pub cols: Option<u16>,
    #[serde(default)]
    pub rows: Option<u16>,
}

/// Params of `grants.autoApprove`.
#[derive(Debug, Deserialize)]
pub struct GrantParams {
    /// A peer's name from `auth.allowedKeys`.
    pub peer: String,
    pub allow: bool,
}

/// Params of `mobile.pair`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MobilePairParams {
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// Where the phone opens the app for this pairing (`loopsy up --lan`:
    /// the laptop itself); otherwise `relay.appOrigin`, else the relay's.
    #[serde(default)]
    pub app_url: Option<String>,
}

/// Params of `mobile.pairStatus`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairStatusParams {
    pub token_id: String,
}

/// Params of `phones.revoke`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneParams {
    pub phone_id: String,
}

/// Params of `relay.configure`.
#[derive(Debug, Deserialize)]
pub struct RelayConfigureParams {
    pub url: String,
    /// Register anew even when already registered at this URL.
    #[serde(default)]
    pub force: bool,
    /// PEM file of extra CA certificates for a relay with a private CA.
    #[serde(default, rename = "caFile")]
    pub ca_file: Option<String>,
}
