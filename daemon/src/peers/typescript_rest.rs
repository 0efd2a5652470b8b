//! Operations on a TypeScript Loopsy peer as its REST routes (spec §1.5): the
//! original has no `/rpc`, so each method a `PeerLink` is asked becomes the
//! route that does the same there. Its answers have the same shapes as ours
//! (ours are wire-compatible), so only the request is translated. What the
//! original cannot do (PTY sessions over the LAN, framed connections) is
//! refused here with `PEER_CANNOT`, before anything is sent.

use loopsy_transports::error::{ApiError, code};
use loopsy_transports::wire::method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

/// One REST request: method, path (with query) and JSON body.
#[derive(Debug, PartialEq)]
pub struct RestCall {
    pub verb: awc::http::Method,
    pub path: String,
    pub body: Option<Value>,
}

fn text<'a>(params: &'a Value, field: &str, method: &str) -> Result<&'a str, ApiError> {
    params
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(format!("'{method}' needs '{field}' (a string)")))
}

fn encoded(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

/// Refuses an operation the original does not have.
pub fn cannot(peer: &str, what: &str) -> ApiError {
    ApiError::new(
        code::PEER_CANNOT,
        400,
        format!(
            "peer {peer} runs the original TypeScript Loopsy, which cannot {what}; \
             install loopsy there and pair with `loopsy pair` for that"
        ),
    )
}

/// The REST request that does `method` with `params` on a TypeScript peer.
pub fn route(peer: &str, method: &str, params: &Value) -> Result<RestCall, ApiError> {
    use awc::http::Method as Verb;
    let call = |verb: Verb, path: String, body: Option<Value>| {
        Ok(RestCall {
            verb,
            path: format!("/api/v1{path}"),
            body,
        })
    };
    match method {
        method::HEALTH => call(Verb::GET, "/health".into(), None),
        method::IDENTITY => call(Verb::GET, "/identity".into(), None),
        method::STATUS => call(Verb::GET, "/status".into(), None),
        method::EXEC_RUN => call(Verb::POST, "/execute".into(), Some(params.clone())),
        method::EXEC_JOBS => call(Verb::GET, "/execute/jobs".into(), None),
        method::EXEC_CANCEL => {
            let job = text(params, "jobId", method)?;
            call(Verb::DELETE, format!("/execute/{}", encoded(job)), None)
        }
        method::CONTEXT_SET => {
            let key = text(params, "key", method)?;
            let mut body = json!({"value": params.get("value").cloned().unwrap_or(Value::Null)});
            if let Some(ttl) = params.get("ttl").filter(|t| !t.is_null()) {
                body["ttl"] = ttl.clone();
            }
            call(Verb::PUT, format!("/context/{}", encoded(key)), Some(body))
        }
        method::CONTEXT_GET => {
            let key = text(params, "key", method)?;
            call(Verb::GET, format!("/context/{}", encoded(key)), None)
        }
        method::CONTEXT_DELETE => {
            let key = text(params, "key", method)?;
            call(Verb::DELETE, format!("/context/{}", encoded(key)), None)
        }
        method::CONTEXT_LIST => {
            let prefix = params.get("prefix").and_then(Value::as_str).unwrap_or("");
            call(
                Verb::GET,
                format!("/context?prefix={}", encoded(prefix)),
                None,
            )
        }
        method::TRANSFER_LIST => {
            let path = text(params, "path", method)?;
            call(
                Verb::POST,
                "/transfer/list".into(),
                Some(json!({"path": path})),
            )
        }
        m if m.starts_with("session.") => Err(cannot(peer, "run PTY sessions for a peer")),
        other => Err(cannot(peer, &format!("do '{other}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_become_the_originals_routes() -> Result<(), ApiError> {
        let exec = route("ts", method::EXEC_RUN, &json!({"command": "true"}))?;
        assert_eq!(exec.verb, awc::http::Method::POST);
        assert_eq!(exec.path, "/api/v1/execute");
        let set = route(
            "ts",
            method::CONTEXT_SET,
            &json!({"key": "a/b c", "value": "v", "ttl": 5}),
        )?;
        assert_eq!(set.path, "/api/v1/context/a%2Fb%20c");
        assert_eq!(set.body, Some(json!({"value": "v", "ttl": 5})));
        let list = route("ts", method::CONTEXT_LIST, &json!({"prefix": "x&y"}))?;
        assert_eq!(list.path, "/api/v1/context?prefix=x%26y");
        let cancel = route("ts", method::EXEC_CANCEL, &json!({"jobId": "../x"}))?;
        assert_eq!(cancel.path, "/api/v1/execute/%2E%2E%2Fx");
        assert!(route("ts", method::CONTEXT_GET, &json!({})).is_err());
        let session = route("ts", method::SESSION_START, &json!({}));
        assert!(session.is_err_and(|e| e.code == code::PEER_CANNOT && e.message.contains("PTY")));
        assert!(route("ts", "peer.unpair", &json!({})).is_err());
        Ok(())
    }
}
