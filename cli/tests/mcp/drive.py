"""Drives `loopsy mcp` with the official MCP Python SDK (`pip install mcp`),
as an agent's client would: it spawns the server on stdio, lists the tools
and calls them. Each scenario prints one JSON object per step on stdout for
the Rust test to check against the daemons it started; a broken protocol
exchange fails here with a traceback.

    python3 drive.py SCENARIO LOOPSY_BINARY DATA_DIR HOME [key=value ...]
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.stdio import StdioServerParameters


def report(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def outcome(result):
    """A tool result as plain data: error flag, text and structured content."""
    text = " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    return {
        "isError": bool(result.is_error),
        "text": text,
        "structured": result.structured_content,
    }


async def call(client, step, tool, arguments):
    result = await client.call_tool(tool, arguments)
    report(step, tool=tool, **outcome(result))
    return result


async def full(client, opts):
    peer, other = opts["peer"], opts["other"]
    await call(client, "list_peers", "loopsy_list_peers", {})
    await call(client, "peer_status", "loopsy_peer_status", {"peer": peer})
    await call(client, "exec_here", "loopsy_execute", {"command": "echo", "args": ["from", "here"]})
    await call(client, "exec_peer", "loopsy_execute", {"command": "pwd", "peer": peer})
    # A command that outlives the wait becomes a job.
    started = await call(client, "exec_long", "loopsy_execute", {
        "command": "sh", "args": ["-c", "echo begun; sleep 2; echo ended"], "wait_seconds": 0.3})
    job = started.structured_content["job_id"]
    for _ in range(100):
        status = await client.call_tool("loopsy_job_status", {"job_id": job})
        if not status.structured_content["running"]:
            break
        await asyncio.sleep(0.1)
    report("job_done", **outcome(status))
    await call(client, "job_output", "loopsy_job_output", {"job_id": job, "offset": 2, "max_bytes": 5})
    cancelled = await call(client, "exec_cancel", "loopsy_execute", {
        "command": "sleep", "args": ["30"], "peer": peer, "wait_seconds": 0.5})
    await call(client, "job_cancel", "loopsy_job_cancel", {"job_id": cancelled.structured_content["job_id"]})
    # A shell on the peer, typed into and watched without polling.
    started = await call(client, "session_start", "loopsy_session_start", {
        "peer": peer, "command": "sh", "name": "build", "cols": 100, "rows": 30})
    sid = started.structured_content["session_id"]
    sent = await call(client, "session_send", "loopsy_session_send", {
        "peer": peer, "session_id": sid, "text": "echo the answer is $((6*7))", "enter": True})
    await call(client, "session_wait", "loopsy_session_wait", {
        "peer": peer, "session_id": sid, "pattern": r"answer is \d+", "timeout_seconds": 20,
        "from_offset": sent.structured_content["offset"]})
    await call(client, "session_read", "loopsy_session_read", {
        "peer": peer, "session_id": sid, "from_offset": sent.structured_content["offset"]})
    await call(client, "session_screen", "loopsy_session_screen", {"peer": peer, "session_id": "build"})
    await call(client, "session_list", "loopsy_session_list", {"peer": peer})
    await call(client, "session_wait_none", "loopsy_session_wait", {
        "peer": peer, "session_id": sid, "pattern": "never printed", "timeout_seconds": 0.5})
    await call(client, "session_stop", "loopsy_session_stop", {"peer": peer, "session_id": sid})
    await call(client, "session_wait_exit", "loopsy_session_wait", {
        "peer": peer, "session_id": sid, "from_offset": 0, "timeout_seconds": 20})
    await call(client, "session_remove", "loopsy_session_remove", {"peer": peer, "session_id": sid})
    await call(client, "push", "loopsy_transfer_file", {
        "direction": "push", "peer": peer, "source_path": opts["push_source"], "dest_path": "~/pushed.bin"})
    await call(client, "pull", "loopsy_transfer_file", {
        "direction": "pull", "peer": peer, "source_path": "~/pushed.bin", "dest_path": opts["pull_dest"]})
    await call(client, "list_files", "loopsy_list_remote_files", {"peer": peer, "path": "~"})
    await call(client, "ctx_set_peer", "loopsy_context_set", {"key": "build", "value": "green", "peer": peer})
    await call(client, "ctx_get_peer", "loopsy_context_get", {"key": "build", "peer": peer})
    await call(client, "ctx_set_here", "loopsy_context_set", {"key": "note", "value": "here", "ttl_seconds": 600})
    await call(client, "ctx_list_here", "loopsy_context_list", {"prefix": "no"})
    await call(client, "ctx_delete_here", "loopsy_context_delete", {"key": "note"})
    await call(client, "ctx_get_gone", "loopsy_context_get", {"key": "note"})
    await call(client, "broadcast", "loopsy_broadcast_context", {"key": "release", "value": "1.2.3"})
    await call(client, "ctx_get_other", "loopsy_context_get", {"key": "release", "peer": other})
    await guides(client, opts)


async def guides(client, opts):
    resources = await client.list_resources()
    report("resources", uris=[str(r.uri) for r in resources.resources])
    status = await client.read_resource("loopsy://status")
    report("status_resource", text=status.contents[0].text)
    prompts = await client.list_prompts()
    report("prompts", names=[p.name for p in prompts.prompts])
    coordinate = await client.get_prompt("loopsy_coordinate", {"peer": "kai", "task": "run the iOS build"})
    report("coordinate", text=coordinate.messages[0].content.text)
    helped = await client.get_prompt("loopsy_help", {})
    report("help", text=helped.messages[0].content.text)


async def bad_input(client, opts):
    peer = opts["peer"]
    cases = [
        ("unknown_tool", "loopsy_no_such_tool", {}),
        ("wrong_type", "loopsy_execute", {"command": 42}),
        ("missing", "loopsy_context_get", {}),
        ("unknown_arg", "loopsy_context_get", {"key": "k", "peerApiKey": "x"}),
        ("bad_wait", "loopsy_execute", {"command": "true", "wait_seconds": 1e9}),
        ("unknown_peer", "loopsy_peer_status", {"peer": "nobody-here"}),
        ("no_capability", "loopsy_context_set", {"key": "k", "value": "v", "peer": peer}),
        ("denied_command", "loopsy_execute", {"command": "rm", "args": ["-rf", "/"]}),
        ("outside_roots", "loopsy_transfer_file", {
            "direction": "pull", "peer": peer, "source_path": "/etc/shadow", "dest_path": opts["pull_dest"]}),
        ("huge_output", "loopsy_execute", {"command": "head", "args": ["-c", "20000000", "/dev/zero"]}),
        ("unknown_job", "loopsy_job_status", {"job_id": "job-999"}),
        ("unknown_session", "loopsy_session_read", {"session_id": "no-such-session"}),
        ("offline_peer", "loopsy_peer_status", {"peer": opts["gone"]}),
    ]
    # A session whose output is the worst case for a backtracking engine.
    started = await call(client, "regex_session", "loopsy_session_start", {
        "command": "sh", "args": ["-c", "printf '%040d!' 0 | tr 0 a; sleep 30"]})
    sid = started.structured_content["session_id"]
    cases += [
        ("bad_regex", "loopsy_session_wait", {"session_id": sid, "pattern": "(unclosed", "from_offset": 0}),
        ("catastrophic_regex", "loopsy_session_wait", {
            "session_id": sid, "pattern": "^(a+)+$", "from_offset": 0, "timeout_seconds": 1}),
    ]
    for step, tool, arguments in cases:
        await call(client, step, tool, arguments)
        # The server is alive after each: a cheap call still answers.
        alive = await client.call_tool("loopsy_context_list", {})
        report(step + "_then", **outcome(alive))


async def orphan(client, opts):
    # A command still running when the agent goes away.
    await call(client, "started", "loopsy_execute", {
        "command": "sleep", "args": [opts["seconds"]], "wait_seconds": 0.3})


async def send(client, opts):
    await call(client, "send", "loopsy_send_message", {"peer": opts["peer"], "type": "request", "body": "run the tests"})
    await call(client, "ack_before", "loopsy_check_ack", {"peer": opts["peer"]})


async def receive(client, opts):
    inbox = await call(client, "inbox", "loopsy_check_inbox", {})
    message = inbox.structured_content["messages"][0]
    await call(client, "ack", "loopsy_ack_message", {"message_key": message["key"], "message_id": message["id"]})
    await call(client, "inbox_after", "loopsy_check_inbox", {})


async def acked(client, opts):
    await call(client, "ack_after", "loopsy_check_ack", {"peer": opts["peer"]})


async def no_daemon(client, opts):
    await call(client, "context_get", "loopsy_context_get", {"key": "k"})
    await call(client, "list_peers", "loopsy_list_peers", {})
    await call(client, "execute", "loopsy_execute", {"command": "true"})


async def main():
    scenario, binary, data_dir, home = sys.argv[1:5]
    opts = dict(arg.split("=", 1) for arg in sys.argv[5:])
    server = StdioServerParameters(
        command=binary,
        args=["--data-dir", data_dir, "mcp"],
        env={"HOME": home, "LOOPSY_LOG": "info"},
    )
    # `legacy` sends `initialize` as clients before the 2026-07-28 revision do;
    # `auto` asks `server/discover` first.
    async with Client(server, mode=opts.get("mode", "auto")) as client:
        tools = await client.list_tools()
        report("tools", names=[t.name for t in tools.tools],
               complete=all(t.description and t.input_schema and t.output_schema for t in tools.tools),
               protocol=str(getattr(client, "protocol_version", "")))
        await {"full": full, "bad-input": bad_input, "no-daemon": no_daemon, "orphan": orphan,
        "send": send, "receive": receive, "acked": acked}[scenario](client, opts)


asyncio.run(main())
