//! libp2p glue: the wire codec, the behaviour, and the event loop that drives
//! the Atlas core with real sockets, a real store and a real clock.

pub mod behaviour;
pub mod codec;
pub mod wire;
