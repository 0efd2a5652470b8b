//! Policy decisions the Router applies before anything runs: which commands may
//! be executed. Pure functions: no I/O, easy to test exhaustively.

pub mod command_guard;
