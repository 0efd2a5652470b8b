//! The real `loopsy-relay` binary on a loopback port, driven over real
//! WebSockets (awc): registration, pairing tokens, splicing, revocation, the
//! refusals, and what a hostile client cannot do to it.

// Test code: a failed expectation is a failed test, so panicking is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod hardening;
mod postgres_server;
mod splicing;
mod support;
mod webapp;

/// Every test here on SQLite (`relay_on_postgres.rs` runs them on PostgreSQL).
const BACKEND: support::Backend = support::Backend::Sqlite;
