//! Resources and prompts, as the original offers them: `loopsy://peers`,
//! `loopsy://status` and `loopsy://context` as JSON, and the prompts
//! `loopsy_help` (the tools and the conventions) and `loopsy_coordinate`
//! (a script for handing a task to a peer's agent).

use loopsy_transports::wire::method;
use rmcp::model::{
    GetPromptResult, Prompt, PromptArgument, PromptMessage, ReadResourceResult, Resource,
    ResourceContents, Role,
};
use serde_json::{Map, Value, json};

use super::{LoopsyMcp, ToolError};

/// The conventions, written for an agent (the same text as `docs/agents.md`).
const AGENTS_GUIDE: &str = include_str!("../../../docs/agents.md");

const RESOURCES: [(&str, &str, &str, &str); 3] = [
    (
        "loopsy://peers",
        "peers",
        method::PEERS_LIST,
        "The machines this one knows, paired or heard",
    ),
    (
        "loopsy://status",
        "status",
        method::STATUS,
        "This machine's daemon: identity, uptime, jobs, sessions",
    ),
    (
        "loopsy://context",
        "context",
        method::CONTEXT_LIST,
        "Every entry of this machine's shared context",
    ),
];

pub fn resources() -> Vec<Resource> {
    RESOURCES
        .iter()
        .map(|(uri, name, _, about)| {
            Resource::new(*uri, *name)
                .with_description(*about)
                .with_mime_type("application/json")
        })
        .collect()
}

pub fn prompts() -> Vec<Prompt> {
    let mut peer = PromptArgument::new("peer")
        .with_description("The peer to hand the task to: hostname, node id or prefix");
    peer.required = Some(true);
    let mut task = PromptArgument::new("task").with_description("What the peer's agent should do");
    task.required = Some(true);
    vec![
        Prompt::new(
            "loopsy_help",
            Some("What the loopsy tools do, and how agents on different machines work together"),
            None,
        ),
        Prompt::new(
            "loopsy_coordinate",
            Some(
                "Hand a task to the agent on a peer and see it through: request, wait, acknowledge, collect",
            ),
            Some(vec![peer, task]),
        ),
    ]
}

impl LoopsyMcp {
    pub(super) async fn read_guide_resource(
        &self,
        uri: &str,
    ) -> Result<ReadResourceResult, ToolError> {
        let Some((_, _, method, _)) = RESOURCES.iter().find(|(u, ..)| *u == uri) else {
            return Err(ToolError(format!(
                "no resource {uri}; there are loopsy://peers, loopsy://status and loopsy://context"
            )));
        };
        let value = self.daemon.call(method, json!({})).await?;
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type("application/json"),
        ]))
    }
}

fn argument<'a>(
    arguments: &'a Option<Map<String, Value>>,
    name: &str,
) -> Result<&'a str, ToolError> {
    arguments
        .as_ref()
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ToolError(format!("the prompt needs `{name}`")))
}

pub fn prompt(
    name: &str,
    arguments: &Option<Map<String, Value>>,
) -> Result<GetPromptResult, ToolError> {
    let text = match name {
        "loopsy_help" => AGENTS_GUIDE.to_owned(),
        "loopsy_coordinate" => {
            let (peer, task) = (argument(arguments, "peer")?, argument(arguments, "task")?);
            format!(
                "Hand this task to the agent on {peer} and see it through: {task}\n\n\
                 1. loopsy_peer_status {peer}: is it up? If not, say so and stop.\n\
                 2. Pick a task id (a timestamp) and loopsy_context_set on {peer}: task:<id> = \
                 {{\"id\", \"from\": your hostname, \"assignee\": \"{peer}\", \"description\", \"status\": \"pending\", \"result\": null}}.\n\
                 3. loopsy_send_message to {peer}, type request, naming task:<id> and what is wanted.\n\
                 4. While you wait: loopsy_check_inbox every 5-10 s (give up after 10 minutes unless the task says otherwise), \
                 and loopsy_context_get task:<id> on {peer} to follow its status.\n\
                 5. When the response arrives: loopsy_ack_message it, read the result from task:<id>, \
                 and fetch any files it names with loopsy_transfer_file (pull).\n\
                 6. If the work is a command you can run yourself on {peer}, loopsy_execute or a \
                 loopsy_session_start + loopsy_session_wait there is quicker than a message.\n\n\
                 The conventions in full: the loopsy_help prompt."
            )
        }
        other => {
            return Err(ToolError(format!(
                "no prompt {other:?}; there are loopsy_help and loopsy_coordinate"
            )));
        }
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        text,
    )]))
}
