//! What the API and tests hold of a running node: a handle that talks to its
//! event loop, the status it publishes, and the commands it understands.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::store::{Store, StoreError, StoreHealth};
use crate::whitelist::ChainStatus;
use atlas_core::zonefile::Hash160;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("identity key {path}: {message}")]
    Identity { path: String, message: String },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("libp2p transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: Multiaddr, message: String },
    #[error("the node has stopped")]
    Stopped,
}

/// A node's state as `/v1/status` shows it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct NodeStatus {
    pub peer_id: String,
    pub listen_addrs: Vec<String>,
    pub neighbors: usize,
    pub outbound_neighbors: usize,
    /// Neighbours on a different chain (their whitelist parts from ours).
    pub diverged_neighbors: usize,
    pub connected: usize,
    pub peers_known: usize,
    pub announced: u64,
    pub present: u64,
    pub missing: u64,
    pub pending: u64,
    /// Penalties this node has given peers since it started.
    pub penalties: u64,
    /// Requests to peers that got no answer (unreachable, closed, timed out,
    /// refused, malformed) since it started; by reason in the metrics.
    pub request_failures: u64,
    pub chain: ChainStatus,
    pub store: StoreHealth,
}

/// Which side dialled a neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighborRole {
    Outbound,
    Inbound,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub addrs: Vec<String>,
    pub neighbor: Option<NeighborRole>,
    pub inventory: Option<u64>,
    /// A neighbour's whitelist against ours: same, behind, ahead, or
    /// diverged (then not a source of inventories beyond the shared prefix).
    pub chain: Option<atlas_core::Agreement>,
    pub connected: bool,
    pub health: f64,
    pub banned: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// Announced and now held; `new` is false if it was held already.
    Stored { hash: Hash160, new: bool },
    /// Not announced yet: kept in the pending inbox.
    Pending { hash: Hash160 },
}

/// Why an upload was not kept. The API answers 507 for `NoSpace`, 503 otherwise.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    #[error("not stored: the disk is full ({0}); free space on the node's data_dir")]
    NoSpace(String),
    #[error("not stored: the store failed ({0})")]
    Store(String),
    #[error("the node has stopped")]
    Stopped,
}

impl From<crate::store::StoreError> for PutError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_out_of_space() {
            PutError::NoSpace(e.to_string())
        } else {
            PutError::Store(e.to_string())
        }
    }
}

pub(super) enum Command {
    Put {
        bytes: Bytes,
        /// Who sent it, for the pending inbox's per-source fairness.
        source: String,
        reply: oneshot::Sender<Result<PutOutcome, PutError>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    Shutdown,
}

/// A cheap, cloneable handle on a running node.
#[derive(Clone)]
pub struct NodeHandle {
    pub peer_id: PeerId,
    pub store: Arc<Store>,
    pub registry: Arc<Mutex<Registry>>,
    pub status: watch::Receiver<NodeStatus>,
    pub(super) commands: mpsc::Sender<Command>,
}

impl NodeHandle {
    /// Stores (or stashes) an upload; `Ok` only once it is committed to disk.
    pub async fn put_zonefile(&self, bytes: Bytes) -> Result<PutOutcome, PutError> {
        self.put_zonefile_from(bytes, "local").await
    }

    /// As `put_zonefile`, naming the sender (e.g. `ip:203.0.113.7`): if the
    /// file waits in the pending inbox, a flood from one sender evicts its
    /// own uploads first, not others'.
    pub async fn put_zonefile_from(
        &self,
        bytes: Bytes,
        source: &str,
    ) -> Result<PutOutcome, PutError> {
        let (reply, rx) = oneshot::channel();
        let source = source.to_string();
        self.commands
            .send(Command::Put {
                bytes,
                source,
                reply,
            })
            .await
            .map_err(|_| PutError::Stopped)?;
        rx.await.map_err(|_| PutError::Stopped)?
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Peers { reply })
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Waits until the node's status satisfies `f`.
    pub async fn wait_for(
        &self,
        f: impl FnMut(&NodeStatus) -> bool,
    ) -> Result<NodeStatus, NodeError> {
        let mut rx = self.status.clone();
        rx.wait_for(f)
            .await
            .map(|s| s.clone())
            .map_err(|_| NodeError::Stopped)
    }

    /// The first listen address with `/p2p/<id>` appended, for use as a seed.
    pub fn seed_addr(&self) -> Option<Multiaddr> {
        let s = self.status.borrow();
        let a: Multiaddr = s.listen_addrs.first()?.parse().ok()?;
        Some(a.with_p2p(self.peer_id).unwrap_or_else(|a| a))
    }
}
