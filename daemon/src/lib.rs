//! The loopsy daemon: one Actix system in which transport actors feed a single
//! Router actor, which authenticates, applies policy and rate limits, runs or
//! dispatches the operation, and audits it.
//!
//! # Layout
//! - [`run`]: starts the system, the transports and the Router; graceful shutdown.
//! - [`router`]: the Router actor: auth, Host/Origin policy, rate limits, audit, dispatch.
//! - [`policy`]: pure policy decisions the Router applies (command guard, …).
//! - [`audit`]: the audit writer (its own thread) and rotation.
//! - [`crash`]: a panic in an actor the daemon cannot serve without ends the process.
//! - [`config`]: `config.yaml` schema, layered loading, validation, safe edits.
//! - [`limits`]: upper bounds on every number from outside.
//! - [`instance`]: one daemon per data dir (lock, pid file, stale-file recovery).
//! - [`identity`]: persistent node id, protocol version, platform.
//! - [`secrets`]: key generation, digests, constant-time checks, strength.
//! - [`phone`]: the relay link, phone channels, pairing windows and their storage.
//! - [`peers`]: LAN peers: TLS identity, pairing, the peer list, one `PeerLink` each.
//! - [`sessions`]: PTY sessions: the manager and one `PtySession` actor each.
//! - [`services`]: what admitted requests run on (context store, …).
//! - [`state`]: `loopsy.db` (SQLite, WAL) and its migrations.
//! - [`durable`]: atomic private writes and private dirs.
//! - [`paths`]: the data-dir layout.

pub mod audit;
pub mod config;
pub mod crash;
pub mod durable;
pub mod identity;
pub mod instance;
pub mod limits;
pub mod mcp_client;
pub mod paths;
pub mod peers;
pub mod phone;
pub mod policy;
pub mod router;
pub mod run;
pub mod secrets;
pub mod services;
pub mod sessions;
pub mod state;
