//! The session tools: real PTY sessions here or on a peer, which an agent
//! starts, types into and watches without polling (`loopsy_session_wait`
//! blocks until the output matches, the session exits, or a timeout).

use std::time::Duration;

use loopsy_transports::wire::method;
use serde_json::{Value, json};

use super::args::Args;
use super::daemon::CALL_TIMEOUT;
use super::output::{DEFAULT_MAX_BYTES, LIMIT_MAX_BYTES};
use super::{Answer, LoopsyMcp, ToolError};

/// `loopsy_session_wait`'s default and longest wait.
const WAIT_DEFAULT: f64 = 60.0;
const WAIT_MAX: f64 = 600.0;
/// Extra time for the answer of a wait to come back.
const WAIT_MARGIN: Duration = Duration::from_secs(15);

/// Text that becomes keys: `\n` is Enter to a terminal (`\r`).
fn keys(text: &str) -> String {
    text.replace("\r\n", "\r").replace('\n', "\r")
}

impl LoopsyMcp {
    async fn session_call(
        &self,
        args: &Args,
        method: &'static str,
        params: Value,
    ) -> Result<Value, ToolError> {
        self.daemon
            .on(args.peer()?, method, params, CALL_TIMEOUT)
            .await
    }

    pub(super) async fn session_start(&self, args: &Args) -> Result<Answer, ToolError> {
        let mut params = json!({"args": args.str_list("args")?});
        for (arg, field) in [
            ("agent", "agent"),
            ("command", "command"),
            ("cwd", "cwd"),
            ("name", "name"),
        ] {
            if let Some(value) = args.opt_str(arg)? {
                params[field] = json!(value);
            }
        }
        for dimension in ["cols", "rows"] {
            if let Some(n) = args.opt_u64(dimension, 1000)? {
                params[dimension] = json!(n);
            }
        }
        let started = self
            .session_call(args, method::SESSION_START, params)
            .await?;
        let id = started["id"].as_str().unwrap_or_default().to_owned();
        let line = format!(
            "started session {id}{}; watch it with loopsy_session_wait or loopsy_session_screen",
            started["name"]
                .as_str()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        Ok(Answer::new(
            line,
            json!({"session_id": id, "session": started}),
        ))
    }

    pub(super) async fn session_list(&self, args: &Args) -> Result<Answer, ToolError> {
        let listed = self
            .session_call(args, method::SESSION_LIST, json!({}))
            .await?;
        let sessions = listed["sessions"].as_array().cloned().unwrap_or_default();
        let alive = sessions.iter().filter(|s| s["alive"] == true).count();
        let line = format!("{} sessions, {alive} running", sessions.len());
        Ok(Answer::new(line, json!({ "sessions": sessions })))
    }

    pub(super) async fn session_read(&self, args: &Args) -> Result<Answer, ToolError> {
        let mut params = json!({
            "id": args.str("session_id")?,
            "maxBytes": args.opt_u64("max_bytes", LIMIT_MAX_BYTES)?.unwrap_or(DEFAULT_MAX_BYTES).max(1),
            "stripAnsi": args.opt_bool("strip_ansi")?.unwrap_or(true),
        });
        if let Some(offset) = args.opt_u64("from_offset", u64::MAX)? {
            params["fromOffset"] = json!(offset);
        }
        let read = self
            .session_call(args, method::SESSION_READ, params)
            .await?;
        let line = format!(
            "{} bytes from offset {} (the output's end is {}{})",
            read["nextOffset"].as_u64().unwrap_or(0) - read["offset"].as_u64().unwrap_or(0),
            read["offset"],
            read["end"],
            if read["exited"] == true {
                "; the session exited"
            } else {
                ""
            }
        );
        Ok(Answer::new(line, read))
    }

    pub(super) async fn session_screen(&self, args: &Args) -> Result<Answer, ToolError> {
        let screen = self
            .session_call(
                args,
                method::SESSION_SCREEN,
                json!({"id": args.str("session_id")?}),
            )
            .await?;
        let line = format!(
            "the screen ({}x{}) as of offset {}",
            screen["cols"], screen["rows"], screen["offset"]
        );
        Ok(Answer::new(line, screen))
    }

    /// Types `text`; says where the output stood just before, for a wait from there.
    pub(super) async fn session_send(&self, args: &Args) -> Result<Answer, ToolError> {
        let id = args.str("session_id")?;
        let text = args.str("text")?;
        let before = self
            .session_call(
                args,
                method::SESSION_READ,
                json!({"id": id, "fromOffset": u64::MAX, "maxBytes": 1}),
            )
            .await?;
        let mut data = keys(text);
        if args.opt_bool("enter")?.unwrap_or(false) {
            data.push('\r');
        }
        self.session_call(args, method::SESSION_INPUT, json!({"id": id, "data": data}))
            .await?;
        let offset = before["end"].as_u64().unwrap_or(0);
        let line = format!(
            "typed {} bytes into {id}; wait for its answer with loopsy_session_wait from_offset {offset}",
            data.len()
        );
        Ok(Answer::new(
            line,
            json!({"session_id": id, "offset": offset, "sent": data.len()}),
        ))
    }

    pub(super) async fn session_wait(&self, args: &Args) -> Result<Answer, ToolError> {
        let secs = args
            .opt_seconds("timeout_seconds", WAIT_MAX)?
            .unwrap_or(WAIT_DEFAULT);
        let mut params = json!({"id": args.str("session_id")?, "timeoutSec": secs});
        if let Some(pattern) = args.opt_str("pattern")? {
            params["pattern"] = json!(pattern);
        }
        if let Some(offset) = args.opt_u64("from_offset", u64::MAX)? {
            params["fromOffset"] = json!(offset);
        }
        let within = Duration::from_secs_f64(secs) + WAIT_MARGIN;
        let waited = self
            .daemon
            .on(args.peer()?, method::SESSION_WAIT, params, within)
            .await?;
        let line = if waited["matched"] == true {
            format!("matched: {}", waited["match"].as_str().unwrap_or_default())
        } else if waited["timedOut"] == true {
            format!(
                "no match within {secs} s; the output is at offset {}",
                waited["nextOffset"]
            )
        } else {
            format!("the session exited (code {})", waited["exitCode"])
        };
        Ok(Answer::new(line, waited))
    }

    pub(super) async fn session_stop(&self, args: &Args) -> Result<Answer, ToolError> {
        let id = args.str("session_id")?;
        self.session_call(args, method::SESSION_STOP, json!({"id": id}))
            .await?;
        Ok(Answer::new(
            format!("stopping {id}"),
            json!({"session_id": id, "stopped": true}),
        ))
    }

    pub(super) async fn session_remove(&self, args: &Args) -> Result<Answer, ToolError> {
        let id = args.str("session_id")?;
        self.session_call(args, method::SESSION_REMOVE, json!({"id": id}))
            .await?;
        Ok(Answer::new(
            format!("removed {id}"),
            json!({"session_id": id, "removed": true}),
        ))
    }
}
