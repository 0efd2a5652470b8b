//! Context requests (spec §1.9): validated here, run by the context store, and
//! answered in the original's shapes and error codes.

use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Reply, Request};
use serde_json::json;

use super::{Router, Work};
use crate::services::context::{self, Answer, ContextError};

use loopsy_transports::error::code::{
    CONTEXT_FULL as FULL, CONTEXT_NOT_FOUND as NOT_FOUND, CONTEXT_TOO_LARGE as TOO_LARGE,
};

impl From<ContextError> for ApiError {
    fn from(error: ContextError) -> Self {
        let message = error.to_string();
        match error {
            ContextError::NotFound(_) => ApiError::new(NOT_FOUND, 404, message),
            ContextError::TooLarge(_) => ApiError::new(TOO_LARGE, 400, message),
            ContextError::Full(_) => ApiError::new(FULL, 400, message),
            ContextError::Invalid(_) => ApiError::bad_request(message),
            ContextError::Storage(_) => {
                tracing::error!(%message, "context store failure");
                ApiError::internal("The context store failed; see the daemon log")
            }
        }
    }
}

fn render(answer: Result<Answer, ContextError>, key: Option<String>) -> Result<Reply, ApiError> {
    match answer? {
        Answer::Entry(entry) => Ok(Reply::ok(json!(entry))),
        Answer::Entries(entries) => Ok(Reply::ok(json!({ "entries": entries }))),
        Answer::Deleted => Ok(Reply::ok(json!({ "success": true, "key": key }))),
    }
}

pub(super) fn run(router: &Router, request: Request) -> Work {
    let store = router.services.context.clone();
    let pending = async move {
        match request {
            Request::ContextSet {
                key,
                value,
                ttl_secs,
                from_node_id,
            } => {
                // The original's label for entries written without a node id.
                let from = from_node_id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| "local".to_owned());
                match context::validate_set(key, value, ttl_secs, from) {
                    Ok(entry) => render(store.set(entry).await, None),
                    Err(error) => Err(error.into()),
                }
            }
            Request::ContextGet { key } => match context::validate_key(&key) {
                Ok(()) => render(store.get(key).await, None),
                Err(error) => Err(error.into()),
            },
            Request::ContextDelete { key } => match context::validate_key(&key) {
                Ok(()) => render(store.delete(key.clone()).await, Some(key)),
                Err(error) => Err(error.into()),
            },
            Request::ContextList { prefix } => render(store.list(prefix).await, None),
            other => Err(ApiError::internal(format!(
                "'{}' is not a context request",
                other.op()
            ))),
        }
    };
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(pending)))
}
