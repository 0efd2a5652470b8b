//! Wire formats and transport actors of the loopsy daemon.
//!
//! # Layout
//! - [`wire`]: the typed [`wire::Request`], the [`wire::Evidence`] of its sender and the
//!   [`wire::Inbound`] message every transport sends to the Router.
//! - [`error`]: [`error::ApiError`], rendered as the original Loopsy's JSON error body or
//!   as a JSON-RPC error object.
//! - [`framing`]: length-prefixed frames of the Unix socket, with a size cap.
//! - [`jsonrpc`]: JSON-RPC 2.0 messages (jsonrpsee-types) to and from requests.
//! - [`framed_connection`]: one client of the framed JSON-RPC protocol, over any carrier.
//! - [`unix_socket`]: the `UnixSocket` transport actor (owner's channel).
//! - [`lan_http`]: the `LanHttp` transport actor (REST `/api/v1` and `/rpc`).
//! - [`e2e`]: the end-to-end encrypted phone channel (Noise handshakes, sealed frames).
//! - [`relay_wire`]: frames and control messages between the relay, laptops and phones.
//! - [`secrets`]: random secrets, hex, SHA-256 digests compared in constant time.
//! - [`client`]: a blocking client for the Unix socket, used by the CLI.
//!
//! Transports decide nothing: they translate bytes into requests and answers back.

pub mod client;
pub mod clock;
pub mod e2e;
pub mod error;
pub mod framed_connection;
pub mod framing;
pub mod jsonrpc;
pub mod lan_http;
pub mod peer_tls;
pub mod relay_wire;
pub mod secrets;
pub mod unix_socket;
pub mod wire;
