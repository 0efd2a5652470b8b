//! The error every transport knows how to render: the original Loopsy's
//! `{"error":{"code","message","details"?}}` body on HTTP, and a JSON-RPC 2.0
//! error object on the Unix socket and `/rpc`.

use serde_json::{Value, json};

/// Every numeric error code, in one place: the original Loopsy's (spec §1.3, kept
/// for wire compatibility: 1xxx auth, 3xxx exec, 4xxx transfer, 5xxx context,
/// 9xxx general) and loopsy's own (7xxx sessions, 71xx phones).
pub mod code {
    pub const MISSING_KEY: u32 = 1001;
    pub const INVALID_KEY: u32 = 1002;

    pub const EXEC_DENIED: u32 = 3001;
    pub const EXEC_MAX_CONCURRENT: u32 = 3003;
    pub const EXEC_FAILED: u32 = 3004;
    pub const JOB_NOT_FOUND: u32 = 3006;

    pub const PATH_DENIED: u32 = 4001;
    pub const FILE_NOT_FOUND: u32 = 4002;
    pub const FILE_TOO_LARGE: u32 = 4003;
    pub const CHECKSUM_MISMATCH: u32 = 4004;
    pub const TRANSFER_FAILED: u32 = 4005;
    /// Too many transfers in flight for this principal.
    pub const TRANSFER_BUSY: u32 = 4006;

    pub const CONTEXT_NOT_FOUND: u32 = 5001;
    pub const CONTEXT_TOO_LARGE: u32 = 5002;
    pub const CONTEXT_FULL: u32 = 5003;

    pub const SESSION_NOT_FOUND: u32 = 7001;
    pub const SESSION_AMBIGUOUS: u32 = 7002;
    pub const SESSION_EXITED: u32 = 7003;
    pub const AGENT_MISSING: u32 = 7004;
    pub const SESSION_START_FAILED: u32 = 7005;
    pub const SESSION_FORBIDDEN: u32 = 7006;
    pub const COMMAND_NOT_FOUND: u32 = 7007;
    /// `session.maxSessions` or `session.maxSessionsPerPrincipal` reached.
    pub const SESSION_LIMIT: u32 = 7008;

    pub const PHONE_NOT_FOUND: u32 = 7101;
    pub const PAIRING_WINDOW_NOT_FOUND: u32 = 7102;
    pub const PAIRING_CODE_WRONG: u32 = 7103;
    /// Five wrong codes closed the pairing window for good.
    pub const PAIRING_DEAD: u32 = 7104;

    pub const PEER_NOT_FOUND: u32 = 7201;
    pub const PEER_WINDOW_NOT_FOUND: u32 = 7202;
    pub const PEER_CODE_WRONG: u32 = 7203;
    /// The pairing is over (declined, closed after wrong codes, or broken).
    pub const PEER_PAIRING_ENDED: u32 = 7204;
    /// Another machine is in the middle of pairing with this window.
    pub const PEER_PAIRING_BUSY: u32 = 7205;
    /// A peer did not answer, answered garbage, or its link's breaker is open.
    pub const PEER_UNREACHABLE: u32 = 7206;
    /// The peer runs the original TypeScript Loopsy, which has no such operation.
    pub const PEER_CANNOT: u32 = 7207;
    pub const INTERNAL: u32 = 9001;
    pub const RATE_LIMITED: u32 = 9002;
    pub const INVALID_REQUEST: u32 = 9003;
}

/// JSON-RPC 2.0 reserved error codes, used where the request itself is at fault.
pub mod rpc_code {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
}

/// A refusal or failure, with everything each transport needs to render it.
///
/// The message is shown to the caller, so it must never contain a secret or an
/// internal detail; it should tell the caller what to do next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct ApiError {
    /// Loopsy error code (spec §1.3).
    pub code: u32,
    /// JSON-RPC error code: the Loopsy code, or a reserved JSON-RPC code for malformed requests.
    pub rpc_code: i32,
    /// HTTP status on the LAN transport.
    pub status: u16,
    pub message: String,
    /// Seconds after which a rate-limited caller may retry (`Retry-After`).
    pub retry_after_secs: Option<u64>,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u32, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            rpc_code: i32::try_from(code).unwrap_or(i32::MAX),
            status,
            message: message.into(),
            retry_after_secs: None,
            details: None,
        }
    }

    /// 401 with the original's exact body, so its clients recognise it.
    pub fn missing_key() -> Self {
        Self::new(code::MISSING_KEY, 401, "Missing Authorization header")
    }

    /// 403 with the original's exact body; says nothing about which keys exist.
    pub fn invalid_key() -> Self {
        Self::new(code::INVALID_KEY, 403, "Invalid API key")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_KEY, 403, message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut err = Self::new(
            code::RATE_LIMITED,
            429,
            format!("Rate limit exceeded; retry in {retry_after_secs} s"),
        );
        err.retry_after_secs = Some(retry_after_secs);
        err
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, 400, message).with_rpc_code(rpc_code::INVALID_PARAMS)
    }

    pub fn parse_error(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, 400, message).with_rpc_code(rpc_code::PARSE_ERROR)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, 400, message).with_rpc_code(rpc_code::INVALID_REQUEST)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            code::INVALID_REQUEST,
            404,
            format!("Unknown method '{method}'; see docs/architecture.md for the method list"),
        )
        .with_rpc_code(rpc_code::METHOD_NOT_FOUND)
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            code::INVALID_REQUEST,
            404,
            format!("No route {method} {path}; the API lives under /api/v1"),
        )
        .with_rpc_code(rpc_code::METHOD_NOT_FOUND)
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            code::INVALID_REQUEST,
            413,
            format!("Request body is larger than the {limit_bytes}-byte limit"),
        )
        .with_rpc_code(rpc_code::INVALID_REQUEST)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL, 500, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL, 503, message)
    }

    pub fn with_rpc_code(mut self, rpc_code: i32) -> Self {
        self.rpc_code = rpc_code;
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The original Loopsy's error body.
    pub fn to_body(&self) -> Value {
        let mut inner = json!({ "code": self.code, "message": self.message });
        if let Some(details) = &self.details {
            inner["details"] = details.clone();
        }
        json!({ "error": inner })
    }

    /// `data` member of a JSON-RPC error object: the Loopsy code and hints a client acts on.
    pub fn rpc_data(&self) -> Value {
        let mut data = json!({ "loopsyCode": self.code, "httpStatus": self.status });
        if let Some(secs) = self.retry_after_secs {
            data["retryAfter"] = json!(secs);
        }
        if let Some(details) = &self.details {
            data["details"] = details.clone();
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_errors_keep_the_original_bodies() {
        assert_eq!(
            ApiError::missing_key().to_body(),
            json!({"error":{"code":1001,"message":"Missing Authorization header"}})
        );
        assert_eq!(
            ApiError::invalid_key().to_body(),
            json!({"error":{"code":1002,"message":"Invalid API key"}})
        );
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let err = ApiError::rate_limited(3);
        assert_eq!(err.status, 429);
        assert_eq!(err.rpc_data()["retryAfter"], json!(3));
    }
}
