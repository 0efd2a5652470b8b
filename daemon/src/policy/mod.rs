//! Policy decisions the Router applies before anything runs: which commands may
//! be executed, which arguments an agent may get without auto-approve, and which
//! paths may be read or written. Pure functions: no I/O, easy to test exhaustively.

pub mod agent_args;
pub mod command_guard;
pub mod path_guard;
