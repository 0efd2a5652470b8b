//! Parameter shapes of requests, shared by the REST bodies (the original's JSON)
//! and the JSON-RPC params. Parsing checks shape only; limits are the services'.

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
