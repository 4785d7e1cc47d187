//! Scaffolding for tests, benchmarks and the devnet; never linked into the
//! `atlas` binary.
//!
//! - a regtest chain of real, signed blocks (`regtest`), BNS transactions on
//!   it (`builder`), and the chain as a follower's backend (`backend`);
//! - a bitcoind-compatible JSON-RPC server over that chain (`rpc`), so a real
//!   ElectrumX or the original indexer can read it;
//! - seeded BNS histories with the original's verdict for each operation
//!   (`bnsgen`);
//! - harnesses: the original indexer (`oracle`, `verdicts`), ElectrumX from
//!   PyPI (`electrumx`, `venv`), and the real zone-file corpus (`corpus`).

pub mod backend;
pub mod bnsgen;
pub mod builder;
pub mod corpus;
pub mod electrumx;
pub mod oracle;
pub mod paths;
pub mod regtest;
pub mod rpc;
pub mod venv;
pub mod verdicts;
