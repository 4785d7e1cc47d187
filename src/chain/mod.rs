//! Reading the whitelist from Bitcoin: the BNS wire format, BNS operations in
//! transactions, verification of headers and merkle proofs, and an in-process
//! regtest chain of real blocks. The Electrum follower builds on these.

pub mod backend;
pub mod bns;
pub mod bnsgen;
pub mod builder;
pub mod connect;
pub mod electrum;
pub mod follower;
#[cfg(test)]
mod follower_tests;
pub mod regtest;
pub mod rpc;
pub mod rules;
pub mod source;
pub mod tx;
pub mod verify;
