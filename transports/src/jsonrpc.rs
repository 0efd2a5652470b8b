//! JSON-RPC 2.0 messages (via jsonrpsee-types) to and from [`Request`]s: the
//! vocabulary of the Unix socket and of `POST /rpc` on the LAN.

use jsonrpsee_types::{ErrorObject, Id, Notification, Response, ResponsePayload};
use serde_json::Value;

use crate::error::ApiError;
use crate::wire::Request;

/// One decoded JSON-RPC message from a client.
#[derive(Debug)]
pub enum RpcIncoming {
    /// A call that expects an answer with this id.
    Call {
        id: Id<'static>,
        request: Result<Request, ApiError>,
    },
    /// A notification: it runs, but nothing is answered.
    Notification { request: Result<Request, ApiError> },
    /// Not a JSON-RPC request at all; answered with id `null` (or the id, if one could be read).
    Invalid { id: Id<'static>, error: ApiError },
}

fn params_value(raw: Option<&serde_json::value::RawValue>) -> Result<Option<Value>, ApiError> {
    raw.map(|raw| serde_json::from_str::<Value>(raw.get()))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("params are not valid JSON: {e}")))
}

/// The call as the Router will parse it (transports decide nothing about params).
fn to_request(
    method: &str,
    raw: Option<&serde_json::value::RawValue>,
) -> Result<Request, ApiError> {
    Ok(Request::Call {
        method: method.to_owned(),
        params: params_value(raw)?,
    })
}

/// Decodes one JSON-RPC message. Never fails: garbage becomes [`RpcIncoming::Invalid`].
pub fn parse(bytes: &[u8]) -> RpcIncoming {
    if let Ok(call) = serde_json::from_slice::<jsonrpsee_types::Request<'_>>(bytes) {
        return RpcIncoming::Call {
            id: call.id.clone().into_owned(),
            request: to_request(&call.method, call.params.as_deref()),
        };
    }
    let invalid = |error| RpcIncoming::Invalid {
        id: Id::Null,
        error,
    };
    let value = serde_json::from_slice::<Value>(bytes);
    // Only a message without any `id` member is a notification; a malformed id must
    // not turn a call into a fire-and-forget.
    if matches!(&value, Ok(Value::Object(map)) if !map.contains_key("id"))
        && let Ok(note) =
            serde_json::from_slice::<Notification<'_, Option<&serde_json::value::RawValue>>>(bytes)
    {
        return RpcIncoming::Notification {
            request: to_request(note.method_name(), note.params),
        };
    }
    match value {
        Err(e) => invalid(ApiError::parse_error(format!(
            "Message is not valid JSON ({e}); send one JSON-RPC 2.0 object per frame"
        ))),
        Ok(Value::Array(_)) => invalid(ApiError::invalid_request(
            "Batch requests are not supported; send one JSON-RPC 2.0 object per frame",
        )),
        Ok(value) => {
            let id = value
                .get("id")
                .and_then(|id| match id {
                    Value::Number(n) => n.as_u64().map(Id::Number),
                    Value::String(s) => Some(Id::Str(s.clone().into())),
                    _ => None,
                })
                .unwrap_or(Id::Null);
            RpcIncoming::Invalid {
                id,
                error: ApiError::invalid_request(
                    "Not a JSON-RPC 2.0 request; expected {\"jsonrpc\":\"2.0\",\"id\":…,\"method\":…}",
                ),
            }
        }
    }
}

/// Methods whose bytes travel as binary frames on the Unix socket, and which
/// therefore need a channel the plain [`parse`] cannot create.
pub const BINARY_METHODS: &[&str] = &[
    crate::wire::method::TRANSFER_PUSH,
    crate::wire::method::PEERS_TRANSFER_PUSH,
    crate::wire::method::PEERS_TUNNEL,
    crate::wire::method::SESSION_ATTACH,
    crate::wire::method::SESSION_DETACH,
];

/// A call to one of [`BINARY_METHODS`]: its id, method and params.
pub struct BinaryCall {
    pub id: Id<'static>,
    pub method: String,
    pub params: Result<Option<Value>, ApiError>,
}

/// Recognises a call to one of [`BINARY_METHODS`].
pub fn binary_call(bytes: &[u8]) -> Option<BinaryCall> {
    let call = serde_json::from_slice::<jsonrpsee_types::Request<'_>>(bytes).ok()?;
    if !BINARY_METHODS.contains(&call.method.as_ref()) {
        return None;
    }
    Some(BinaryCall {
        id: call.id.clone().into_owned(),
        method: call.method.to_string(),
        params: params_value(call.params.as_deref()),
    })
}

/// Serialises a successful answer.
pub fn success(id: Id<'_>, result: &Value) -> Vec<u8> {
    let response = Response::new(ResponsePayload::success_borrowed(result), id);
    serde_json::to_vec(&response).unwrap_or_default()
}

/// Serialises an error answer.
/// An error answer that belongs to no call (`id: null`): about the connection itself.
pub fn failure_unattributed(error: &ApiError) -> Vec<u8> {
    failure(Id::Null, error)
}

pub fn failure(id: Id<'_>, error: &ApiError) -> Vec<u8> {
    let object = ErrorObject::owned(
        error.rpc_code,
        error.message.clone(),
        Some(error.rpc_data()),
    );
    let response = Response::<Value>::new(ResponsePayload::error(object), id);
    serde_json::to_vec(&response).unwrap_or_default()
}

/// Serialises a call, for clients.
pub fn call(id: u64, method: &str, params: Option<&Value>) -> Vec<u8> {
    let mut message = serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method });
    if let Some(params) = params {
        message["params"] = params.clone();
    }
    serde_json::to_vec(&message).unwrap_or_default()
}

/// A decoded answer, for clients.
#[derive(Debug)]
pub struct RpcAnswer {
    pub id: Option<u64>,
    pub result: Result<Value, RpcFailure>,
}

/// The error member of an answer, with the Loopsy hints from `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcFailure {
    pub code: i32,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcFailure {
    pub fn loopsy_code(&self) -> Option<u64> {
        self.data.as_ref()?.get("loopsyCode")?.as_u64()
    }
}

/// Decodes an answer from the daemon.
pub fn parse_answer(bytes: &[u8]) -> Result<RpcAnswer, serde_json::Error> {
    let response: Response<'_, Value> = serde_json::from_slice(bytes)?;
    let id = response.id.as_number().copied();
    let result = match response.payload {
        ResponsePayload::Success(value) => Ok(value.into_owned()),
        ResponsePayload::Error(error) => Err(RpcFailure {
            code: error.code(),
            message: error.message().to_owned(),
            data: error
                .data()
                .and_then(|raw| serde_json::from_str(raw.get()).ok()),
        }),
    };
    Ok(RpcAnswer { id, result })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::rpc_code;

    #[test]
    fn call_round_trip() {
        let bytes = call(7, "status", None);
        match parse(&bytes) {
            RpcIncoming::Call { id, request } => {
                assert_eq!(id, Id::Number(7));
                assert!(
                    matches!(request, Ok(Request::Call { method, params: None }) if method == "status")
                );
            }
            other => panic!("expected a call, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_a_parse_error() {
        match parse(b"{not json") {
            RpcIncoming::Invalid { id, error } => {
                assert_eq!(id, Id::Null);
                assert_eq!(error.rpc_code, rpc_code::PARSE_ERROR);
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn wrong_shape_keeps_the_id() {
        match parse(br#"{"id":3,"method":5}"#) {
            RpcIncoming::Invalid { id, error } => {
                assert_eq!(id, Id::Number(3));
                assert_eq!(error.rpc_code, rpc_code::INVALID_REQUEST);
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn notification_is_recognised() {
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","method":"health"}"#),
            RpcIncoming::Notification {
                request: Ok(Request::Call { .. })
            }
        ));
    }

    #[test]
    fn answers_decode() -> Result<(), serde_json::Error> {
        let ok = parse_answer(&success(Id::Number(1), &serde_json::json!({"a": 1})))?;
        assert_eq!(ok.id, Some(1));
        assert_eq!(ok.result, Ok(serde_json::json!({"a": 1})));
        let err = parse_answer(&failure(Id::Number(2), &ApiError::invalid_key()))?;
        let failure = err.result.err();
        assert_eq!(failure.as_ref().map(|f| f.code), Some(1002));
        assert_eq!(failure.and_then(|f| f.loopsy_code()), Some(1002));
        Ok(())
    }
}
