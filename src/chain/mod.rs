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

/// A network's name as the config spells it: rust-bitcoin calls mainnet
/// "bitcoin", which an operator reading `/v1/status` would not expect.
pub fn network_name(network: bitcoin::Network) -> String {
    match network {
        bitcoin::Network::Bitcoin => "mainnet".into(),
        other => other.to_string(),
    }
}
