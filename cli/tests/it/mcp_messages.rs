//! Messaging protocol v1 between agents (spec §7): a message sent through
//! `loopsy mcp` (the official Python SDK) lands in the peer's inbox in the
//! original's layout, is acknowledged there and seen acknowledged here; and a
//! paired daemon cannot write messages or acknowledgements as another machine.

use serde_json::Value;

use crate::mcp::{drive, ok, sdk_missing};
use crate::peers::{daemon, node_id, pair};

#[test]
fn a_message_goes_round_between_two_agents_in_the_originals_layout() {
    if sdk_missing() {
        return;
    }
    let (kai, mira) = (daemon(), daemon());
    pair(&mira, &kai, "messages", "messages");
    let mira_id = node_id(&mira);
    let sent = drive(&kai, "send", &[("peer", &mira_id)]);
    let message = ok(&sent, "send").clone();
    let id = message["id"].as_str().expect("id").to_owned();
    assert_eq!(ok(&sent, "ack_before")["acked"], Value::Null);
    // Stored as the original stores it (spec §7): the envelope's JSON text
    // under inbox:<recipient>:<id> on Mira, the same under outbox:<id> here.
    let to = message["to"].as_str().expect("to");
    let inbox_key = format!("inbox:{to}:{id}");
    assert_eq!(message["inboxKey"], inbox_key.as_str());
    let raw: Value =
        serde_json::from_str(&mira.ok(&["context", "get", &inbox_key, "--json"])).expect("json");
    let envelope: Value =
        serde_json::from_str(raw["value"].as_str().expect("text")).expect("envelope");
    let mut fields: Vec<&str> = envelope
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["body", "from", "id", "to", "ts", "type"]);
    assert_eq!(
        (envelope["type"].as_str(), envelope["body"].as_str()),
        (Some("request"), Some("run the tests"))
    );
    assert_eq!(raw["ttl"], 3600);
    let outbox: Value =
        serde_json::from_str(&kai.ok(&["context", "get", &format!("outbox:{id}"), "--json"]))
            .expect("json");
    assert_eq!(outbox["value"], raw["value"]);
    // Mira's agent reads and acknowledges it; Kai's sees the acknowledgement.
    let received = drive(&mira, "receive", &[]);
    assert_eq!(ok(&received, "inbox")["messages"][0]["id"], id.as_str());
    ok(&received, "ack");
    assert_eq!(
        ok(&received, "inbox_after")["messages"],
        serde_json::json!([])
    );
    let from = envelope["from"].as_str().expect("from");
    let ack: Value =
        serde_json::from_str(&kai.ok(&["context", "get", &format!("ack:{to}"), "--json"]))
            .expect("json");
    assert_eq!(
        (ack["value"].as_str(), ack["ttl"].as_u64()),
        (Some(id.as_str()), Some(7200))
    );
    let acked = drive(&kai, "acked", &[("peer", &mira_id)]);
    assert_eq!(ok(&acked, "ack_after")["acked"], id.as_str());
    assert_eq!(
        from, to,
        "both test daemons run on this machine, under its hostname"
    );
}

#[test]
fn a_paired_peer_cannot_deliver_or_acknowledge_as_another_machine() {
    let (kai, mira) = (daemon(), daemon());
    pair(&mira, &kai, "messages", "messages");
    let mira_id = node_id(&mira);
    let mut socket = crate::unix_socket::connect(&kai);
    let forged = serde_json::json!({"from": "someone-else", "to": "x", "ts": 1, "id": "1-someone-else-0000", "type": "chat", "body": "hi"});
    let mut ask = |id: u64, method: &str, params: Value| {
        let call = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "peers.call",
            "params": {"peer": mira_id, "method": method, "params": params}});
        crate::unix_socket::send(&mut socket, 1, call.to_string().as_bytes());
        crate::unix_socket::receive(&mut socket)
    };
    let hostname =
        serde_json::from_str::<Value>(&mira.ok(&["status", "--json"])).expect("json")["hostname"]
            .as_str()
            .expect("hostname")
            .to_owned();
    let mut as_other = forged.clone();
    as_other["to"] = hostname.clone().into();
    let refused = ask(
        1,
        "message.deliver",
        serde_json::json!({"envelope": as_other}),
    );
    assert_eq!(refused["error"]["data"]["httpStatus"], 403, "{refused}");
    let refused = ask(
        2,
        "message.acked",
        serde_json::json!({"receiver": "someone-else", "id": "1-x-0000"}),
    );
    assert_eq!(refused["error"]["data"]["httpStatus"], 403, "{refused}");
    // Garbage is a 400, and nothing reached Mira's inbox.
    let garbage = ask(
        3,
        "message.deliver",
        serde_json::json!({"envelope": {"from": 1}}),
    );
    assert_eq!(garbage["error"]["data"]["httpStatus"], 400, "{garbage}");
    assert!(!mira.ok(&["context", "list", "--json"]).contains("inbox:"));
}
