//! Pairing two daemons so that a hostile LAN cannot hijack it: the protocol's
//! pieces (`protocol`), the host's window (`host`) and the joining side (`join`).

pub mod host;
pub mod join;
pub mod protocol;
