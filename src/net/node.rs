//! Starting a node: identity, store, swarm, whitelist source, and the handle
//! the API and tests use to talk to its event loop.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId, identity, noise, tcp, yamux};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::behaviour::{Behaviour, Limits};
use super::event_loop::EventLoop;
use crate::api::metrics::Metrics;
use crate::atlas::{Core, CoreConfig, Instant as CoreInstant};
use crate::store::{Store, StoreError, StoreHealth};
use crate::whitelist::{ChainStatus, WhitelistSource};
use crate::zonefile::Hash160;

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

/// What a node needs to start; `config::Validated` converts into it.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: std::path::PathBuf,
    pub listen: Vec<Multiaddr>,
    pub external: Vec<Multiaddr>,
    pub seeds: Vec<(PeerId, Multiaddr)>,
    /// Seeds known only by address; pinned once they answer.
    pub bare_seeds: Vec<Multiaddr>,
    pub core: CoreConfig,
    pub max_connections: u32,
    /// Inbound requests open at once per connection and protocol.
    pub max_inbound_streams: usize,
    pub pending_capacity: usize,
    /// Bytes the pending inbox may hold.
    pub pending_bytes: u64,
    /// Seeds the core's RNG; `None` draws one from the OS.
    pub rng_seed: Option<u64>,
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<std::path::PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("static multiaddr")],
            external: Vec::new(),
            seeds: Vec::new(),
            bare_seeds: Vec::new(),
            core: CoreConfig::default(),
            max_connections: 256,
            max_inbound_streams: 256,
            pending_capacity: 10_000,
            pending_bytes: 64 << 20,
            rng_seed: None,
        }
    }
}

/// A node's state as `/v1/status` shows it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct NodeStatus {
    pub peer_id: String,
    pub listen_addrs: Vec<String>,
    pub neighbors: usize,
    pub outbound_neighbors: usize,
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

#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub addrs: Vec<String>,
    pub neighbor: Option<&'static str>,
    pub inventory: Option<u64>,
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
    commands: mpsc::Sender<Command>,
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

pub struct Node {
    pub handle: NodeHandle,
    task: JoinHandle<()>,
}

impl Node {
    /// Asks the event loop to stop and waits for it (its store is closed after).
    pub async fn shutdown(self) {
        let _ = self.handle.commands.send(Command::Shutdown).await;
        let _ = self.task.await;
    }

    /// Stops the node at once, as a crash would (no final writes).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Loads the node's identity from `identity.key`, creating it on first start.
pub fn load_identity(data_dir: &Path) -> Result<identity::Keypair, NodeError> {
    let path = data_dir.join("identity.key");
    let err = |message: String| NodeError::Identity {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read(&path) {
        Ok(bytes) if bytes.is_empty() => Err(err(
            "is empty (cut short by a crash or a full disk?); move it away and the node makes a \
             new identity (its peer id changes), or restore it from a backup"
                .into(),
        )),
        // libp2p's own message names whichever key type it guessed (e.g. "cargo
        // feature 'rsa' is not enabled"), which says nothing to an operator.
        Ok(bytes) => identity::Keypair::from_protobuf_encoding(&bytes).map_err(|_| {
            err(format!(
                "is not an ed25519 key in libp2p's encoding ({} bytes); move it away and the node \
                 makes a new identity (its peer id changes), or restore it from a backup",
                bytes.len()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = identity::Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| err(e.to_string()))?;
            // Write then rename, so a crash never leaves half a key.
            let tmp = path.with_extension("key.tmp");
            write_private(&tmp, &bytes).map_err(|e| err(e.to_string()))?;
            std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Starts a node: it listens, loads its state, and runs until shut down.
pub async fn spawn(
    cfg: NodeConfig,
    whitelist: Box<dyn WhitelistSource>,
) -> Result<Node, NodeError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| NodeError::DataDir {
        path: cfg.data_dir.display().to_string(),
        source,
    })?;
    let key = load_identity(&cfg.data_dir)?;
    let peer_id = key.public().to_peer_id();
    let store = Arc::new(Store::open_with(
        &cfg.data_dir.join("atlas.redb"),
        crate::store::InboxLimits {
            count: cfg.pending_capacity,
            bytes: cfg.pending_bytes,
        },
    )?);

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let limits = Limits {
        max_connections: cfg.max_connections,
        max_per_peer: 2,
        max_pending: 64,
        max_pending_per_ip: 16,
        max_inbound_streams: cfg.max_inbound_streams,
    };
    let request_timeout = Duration::from_millis(cfg.core.request_timeout_ms);
    let codec_metrics = metrics.clone();
    let transport = |e: &dyn std::fmt::Display| NodeError::Transport(e.to_string());
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| transport(&e))?
        .with_bandwidth_metrics(&mut registry)
        .with_behaviour(|key| Behaviour::new(key, Some(codec_metrics), limits, request_timeout))
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(180)))
        .build();
    for addr in &cfg.listen {
        super::listen::check_free(addr).map_err(|message| NodeError::Listen {
            addr: addr.clone(),
            message,
        })?;
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Listen {
                addr: addr.clone(),
                message: e.to_string(),
            })?;
    }
    for addr in &cfg.external {
        swarm.add_external_address(addr.clone());
    }
    let p2p_metrics = libp2p::metrics::Metrics::new(&mut registry);

    let seed = cfg.rng_seed.unwrap_or_else(rand::random);
    let mut core = Core::new(cfg.core.clone(), peer_id, cfg.external.clone(), seed);
    let known = store.announcements()?;
    core.handle(
        CoreInstant::ZERO,
        crate::atlas::Event::WhitelistGrew {
            from_index: 0,
            hashes: known.clone(),
        },
    );
    core.restore_present(store.held_hashes()?);
    for (peer, addr) in &cfg.seeds {
        core.add_seed(*peer, vec![addr.clone()], CoreInstant::ZERO);
    }
    for (peer, addrs) in store.load_peers()? {
        core.add_known_peer(peer, addrs, CoreInstant::ZERO);
    }
    while core.poll_action().is_some() {}

    let (wl_tx, wl_rx) = mpsc::channel(64);
    whitelist.start(store.clone(), known, wl_tx);
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (status_tx, status_rx) = watch::channel(NodeStatus {
        peer_id: peer_id.to_string(),
        ..Default::default()
    });
    let registry = Arc::new(Mutex::new(registry));
    let handle = NodeHandle {
        peer_id,
        store: store.clone(),
        registry,
        status: status_rx,
        commands: cmd_tx,
    };
    let event_loop = EventLoop::new(swarm, core, store, metrics, p2p_metrics, status_tx, &cfg);
    let task = tokio::spawn(event_loop.run(cmd_rx, wl_rx));
    Ok(Node { handle, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_identity_key_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        for (bytes, says) in [
            (&b""[..], "is empty"),
            (&b"\x08\x00\x12\x03abc"[..], "not an ed25519 key"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let e = load_identity(dir.path()).unwrap_err().to_string();
            assert!(
                e.contains("identity.key") && e.contains(says) && e.contains("move it away"),
                "{e}"
            );
            assert!(!e.contains("cargo feature"), "{e}");
        }
        std::fs::remove_file(&path).unwrap();
        let key = load_identity(dir.path()).unwrap();
        assert_eq!(
            load_identity(dir.path()).unwrap().public(),
            key.public(),
            "a new key is made once and kept"
        );
    }
}
