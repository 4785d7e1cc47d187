//! The whitelist from Bitcoin: a follower that reads the chain through
//! Electrum servers (`electrum`, behind the `backend::ChainBackend` trait),
//! verifies headers, proof of work and merkle branches (`verify`), waits for
//! confirmations and follows reorganisations (`follower`), decides BNS with
//! `bns_rules`, and streams the zone-file whitelist to the node (`source`,
//! `connect`). What it saves goes through [`ChainStore`], which the node's
//! redb store implements.

pub mod backend;
pub mod connect;
pub mod electrum;
pub mod follower;
pub mod saved;
pub mod source;
pub mod verify;
pub mod whitelist;

pub use saved::{ChainDelta, ChainStore, ChainStoreError, MemoryChainStore, SavedChain};

/// A network's name as the config spells it: rust-bitcoin calls mainnet
/// "bitcoin", which an operator reading `/v1/status` would not expect.
pub fn network_name(network: bitcoin::Network) -> String {
    match network {
        bitcoin::Network::Bitcoin => "mainnet".into(),
        other => other.to_string(),
    }
}
