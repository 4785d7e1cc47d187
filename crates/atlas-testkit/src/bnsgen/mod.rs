//! A seeded generator of BNS histories on the regtest chain, for the
//! differential test against the original indexer (`crates/atlas-testkit/tests/it/bns_differential.rs`).
//!
//! [`generate`] mines 101 blocks to mature coins, then a given number of
//! blocks mixing every operation, valid and broken in each way a rule of
//! the original refuses: stale, unknown and zero consensus hashes,
//! underpayment, wrong burn addresses and output positions, wrong output
//! counts, segwit senders and inputs, payloads of another epoch, missing or
//! foreign preorders, quotas, same-block collisions, keyring imports,
//! expiry and grace edges, expired namespace reveals. Valid operations quote recent consensus hashes
//! and pay the prices our own rule engine computes as it replays the chain
//! being built. What each transaction was meant to be is in [`Stats`].
//!
//! The parts: [`keys`] (spenders of every script type, keyring children),
//! [`wallet`] (coins and multi-input signing), [`ops`] (the original's
//! layouts, every field a parameter), and the generator itself.

pub mod chain_builder;
pub mod keys;
pub mod ops;
pub mod stats;
pub mod wallet;

mod expired;
mod generator;
mod imports;
mod model;
mod name_actions;
mod ns_actions;
mod registration;
mod scenarios;
mod tokens;

pub use chain_builder::ChainBuilder;
pub use generator::{Generated, generate};
pub use stats::{Expect, Intent, Stats, Tally, Verdict};
