//! The node's integration tests, in one binary (one link instead of twelve):
//! nodes over real libp2p sockets, real redb files, the `atlas` binary as a
//! process, and the chain through a real ElectrumX.

mod common;

mod adversarial;
mod api;
mod api_limits;
mod chain_node;
mod chain_views;
mod crash;
mod electrumx;
mod inbox;
mod p2p_hardening;
mod replication;
mod store_corruption;
mod store_faults;
