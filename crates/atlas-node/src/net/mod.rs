//! libp2p glue: the wire codec, the behaviour, and the event loop that drives
//! the Atlas core with real sockets, a real store and a real clock.

// Public for the simulator's driver-parity test (`atlas-sim`).
pub mod adapter;
pub mod behaviour;
pub mod codec;
mod event_loop;
mod handle;
pub mod ip_limits;
mod listen;
pub mod node;

pub use handle::{NeighborRole, NodeError, NodeHandle, NodeStatus, PeerInfo, PutError, PutOutcome};
pub use node::{Node, NodeConfig, spawn};
