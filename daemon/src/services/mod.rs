//! Services the Router dispatches admitted requests to. Each owns its state and
//! does its blocking work off the Router's thread.

pub mod context;
pub mod exec;
pub mod messages;
pub mod transfer;
