//! The MCP side of `LoopsyMcp`: what it offers (tools; every protocol
//! revision rmcp knows, so clients that still send `initialize` and those
//! that do not both work), and a tool call's way to its handler. Every
//! failure of a call, even an unknown tool, is a tool result with `isError`
//! and a sentence saying what to do, never a protocol error: agents show
//! those opaquely.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::args::Args;
use super::{Answer, LoopsyMcp, ToolError, guides, tools};

const INSTRUCTIONS: &str = "loopsy runs commands, sessions, files, a shared key/value context and messages on this machine and on its paired peers. Name a peer by hostname, node id or a unique node-id prefix (loopsy_list_peers). You never need a key: the local daemon holds every credential.";

fn known_arguments(name: &str) -> Option<Vec<String>> {
    let tool = tools::all().into_iter().find(|t| t.name == name)?;
    let properties = tool.input_schema.get("properties")?.as_object()?;
    Some(properties.keys().cloned().collect())
}

/// Text only: structured content would be checked against the tool's output
/// schema, which describes its success (the MCP Inspector refuses it).
fn failure(error: ToolError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(error.0)])
}

/// The structured result, and as text its one-line summary then the same
/// JSON (for clients that show a model only the text).
fn success(answer: Answer) -> CallToolResult {
    let json = answer.value.to_string();
    let mut result = CallToolResult::structured(answer.value);
    result.content = vec![ContentBlock::text(answer.line), ContentBlock::text(json)];
    result
}

/// The client's name and version, as it gave them at `initialize`.
fn client_of(context: &RequestContext<RoleServer>) -> (String, String) {
    match context.peer.peer_info() {
        Some(info) => (
            info.client_info.name.clone(),
            info.client_info.version.clone(),
        ),
        None => ("an MCP client".into(), String::new()),
    }
}

impl LoopsyMcp {
    async fn dispatch(&self, name: &str, args: &Args) -> Result<Answer, ToolError> {
        match name {
            "loopsy_list_peers" => self.list_peers(args).await,
            "loopsy_peer_status" => self.peer_status(args).await,
            "loopsy_execute" => self.execute(args).await,
            "loopsy_job_status" => self.job_status(args).await,
            "loopsy_job_output" => self.job_output(args).await,
            "loopsy_job_cancel" => self.job_cancel(args).await,
            "loopsy_session_start" => self.session_start(args).await,
            "loopsy_session_list" => self.session_list(args).await,
            "loopsy_session_read" => self.session_read(args).await,
            "loopsy_session_screen" => self.session_screen(args).await,
            "loopsy_session_send" => self.session_send(args).await,
            "loopsy_session_wait" => self.session_wait(args).await,
            "loopsy_session_stop" => self.session_stop(args).await,
            "loopsy_session_remove" => self.session_remove(args).await,
            "loopsy_transfer_file" => self.transfer_file(args).await,
            "loopsy_list_remote_files" => self.list_remote_files(args).await,
            "loopsy_context_set" => self.context_set(args).await,
            "loopsy_context_get" => self.context_get(args).await,
            "loopsy_context_list" => self.context_list(args).await,
            "loopsy_context_delete" => self.context_delete(args).await,
            "loopsy_broadcast_context" => self.broadcast_context(args).await,
            "loopsy_send_message" => self.send_message(args).await,
            "loopsy_check_inbox" => self.check_inbox(args).await,
            "loopsy_ack_message" => self.ack_message(args).await,
            "loopsy_check_ack" => self.check_ack(args).await,
            other => Err(ToolError(format!(
                "there is no tool {other:?}; list them with tools/list (they all start with loopsy_)"
            ))),
        }
    }
}

impl ServerHandler for LoopsyMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("loopsy", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult {
            tools: tools::all(),
            ..Default::default()
        })
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult {
            resources: guides::resources(),
            ..Default::default()
        })
    }

    /// Resources are data, not tool calls: a daemon that is down or an unknown
    /// URI is a protocol error with the sentence that says what to do.
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (client, version) = client_of(&context);
        self.attach(&client, &version);
        self.read_guide_resource(&request.uri)
            .await
            .map(ReadResourceResponse::Complete)
            .map_err(|e| ErrorData::invalid_params(e.0, None))
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult {
            prompts: guides::prompts(),
            ..Default::default()
        })
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        guides::prompt(&request.name, &request.arguments)
            .map(GetPromptResponse::Complete)
            .map_err(|e| ErrorData::invalid_params(e.0, None))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (client, version) = client_of(&context);
        self.attach(&client, &version);
        let name = request.name.as_ref();
        let outcome = match known_arguments(name) {
            None => self.dispatch(name, &Args::empty()).await,
            Some(known) => match Args::new(name, request.arguments, &known) {
                Ok(args) => self.dispatch(name, &args).await,
                Err(error) => Err(error),
            },
        };
        if let Err(error) = &outcome {
            tracing::info!(tool = name, error = %error.0, "tool call failed");
        }
        Ok(CallToolResponse::Complete(match outcome {
            Ok(answer) => success(answer),
            Err(error) => failure(error),
        }))
    }
}
