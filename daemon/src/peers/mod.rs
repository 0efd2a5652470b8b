//! LAN peers: the daemon's TLS identity, the paired peers in `loopsy.db`, the
//! pairing protocol (host window and joining side), the client of the peer
//! wire, and one `PeerLink` actor per paired peer. Peers that run the original
//! TypeScript Loopsy are reached over its REST routes (`typescript_rest`) and
//! call us with keys minted for them (`typescript_keys`).

pub mod client;
pub mod discovery;
pub mod link;
pub mod link_push;
pub mod link_transfer;
pub mod pairing;
pub mod store;
pub mod tls_identity;
pub mod typescript_keys;
pub mod typescript_rest;
