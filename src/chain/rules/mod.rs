//! The BNS rules exactly as the original indexer (blockstack-core 22.0.0.0 +
//! virtualchain 20.0.1.0) decides them: every operation's checks per epoch,
//! the consensus records and hashes, and the Atlas whitelist they yield.
//! `../shared/oracle` runs the original; the tests compare against it.

pub mod consensus;
pub mod py2;
