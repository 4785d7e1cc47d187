//! The chain's and the BNS rules' integration tests, in one binary: the
//! follower and `VerifiedChain` on the regtest chain, the JSON-RPC server,
//! and the rules against the original indexer (golden fixtures, scripted
//! histories, seeded differential runs).

mod bns_differential;
mod bns_golden;
mod bns_scripted;
mod follower;
mod rpc;
mod verified_chain;
