//! One module per CLI command.

pub mod context;
pub mod doctor;
pub mod exec;
pub mod init;
pub mod key;
pub mod logs;
pub mod mcp_register;
pub mod pair;
pub mod peers;
pub mod phone;
pub mod qr;
pub mod sessions;
pub mod shell;
pub mod start;
pub mod status;
pub mod stop;
pub mod transfer;
pub mod transfer_peer;
pub mod up;
