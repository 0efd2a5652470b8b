//! LAN peers: the daemon's TLS identity, the paired peers in `loopsy.db`, the
//! pairing protocol (host window and joining side), the client of the peer
//! wire, and one `PeerLink` actor per paired peer.

pub mod client;
pub mod discovery;
pub mod link;
pub mod link_transfer;
pub mod pairing;
pub mod store;
pub mod tls_identity;
