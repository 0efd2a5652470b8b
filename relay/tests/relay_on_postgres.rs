//! Every relay test of `tests/relay/` again, each relay on a database of its
//! own on a real PostgreSQL server that this binary starts.

// Test code: a failed expectation is a failed test, so panicking is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "relay/balancer.rs"]
mod balancer;
/// Several nodes behind HAProxy: only with a database they can share.
#[path = "relay/fleet.rs"]
mod fleet;
#[path = "relay/hardening.rs"]
mod hardening;
#[path = "relay/postgres_server.rs"]
mod postgres_server;
#[path = "relay/splicing.rs"]
mod splicing;
#[path = "relay/support.rs"]
mod support;
#[path = "relay/webapp.rs"]
mod webapp;

const BACKEND: support::Backend = support::Backend::Postgres;
