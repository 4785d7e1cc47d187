//! Starting a node: identity, store, swarm, whitelist source, and the handle
//! the API and tests use to talk to its event loop.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId, identity, noise, tcp, yamux};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::behaviour::{Behaviour, Limits};
use super::event_loop::EventLoop;
use super::handle::{Command, NodeError, NodeHandle, NodeStatus};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::whitelist::WhitelistSource;
use atlas_core::{Core, CoreConfig, Instant as CoreInstant};

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
    let started = std::time::Instant::now();
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
    tracing::debug!(elapsed = ?started.elapsed(), "store opened");
    // Both reads wait on the disk when the page cache is cold (a reboot):
    // side by side they take the longer one's time, not the sum.
    let (known, held) = std::thread::scope(|s| {
        let held = s.spawn(|| {
            let held = store.held_hashes();
            tracing::debug!(elapsed = ?started.elapsed(), "held zone files listed");
            held
        });
        let known = store.announcements();
        tracing::debug!(elapsed = ?started.elapsed(), "whitelist read");
        let held = held
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (known, held)
    });
    let (known, held) = (known?, held?);
    tracing::debug!(
        known = known.len(),
        held = held.len(),
        "whitelist and held files read"
    );
    let pending = store.pending_among(&known)?;
    // Uploads whose announcement was persisted just before a crash are
    // promoted here; everything on disk counts at once.
    core.handle(
        CoreInstant::ZERO,
        atlas_core::Event::WhitelistGrew {
            from_index: 0,
            hashes: known.clone(),
            held,
            pending,
        },
    );
    tracing::debug!(elapsed = ?started.elapsed(), "core loaded");
    // Loading leaves tens of MB freed in the malloc arenas of the threads
    // that read the store; glibc keeps them resident until told otherwise.
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
    for (peer, addr) in &cfg.seeds {
        core.add_seed(*peer, vec![addr.clone()], CoreInstant::ZERO);
    }
    for addr in &cfg.bare_seeds {
        core.add_seed_addr(addr.clone());
    }
    for (peer, addrs) in store.load_peers()? {
        core.add_known_peer(peer, addrs, CoreInstant::ZERO);
    }

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
    let has_external = !cfg.external.is_empty();
    let event_loop = EventLoop::new(
        swarm,
        core,
        store,
        metrics,
        p2p_metrics,
        status_tx,
        has_external,
    );
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
