//! Messaging protocol v1 (spec §7), exactly as the original lays it out over
//! the context store, so a mixed fleet with TypeScript Loopsies reads each
//! other's messages: the envelope `{from, to, ts, id, type, body}` stored as
//! JSON text, ids `<ms>-<hostname>-<4 hex>`, and the keys and TTLs below.

use serde_json::{Value, json};

/// Message types the protocol knows.
pub const KINDS: [&str; 5] = ["chat", "request", "response", "ack", "broadcast"];
/// TTLs of an inbox entry, an outbox entry and an acknowledgement (seconds).
pub const INBOX_TTL: f64 = 3600.0;
pub const OUTBOX_TTL: f64 = 3600.0;
pub const ACK_TTL: f64 = 7200.0;
/// The longest body a message may carry (the context store's value cap bounds it too).
pub const MAX_BODY: usize = 64 * 1024;

/// `inbox:<recipient>:<id>`, on the recipient.
pub fn inbox_key(recipient: &str, id: &str) -> String {
    format!("inbox:{recipient}:{id}")
}

/// The prefix of `recipient`'s inbox.
pub fn inbox_prefix(recipient: &str) -> String {
    format!("inbox:{recipient}:")
}

/// `outbox:<id>`, on the sender.
pub fn outbox_key(id: &str) -> String {
    format!("outbox:{id}")
}

/// `ack:<receiver>`, on the sender: the last id the receiver handled.
pub fn ack_key(receiver: &str) -> String {
    format!("ack:{receiver}")
}

fn hostname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `id` is `^\d+-[a-zA-Z0-9_.-]+-[a-f0-9]{4}$`, as the original checks.
pub fn valid_id(id: &str) -> bool {
    let Some((ms, rest)) = id.split_once('-') else {
        return false;
    };
    let Some((host, hex)) = rest.rsplit_once('-') else {
        return false;
    };
    !ms.is_empty()
        && ms.bytes().all(|b| b.is_ascii_digit())
        && !host.is_empty()
        && host.chars().all(hostname_char)
        && hex.len() == 4
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A message id for `hostname` at `ms` (characters the id pattern does not
/// allow become `-`, so our ids always validate where the original's may not).
pub fn message_id(ms: u64, hostname: &str, random: u16) -> String {
    let host: String = hostname
        .chars()
        .map(|c| if hostname_char(c) { c } else { '-' })
        .collect();
    format!("{ms}-{host}-{random:04x}")
}

/// The envelope of a message.
pub fn envelope(from: &str, to: &str, ts: u64, id: &str, kind: &str, body: &str) -> Value {
    json!({"from": from, "to": to, "ts": ts, "id": id, "type": kind, "body": body})
}

/// An envelope as stored or received, checked as the original checks it.
pub fn check(envelope: &Value) -> Result<(), String> {
    let text = |field: &str| envelope.get(field).and_then(Value::as_str);
    let (Some(from), Some(to), Some(id), Some(kind), Some(body)) = (
        text("from"),
        text("to"),
        text("id"),
        text("type"),
        text("body"),
    ) else {
        return Err("an envelope has string fields from, to, id, type and body".into());
    };
    if envelope
        .get("ts")
        .and_then(Value::as_u64)
        .is_none_or(|ts| ts == 0)
    {
        return Err("an envelope's ts is a positive whole number of milliseconds".into());
    }
    if from.is_empty() || to.is_empty() {
        return Err("an envelope names its sender and recipient".into());
    }
    if !valid_id(id) {
        return Err(format!(
            "'{id}' is not a message id (<ms>-<hostname>-<4 hex>)"
        ));
    }
    if !KINDS.contains(&kind) {
        return Err(format!("type '{kind}' is not one of {}", KINDS.join(", ")));
    }
    if body.len() > MAX_BODY {
        return Err(format!("a body is at most {MAX_BODY} bytes"));
    }
    Ok(())
}

/// A stored inbox value (JSON text, or a JSON object from a client that
/// stored one) as an envelope, if it is a valid one.
pub fn parse_stored(value: &str) -> Option<Value> {
    let mut parsed: Value = serde_json::from_str(value).ok()?;
    // A JSON string holding the envelope's JSON (stored twice-encoded).
    if let Some(inner) = parsed.as_str() {
        parsed = serde_json::from_str(inner).ok()?;
    }
    check(&parsed).ok().map(|()| parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original's layout, key for key (spec §7.2), and an envelope it wrote.
    #[test]
    fn keys_ids_and_envelopes_are_the_originals() {
        assert_eq!(
            inbox_key("mira", "1733140800000-kai-0a1f"),
            "inbox:mira:1733140800000-kai-0a1f"
        );
        assert_eq!(
            outbox_key("1733140800000-kai-0a1f"),
            "outbox:1733140800000-kai-0a1f"
        );
        assert_eq!(ack_key("mira"), "ack:mira");
        assert_eq!(inbox_prefix("mira"), "inbox:mira:");
        assert_eq!((INBOX_TTL, OUTBOX_TTL, ACK_TTL), (3600.0, 3600.0, 7200.0));
        let from_typescript = r#"{"from":"kai","to":"mira","ts":1733140800000,"id":"1733140800000-kai-0a1f","type":"request","body":"run the tests"}"#;
        let parsed = parse_stored(from_typescript).expect("valid");
        assert_eq!(parsed["body"], "run the tests");
        assert_eq!(
            envelope(
                "kai",
                "mira",
                1733140800000,
                "1733140800000-kai-0a1f",
                "request",
                "run the tests"
            ),
            parsed
        );
    }

    #[test]
    fn ids_are_checked_as_the_original_checks_them() {
        assert!(valid_id("1733140800000-kai.local-0a1f"));
        assert!(valid_id("1-my-host-ffff"));
        for bad in [
            "",
            "x-kai-0a1f",
            "1-kai-0A1F",
            "1-kai-0a1",
            "1--0a1f",
            "1-k ai-0a1f",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert_eq!(message_id(5, "Kai's Mac", 0x0a1f), "5-Kai-s-Mac-0a1f");
        assert!(valid_id(&message_id(5, "Kai's Mac", 7)));
    }

    #[test]
    fn bad_envelopes_are_refused() {
        let good = envelope("kai", "mira", 1, "1-kai-0000", "chat", "hi");
        assert_eq!(check(&good), Ok(()));
        for (field, value) in [
            ("ts", json!(0)),
            ("ts", json!("1")),
            ("type", json!("shout")),
            ("id", json!("nope")),
            ("body", json!(7)),
            ("from", json!("")),
            ("body", json!("x".repeat(MAX_BODY + 1))),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            assert!(check(&bad).is_err(), "{field}");
        }
        assert_eq!(parse_stored("not json"), None);
        assert!(parse_stored(&json!(good.to_string()).to_string()).is_some());
    }
}
