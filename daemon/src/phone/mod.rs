//! The phone path on the daemon's side (DESIGN §5, `docs/security.md`): the
//! `RelayLink` actor (`link`: the socket to the relay and the phone channels on
//! it), the channels' state machine (`channels`), the owner's operations
//! (`owner_ops`), the relay's HTTP side (`relay_client`), half-open detection
//! (`liveness`), the relay's origins for the app served on the LAN
//! (`relay_origins`), pairing windows (`pairing`, held by the Router, which decides
//! every pairing and connection: `router::phone_ops`), and what
//! is kept on disk (`store`).

pub mod channels;
pub mod link;
pub mod liveness;
pub mod owner_ops;
pub mod pairing;
pub mod relay_client;
pub mod relay_origins;
pub mod store;

pub use link::RelayLink;
pub use owner_ops::{IssuePairingToken, IssuedToken, RelayRequest};
pub use relay_origins::RelayOrigins;
