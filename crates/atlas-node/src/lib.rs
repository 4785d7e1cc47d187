//! The atlas node: libp2p around the protocol core (`net`), the redb store
//! (`store`), the HTTP API (`api`), Prometheus metrics (`metrics`), the typed
//! config (`config`), whitelist sources besides the chain (`whitelist`), and
//! the command line (`cli`) of the `atlas` binary.

pub mod api;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod net;
pub mod store;
pub mod whitelist;
