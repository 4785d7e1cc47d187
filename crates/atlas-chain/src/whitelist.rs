//! What a whitelist source streams to the node: the whitelist growing or
//! rolling back, and the state of the chain behind it. The chain follower is
//! one source ([`crate::source::ChainSource`]); the node has others (a file of
//! hashes, a list in memory).

use std::sync::Arc;

use atlas_core::zonefile::Hash160;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::ChainStore;

/// Where the whitelist's source stands, as `/v1/status` spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainState {
    /// No chain server has answered yet in this run.
    #[default]
    Connecting,
    /// A server answers and the whitelist follows the chain.
    Following,
    /// No chain server answers: the node keeps serving and replicating what
    /// it already knows, and keeps asking.
    Unavailable,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    pub state: ChainState,
    /// Why the last round against the chain servers failed, while unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub network: String,
    pub backend: String,
    pub height: u64,
    pub tip: String,
    pub confirmed_height: u64,
    pub consensus_hash: String,
    /// Set when the chain holds an operation at which the original indexer
    /// stops for good: the whitelist ends at the block before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
    /// When a round against the chain servers last succeeded (Unix seconds;
    /// 0: never in this run).
    pub last_success_unix: u64,
    /// Times the follower moved to another server (the one it used failed
    /// or fell behind), and servers it dropped for lying, since start.
    pub failovers: u64,
    pub servers_dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhitelistUpdate {
    Grew {
        from_index: u64,
        hashes: Vec<Hash160>,
    },
    RolledBack {
        to_index: u64,
    },
    Chain(ChainStatus),
}

pub trait WhitelistSource: Send + 'static {
    /// Starts streaming updates. `known` is the whitelist the node already
    /// has on disk; the source first rolls back whatever of it disagrees.
    fn start(
        self: Box<Self>,
        store: Arc<dyn ChainStore>,
        known: Vec<Hash160>,
        tx: mpsc::Sender<WhitelistUpdate>,
    );
}

/// The index of the first entry where `known` and `truth` disagree.
pub fn common_prefix(known: &[Hash160], truth: &[Hash160]) -> usize {
    known.iter().zip(truth).take_while(|(a, b)| a == b).count()
}

/// Seconds since the Unix epoch, by the wall clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
