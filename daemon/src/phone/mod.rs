//! The phone path on the daemon's side (DESIGN §5, `docs/security.md`): the
//! `RelayLink` actor (`link`) to the relay with every phone channel on it, its
//! half-open detection (`liveness`) and audit lines (`events`), pairing windows
//! (`pairing`), and what is kept on disk (`store`).

pub mod events;
pub mod link;
pub mod liveness;
pub mod pairing;
pub mod store;

pub use link::{RelayLink, RelayRequest};
