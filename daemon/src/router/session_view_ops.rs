//! `session.read`, `session.screen`, `session.wait`: a session for agents that
//! read it instead of attaching (an MCP client watching a build). Resolved in
//! the caller's scope like every session request; a wait is bounded by its
//! timeout (at most 10 min), its pattern by a linear-time regex engine with
//! size limits, and every answer by a byte cap.

use std::time::Duration;

use loopsy_transports::error::ApiError;
use loopsy_transports::wire::Reply;
use serde_json::{Value, json};

use super::session_ops::gone;
use crate::sessions::pty::{self, ReadOutput, ScreenTextOf, WatchProgress};
use crate::sessions::text::{strip_ansi, whole_chars};

/// The most output one `session.read` answers with.
const READ_MAX: u64 = 1024 * 1024;
const READ_DEFAULT: u64 = 64 * 1024;
/// Longest pattern, and the compiled program's memory.
const PATTERN_MAX: usize = 1024;
const REGEX_SIZE: usize = 1024 * 1024;
/// Text a wait keeps for matches across reads, and the longest match it returns.
const WAIT_WINDOW: usize = 64 * 1024;
const MATCH_MAX: usize = 4096;

type Session = actix::Addr<pty::PtySession>;

pub(super) async fn read(
    session: Session,
    from_offset: Option<u64>,
    max_bytes: Option<u64>,
    strip: bool,
) -> Result<Reply, ApiError> {
    let max = max_bytes.unwrap_or(READ_DEFAULT).clamp(1, READ_MAX) as usize;
    let (bytes, mut state) = session
        .send(ReadOutput {
            from: from_offset,
            max,
        })
        .await
        .map_err(gone)??;
    let whole = whole_chars(&bytes);
    let text = String::from_utf8_lossy(&bytes[..whole]);
    state["data"] = json!(if strip {
        strip_ansi(&text)
    } else {
        text.into_owned()
    });
    let offset = state["offset"].as_u64().unwrap_or(0);
    state["nextOffset"] = json!(offset + whole as u64);
    Ok(Reply::ok(state))
}

pub(super) async fn screen(session: Session) -> Result<Reply, ApiError> {
    let (text, mut state) = session.send(ScreenTextOf).await.map_err(gone)??;
    state["text"] = json!(text.text);
    state["offset"] = json!(text.offset);
    state["rows"] = json!(text.rows);
    state["cols"] = json!(text.cols);
    state["cursor"] = json!({"row": text.cursor.0, "col": text.cursor.1});
    state["alternateScreen"] = json!(text.alternate_screen);
    Ok(Reply::ok(state))
}

fn compile(pattern: &str) -> Result<regex::Regex, ApiError> {
    if pattern.len() > PATTERN_MAX {
        return Err(ApiError::bad_request(format!(
            "pattern is {} bytes; at most {PATTERN_MAX}",
            pattern.len()
        )));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE)
        .dfa_size_limit(REGEX_SIZE)
        .build()
        .map_err(|e| ApiError::bad_request(format!("pattern is not a valid regex: {e}")))
}

/// Keeps the last `WAIT_WINDOW` bytes of `text`, cut on a character boundary.
fn keep_tail(text: &mut String) {
    if text.len() > WAIT_WINDOW {
        let mut cut = text.len() - WAIT_WINDOW;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
}

fn clip(text: &str) -> &str {
    let mut end = text.len().min(MATCH_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Reads on from `from_offset` (the end now, when absent) until the text
/// (escapes stripped) matches `pattern`, the session exits, or `timeout`.
pub(super) async fn wait(
    session: Session,
    pattern: Option<String>,
    from_offset: Option<u64>,
    timeout: Duration,
) -> Result<Reply, ApiError> {
    let regex = pattern.as_deref().map(compile).transpose()?;
    let mut progress = session.send(WatchProgress).await.map_err(gone)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut offset = from_offset.unwrap_or(progress.borrow().end);
    let mut window = String::new();
    let answer = |matched: Option<&str>, state: &Value, next: u64, timed_out: bool| {
        let mut answer = json!({
            "id": state["id"],
            "matched": matched.is_some(),
            "match": matched.map(clip),
            "timedOut": timed_out,
            "nextOffset": next,
            "exited": state["exited"],
            "exitCode": state["exitCode"],
            "exitSignal": state["exitSignal"],
        });
        if matched.is_none() && !timed_out {
            answer["reason"] = json!("the session exited");
        }
        Ok(Reply::ok(answer))
    };
    loop {
        let (bytes, state) = session
            .send(ReadOutput {
                from: Some(offset),
                max: READ_MAX as usize,
            })
            .await
            .map_err(gone)??;
        let at = state["offset"].as_u64().unwrap_or(offset);
        let whole = whole_chars(&bytes);
        offset = at + whole as u64;
        if whole > 0 {
            window.push_str(&strip_ansi(&String::from_utf8_lossy(&bytes[..whole])));
            if let Some(found) = regex.as_ref().and_then(|r| r.find(&window)) {
                return answer(Some(found.as_str()), &state, offset, false);
            }
            keep_tail(&mut window);
        }
        let end = state["end"].as_u64().unwrap_or(offset);
        if offset + 3 < end {
            continue; // More is there already.
        }
        if state["exited"] == true {
            return answer(None, &state, offset, false);
        }
        tokio::select! {
            changed = progress.changed() => {
                // The session's actor is gone: it was removed.
                if changed.is_err() {
                    return Err(ApiError::unavailable("the session was removed while waiting"));
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                return answer(None, &state, offset, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_bounded() {
        assert!(compile("BUILD (SUCCESSFUL|FAILED)").is_ok());
        assert!(compile("(unclosed").is_err_and(|e| e.status == 400));
        assert!(compile(&"a".repeat(PATTERN_MAX + 1)).is_err_and(|e| e.status == 400));
        // A program too large for its memory limit is refused, not built.
        assert!(compile(r"\w{1000}\w{1000}\w{1000}").is_err_and(|e| e.status == 400));
    }

    #[test]
    fn the_window_keeps_whole_characters() {
        let mut text = "€".repeat(WAIT_WINDOW);
        keep_tail(&mut text);
        assert!(text.len() <= WAIT_WINDOW && text.chars().all(|c| c == '€'));
        assert_eq!(clip(&"é".repeat(MATCH_MAX)).len(), MATCH_MAX);
    }
}
