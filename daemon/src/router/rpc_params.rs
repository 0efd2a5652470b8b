//! The JSON-RPC form of each operation: its params, parsed into the request it
//! names. Each table entry in `operations` names its parser here, so a call is
//! parsed by the same entry that admits and runs it. Parsing checks shapes only
//! (the parameter types live in `loopsy_transports::wire::params`); limits are
//! checked where the operation runs.

use loopsy_transports::error::ApiError;
use loopsy_transports::wire::*;
use serde_json::Value;

pub type Parse = fn(&str, Option<&Value>) -> Result<Request, ApiError>;

/// `params` of a method that takes none: absent, `null`, `{}` or `[]`.
fn empty(method: &str, params: Option<&Value>) -> Result<(), ApiError> {
    match params {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(map)) if map.is_empty() => Ok(()),
        Some(Value::Array(items)) if items.is_empty() => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "Method '{method}' takes no params; send none or {{}}"
        ))),
    }
}

macro_rules! without_params {
    ($($name:ident => $request:expr),* $(,)?) => {
        $(pub fn $name(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
            empty(method, params).map(|()| $request)
        })*
    };
}

without_params! {
    health => Request::Health,
    identity => Request::Identity,
    status => Request::Status,
    daemon_stop => Request::DaemonStop,
    key_show => Request::KeyShow,
    key_rotate => Request::KeyRotate,
    exec_jobs => Request::ExecJobs,
    session_list => Request::SessionList,
    session_agents => Request::SessionAgents,
    phones_list => Request::PhonesList,
    relay_status => Request::RelayStatus,
}

pub fn context_set(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: ContextSetParams = parse_params(method, params)?;
    ContextPutBody {
        value: p.value,
        ttl: p.ttl,
    }
    .into_request(p.key, None)
}

pub fn context_get(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: ContextKeyParams = parse_params(method, params)?;
    Ok(Request::ContextGet { key: p.key })
}

pub fn context_delete(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: ContextKeyParams = parse_params(method, params)?;
    Ok(Request::ContextDelete { key: p.key })
}

pub fn context_list(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: ContextListParams = match params {
        None | Some(Value::Null) => ContextListParams::default(),
        _ => parse_params(method, params)?,
    };
    Ok(Request::ContextList {
        prefix: p.prefix.unwrap_or_default(),
    })
}

fn execute(method: &str, params: Option<&Value>, stream: bool) -> Result<Request, ApiError> {
    let params: ExecParams = parse_params(method, params)?;
    params.check()?;
    Ok(Request::Execute {
        params,
        stream,
        from_node_id: None,
    })
}

pub fn exec_run(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    execute(method, params, false)
}

pub fn exec_stream(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    execute(method, params, true)
}

pub fn exec_cancel(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: JobIdParams = parse_params(method, params)?;
    Ok(Request::ExecCancel { job_id: p.job_id })
}

pub fn transfer_pull(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PullParams = parse_params(method, params)?;
    Ok(Request::TransferPull {
        source_path: p.source_path,
    })
}

pub fn transfer_list(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PathParams = parse_params(method, params)?;
    Ok(Request::TransferList { path: p.path })
}

/// `transfer.push` and `session.attach` carry binary frames, which only the
/// framed connections set up (before a call reaches the Router).
pub fn binary_only(method: &str, _: Option<&Value>) -> Result<Request, ApiError> {
    Err(ApiError::invalid_request(format!(
        "{method} carries binary frames: use the Unix socket (files also move over POST /api/v1/transfer/push and /pull)"
    )))
}

pub fn session_start(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    Ok(Request::SessionStart(parse_params(method, params)?))
}

pub fn session_input(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionInputParams = parse_params(method, params)?;
    Ok(Request::SessionInput {
        target: p.id,
        data: p.data,
    })
}

pub fn session_resize(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionResizeParams = parse_params(method, params)?;
    Ok(Request::SessionResize {
        target: p.id,
        cols: p.cols,
        rows: p.rows,
    })
}

pub fn session_signal(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionSignalParams = parse_params(method, params)?;
    Ok(Request::SessionSignal {
        target: p.id,
        signal: p.signal.unwrap_or_else(|| "INT".to_owned()),
    })
}

pub fn session_stop(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionTargetParams = parse_params(method, params)?;
    Ok(Request::SessionStop { target: p.id })
}

pub fn session_remove(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionTargetParams = parse_params(method, params)?;
    Ok(Request::SessionRemove { target: p.id })
}

pub fn session_rename(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionRenameParams = parse_params(method, params)?;
    Ok(Request::SessionRename {
        target: p.id,
        name: p.name,
    })
}

pub fn session_read(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionReadParams = parse_params(method, params)?;
    Ok(Request::SessionRead {
        target: p.id,
        from_offset: p.from_offset,
        max_bytes: p.max_bytes,
        strip_ansi: p.strip_ansi,
    })
}

pub fn session_screen(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionTargetParams = parse_params(method, params)?;
    Ok(Request::SessionScreen { target: p.id })
}

/// The longest a `session.wait` may wait, and its default.
pub const SESSION_WAIT_MAX_SEC: f64 = 600.0;
const SESSION_WAIT_DEFAULT_SEC: f64 = 60.0;

pub fn session_wait(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionWaitParams = parse_params(method, params)?;
    let secs = p.timeout_sec.unwrap_or(SESSION_WAIT_DEFAULT_SEC);
    if !secs.is_finite() || !(0.0..=SESSION_WAIT_MAX_SEC).contains(&secs) {
        return Err(ApiError::bad_request(format!(
            "timeoutSec must be from 0 to {SESSION_WAIT_MAX_SEC} seconds"
        )));
    }
    Ok(Request::SessionWait {
        target: p.id,
        pattern: p.pattern,
        from_offset: p.from_offset,
        timeout_ms: (secs * 1000.0) as u64,
    })
}

pub fn commands_add(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    Ok(Request::CommandAdd(parse_params(method, params)?))
}

pub fn commands_update(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    Ok(Request::CommandUpdate(parse_params(method, params)?))
}

pub fn commands_remove(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: SessionTargetParams = parse_params(method, params)?;
    Ok(Request::CommandRemove { id: p.id })
}

pub fn grants_auto_approve(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: GrantParams = parse_params(method, params)?;
    Ok(Request::GrantAutoApprove {
        peer: p.peer,
        allow: p.allow,
    })
}

pub fn mobile_pair(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: MobilePairParams = parse_params(method, params)?;
    Ok(Request::MobilePair {
        ttl_seconds: p.ttl_seconds,
        app_url: p.app_url,
    })
}

pub fn mobile_pair_status(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PairStatusParams = parse_params(method, params)?;
    Ok(Request::MobilePairStatus {
        token_id: p.token_id,
    })
}

pub fn phones_revoke(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PhoneParams = parse_params(method, params)?;
    Ok(Request::PhonesRevoke {
        phone_id: p.phone_id,
    })
}

pub fn relay_configure(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: RelayConfigureParams = parse_params(method, params)?;
    Ok(Request::RelayConfigure {
        url: p.url,
        force: p.force,
        ca_file: p.ca_file,
    })
}

/// The pseudo-entries (`unknown`, `rpc`) are never named by a caller.
/// The phone-channel operations are asked by the daemon's relay link, with
/// typed requests, never as JSON-RPC.
pub fn relay_link_only(method: &str, _: Option<&Value>) -> Result<Request, ApiError> {
    Err(ApiError::forbidden(format!(
        "'{method}' is asked only by the daemon's relay link for its phone channels"
    )))
}

pub fn not_a_method(method: &str, _: Option<&Value>) -> Result<Request, ApiError> {
    Err(ApiError::method_not_found(method))
}

fn peers(request: PeerRequest) -> Result<Request, ApiError> {
    Ok(Request::Peers(request))
}

pub fn peers_pair_open(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PairOpenParams = parse_params(method, params)?;
    peers(PeerRequest::PairOpen {
        ttl_seconds: p.ttl_seconds,
    })
}

pub fn peers_pair_status(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    empty(method, params).and_then(|()| peers(PeerRequest::PairStatus))
}

pub fn peers_pair_confirm(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    peers(PeerRequest::PairConfirm(parse_params(method, params)?))
}

pub fn peers_join(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: JoinParams = parse_params(method, params)?;
    peers(PeerRequest::Join {
        address: p.address,
        code: p.code,
    })
}

pub fn peers_join_status(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    empty(method, params).and_then(|()| peers(PeerRequest::JoinStatus))
}

pub fn peers_join_confirm(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    peers(PeerRequest::JoinConfirm(parse_params(method, params)?))
}

pub fn peers_list(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    empty(method, params).and_then(|()| peers(PeerRequest::List))
}

pub fn peers_remove(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PeerNameParams = parse_params(method, params)?;
    peers(PeerRequest::Remove { peer: p.peer })
}

pub fn peers_typescript_add(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: AddTypeScriptParams = parse_params(method, params)?;
    peers(PeerRequest::AddTypeScript {
        address: p.address,
        key: p.key,
        plain_http: p.plain_http,
    })
}

pub fn peers_typescript_invite(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: InviteTypeScriptParams = parse_params(method, params)?;
    peers(PeerRequest::InviteTypeScript {
        name: p.name,
        grants: p.grants,
    })
}

pub fn peers_call(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PeerCallParams = parse_params(method, params)?;
    peers(PeerRequest::Call {
        peer: p.peer,
        method: p.method,
        params: p.params,
    })
}

pub fn peers_transfer_pull(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PeerPullParams = parse_params(method, params)?;
    peers(PeerRequest::TransferPull {
        peer: p.peer,
        source_path: p.source_path,
    })
}

pub fn peer_pair_hello(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: HelloParams = parse_params(method, params)?;
    peers(PeerRequest::Hello { message: p.message })
}

pub fn peer_pair_finish(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PairingMessageParams = parse_params(method, params)?;
    peers(PeerRequest::Finish {
        pairing: p.pairing,
        message: p.message,
    })
}

pub fn peer_pair_step(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: PairingMessageParams = parse_params(method, params)?;
    peers(PeerRequest::Step {
        pairing: p.pairing,
        message: p.message,
    })
}

pub fn peer_unpair(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    empty(method, params).and_then(|()| peers(PeerRequest::Unpair))
}

pub fn messages_send(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: MessageSendParams = parse_params(method, params)?;
    Ok(Request::Message(MessageRequest::Send {
        peer: p.peer,
        kind: p.kind.unwrap_or_default(),
        body: p.body,
    }))
}

pub fn messages_inbox(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    empty(method, params)?;
    Ok(Request::Message(MessageRequest::Inbox))
}

pub fn messages_ack(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: MessageAckParams = parse_params(method, params)?;
    Ok(Request::Message(MessageRequest::Ack {
        key: p.key,
        id: p.id,
        peer: p.peer,
    }))
}

pub fn messages_ack_status(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: MessagePeerParams = parse_params(method, params)?;
    Ok(Request::Message(MessageRequest::AckStatus { peer: p.peer }))
}

pub fn message_deliver(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: MessageDeliverParams = parse_params(method, params)?;
    Ok(Request::Message(MessageRequest::Deliver {
        envelope: p.envelope,
    }))
}

pub fn message_acked(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: MessageAckedParams = parse_params(method, params)?;
    Ok(Request::Message(MessageRequest::Acked {
        receiver: p.receiver,
        id: p.id,
    }))
}

pub fn mcp_attach(method: &str, params: Option<&Value>) -> Result<Request, ApiError> {
    let p: McpAttachParams = parse_params(method, params)?;
    Ok(Request::McpAttach {
        name: p.name,
        version: p.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked() {
        assert!(matches!(status("status", None), Ok(Request::Status)));
        assert!(matches!(
            status("status", Some(&serde_json::json!({}))),
            Ok(Request::Status)
        ));
        assert!(status("status", Some(&serde_json::json!({"x": 1}))).is_err());
        assert!(exec_run("exec.run", Some(&serde_json::json!({"command": ""}))).is_err());
        assert!(matches!(
            exec_stream("exec.stream", Some(&serde_json::json!({"command": "ls"}))),
            Ok(Request::Execute { stream: true, .. })
        ));
    }
}
