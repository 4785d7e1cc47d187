//! atlas: a node of the Atlas network, which keeps a full replica of every
//! zone file whose hash was announced on chain.

pub mod api;
pub mod atlas;
pub mod chain;
pub mod config;
pub mod devnet;
pub mod metrics;
pub mod net;
pub mod sim;
pub mod store;
pub mod whitelist;
pub mod zonefile;
