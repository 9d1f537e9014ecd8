//! kiln's containers. On this branch only the network module exists; the
//! rest of the crate is written on another branch and merged with it.

pub mod network;
