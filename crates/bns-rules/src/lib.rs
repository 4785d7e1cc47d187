//! The BNS rules exactly as the original indexer (blockstack-core 22.0.0.0 +
//! virtualchain 20.0.1.0) decides them: every operation's checks per epoch,
//! the consensus records and hashes, and the Atlas whitelist they yield.
//! The project's harness (`oracle/` at the workspace root) runs the original;
//! the tests compare against it.

pub mod commit;
pub mod consensus;
pub mod engine;
pub mod extract;
pub mod genesis;
pub mod hashing;
pub mod keyring;
pub mod long;
pub mod name_ops;
pub mod namespace_ops;
pub mod params;
pub mod payment;
pub mod price;
pub mod py2;
pub mod records;
pub mod replay;
pub mod state;
pub mod txparse;
