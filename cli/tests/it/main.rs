//! Integration tests: the real `loopsy` binary, in a fresh temp data dir, on a
//! free loopback port. One test binary (fewer links on 2 cores), one module per area.

// Test code: a failed expectation is a failed test, so panicking is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod harness;

/// The phone app away from the relay: app origins, a hostile relay.
mod app_origin;

/// The audit log and `loopsy logs`.
mod audit;
/// Capabilities attacked with peer keys: session rights, scopes, caps, auto-approve.
mod capabilities;
/// Golden request/response pairs from the original's spec.
mod compat;
/// Shell completions and the man page.
mod completions;
/// Configuration layers, errors, warnings, permissions, doctor.
mod config;
/// The shared context store: shapes, bad input, cap, expiry, durability, CLI.
mod context;
/// Execute: shapes, the command guard, limits, streaming, cancel, CLI.
mod exec;
/// No input disables the daemon: bounds, a hostile relay, random JSON, a dying Router.
mod hardening;
/// The LAN HTTP API: shapes, auth errors, Host/Origin policy, bad input.
mod http_api;
/// Key rotation and hand edits of keys, without restarts.
mod keys;
/// init → start → status → stop, double start, kill -9 recovery, signals.
mod lifecycle;
/// `loopsy mcp` through the official MCP Python SDK: every tool, bad input, no daemon.
mod mcp;
/// Messages between agents through `loopsy mcp`, in the original's layout; forged senders.
mod mcp_messages;
/// `loopsy mcp add|remove|status` with stand-in agents and an opencode config.
mod mcp_register;
/// Network namespaces joined by veth, for tests that need real network stacks.
mod netns;
/// Attacks on pairing and peer calls with a hostile party in the middle.
mod peer_attacks;
/// Files to and from a paired peer through the daemon.
mod peer_transfer;
/// LAN peers: pairing through the CLI, calls through peer links, the attacks on pairing.
mod peers;
/// Avahi (the desktop mDNS stack) lists our service and TXT records.
mod peers_avahi;
/// LAN peers in two network namespaces joined by veth: mDNS, pairing, exec.
mod peers_netns;
/// Peers that run the original TypeScript Loopsy: copied keys, REST routes, minted keys.
mod peers_typescript;
/// The phone path: pairing, sessions through the relay, what the relay sees, revocation.
mod phone;
mod phone_relay;
mod qr;

/// Rate limits: 429 with Retry-After, then recovery.
mod rate_limit;
/// The daemon and a phone on a relay fleet (PostgreSQL, HAProxy).
mod relay_fleet;
/// PTY sessions: echo, resize, snapshots, offsets, exit, names, bad input.
mod sessions;
/// `loopsy shell` / `attach` through a real PTY.
mod terminal;
/// A phone in Rust that speaks exactly what the web app speaks.
mod test_phone;
/// Repository rules: module docs, the architecture doc's module map.
mod tidy;
/// File transfer: round trips, path escapes, cut-off and oversized pushes, CLI.
mod transfer;
/// The Unix socket: JSON-RPC, garbled and oversized frames.
mod unix_socket;
/// The phone web app's checks (type checks, its Noise against the Rust vectors).
mod web;
