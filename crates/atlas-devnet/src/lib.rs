//! A local network in one process: N nodes on 127.0.0.1, each with its own
//! API, all following one embedded regtest chain. Announcing a hash mines a
//! real, signed NAME_IMPORT carrying it, plus confirming blocks; each node's
//! chain follower finds, verifies and confirms it like any other BNS
//! operation. The zero-setup way to see Atlas work.

pub mod testing;

use std::net::SocketAddr;
use std::path::PathBuf;

use libp2p::Multiaddr;
use tokio::task::JoinHandle;

use atlas_core::CoreConfig;
use atlas_node::api::{self, ApiState};
use atlas_node::net::{self, Node, NodeConfig, NodeError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::Network;

use atlas_chain::follower::Follower;
use atlas_chain::source::{ChainSource, Wake};
use atlas_core::zonefile::Hash160;
use atlas_node::whitelist::Announcer;
use atlas_testkit::backend::RegtestBackend;
use atlas_testkit::regtest::RegtestChain;

/// Confirmations the devnet's followers wait for (the devnet mines them at once).
pub const DEVNET_CONFIRMATIONS: u64 = 3;

/// NAME_IMPORTs per block when announcing: a few hundred bytes each, so a
/// block stays well inside Bitcoin's weight limit, as a real one would.
pub const IMPORTS_PER_BLOCK: usize = 1_000;

/// The devnet's chain: one regtest chain shared by every node's follower.
#[derive(Clone)]
pub struct DevnetChain {
    pub chain: Arc<Mutex<RegtestChain>>,
    pub wake: Arc<Wake>,
    announced: Arc<AtomicU64>,
}

impl Default for DevnetChain {
    fn default() -> Self {
        Self::new()
    }
}

impl DevnetChain {
    /// A fresh chain with mature coins and the namespace `id` revealed for imports.
    pub fn new() -> Self {
        let mut chain = RegtestChain::new();
        chain.setup_import_namespace("id");
        DevnetChain {
            chain: Arc::new(Mutex::new(chain)),
            wake: Arc::new(Wake::default()),
            announced: Arc::default(),
        }
    }

    /// Mines one NAME_IMPORT per hash (names `n<index>.id`), at most
    /// `IMPORTS_PER_BLOCK` to a block, and the blocks that confirm them;
    /// returns the whitelist length they bring. Blocking: call it off the
    /// async workers.
    pub fn announce(&self, hashes: &[Hash160]) -> u64 {
        let first = self
            .announced
            .fetch_add(hashes.len() as u64, Ordering::SeqCst);
        {
            let mut c = self.chain.lock().expect("chain lock");
            for (b, chunk) in hashes.chunks(IMPORTS_PER_BLOCK).enumerate() {
                let base = first + (b * IMPORTS_PER_BLOCK) as u64;
                let txs = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, h)| c.name_import(&format!("n{}.id", base + i as u64), *h))
                    .collect();
                c.mine(txs);
            }
            c.mine_empty(DEVNET_CONFIRMATIONS as usize - 1);
        }
        self.wake.notify();
        first + hashes.len() as u64
    }

    /// Mines one empty block, as the devnet's clock does, so confirmations
    /// accrue for any follower, however deep it waits. Blocking.
    pub fn mine_block(&self) -> u64 {
        let height = {
            let mut c = self.chain.lock().expect("chain lock");
            c.mine_empty(1);
            c.height() as u64
        };
        self.wake.notify();
        height
    }

    /// Mines a block every `interval` until the returned task is aborted.
    pub fn spawn_miner(&self, interval: Duration) -> JoinHandle<()> {
        let chain = self.clone();
        tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let c = chain.clone();
                match tokio::task::spawn_blocking(move || c.mine_block()).await {
                    Ok(height) => tracing::debug!(height, "devnet mined a block"),
                    Err(e) => {
                        tracing::error!("devnet block timer stopped: {e}");
                        return;
                    }
                }
            }
        })
    }

    /// A follower of this chain, as a node's whitelist source.
    pub fn source(&self) -> ChainSource {
        let genesis = self
            .chain
            .lock()
            .expect("chain lock")
            .block(0)
            .expect("genesis")
            .header;
        ChainSource {
            backends: vec![Box::new(RegtestBackend {
                chain: self.chain.clone(),
            })],
            follower: Follower::new(Network::Regtest, genesis, 1, DEVNET_CONFIRMATIONS, []),
            network: Network::Regtest,
            poll: Duration::from_secs(5),
            wake: self.wake.clone(),
        }
    }
}

impl Announcer for DevnetChain {
    fn announce(&self, hashes: &[Hash160]) -> u64 {
        DevnetChain::announce(self, hashes)
    }
}

#[derive(Clone, Debug)]
pub struct DevnetConfig {
    pub nodes: usize,
    /// Node i's API listens on base_port + i and its p2p TCP/QUIC on
    /// base_port + 1000 + i; 0 picks free ports (tests).
    pub base_port: u16,
    pub data_dir: PathBuf,
    pub core: CoreConfig,
    /// Mine an empty block this often; `None` mines only on announcements.
    pub block_interval: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("node {index}: {source}")]
    Node { index: usize, source: NodeError },
    #[error("node {index} API on {addr}: {source}")]
    Api {
        index: usize,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("port {0} is out of range; lower --base-port")]
    Port(u32),
}

pub struct DevnetNode {
    pub node: Node,
    pub api_addr: SocketAddr,
    api_task: JoinHandle<()>,
}

impl DevnetNode {
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub async fn shutdown(self) {
        self.api_task.abort();
        self.node.shutdown().await;
    }
}

pub struct Devnet {
    pub nodes: Vec<DevnetNode>,
    pub whitelist: DevnetChain,
    cfg: DevnetConfig,
    seed: Option<(libp2p::PeerId, Multiaddr)>,
    miner: Option<JoinHandle<()>>,
}

fn port(base: u16, offset: usize) -> Result<u16, DevnetError> {
    if base == 0 {
        return Ok(0);
    }
    let p = u32::from(base) + offset as u32;
    u16::try_from(p).map_err(|_| DevnetError::Port(p))
}

impl Devnet {
    pub async fn start(cfg: DevnetConfig) -> Result<Devnet, DevnetError> {
        let mut devnet = Devnet {
            nodes: Vec::new(),
            whitelist: DevnetChain::new(),
            cfg: cfg.clone(),
            seed: None,
            miner: None,
        };
        for _ in 0..cfg.nodes {
            devnet.add_node().await?;
        }
        devnet.miner = cfg.block_interval.map(|i| devnet.whitelist.spawn_miner(i));
        Ok(devnet)
    }

    /// Starts one more node (index = current count), seeded by node 0.
    pub async fn add_node(&mut self) -> Result<&DevnetNode, DevnetError> {
        let index = self.nodes.len();
        let dir = self.cfg.data_dir.join(format!("node-{index}"));
        let node = self.start_node(index, dir).await?;
        self.nodes.push(node);
        Ok(&self.nodes[index])
    }

    /// Starts (or restarts) the node with data directory `dir` at `index`.
    pub async fn start_node(
        &mut self,
        index: usize,
        dir: PathBuf,
    ) -> Result<DevnetNode, DevnetError> {
        let node_err = |source| DevnetError::Node { index, source };
        let p2p = port(self.cfg.base_port, 1000 + index)?;
        let mut cfg = NodeConfig::new(dir);
        cfg.listen = vec![
            format!("/ip4/127.0.0.1/tcp/{p2p}")
                .parse()
                .expect("valid multiaddr"),
            format!("/ip4/127.0.0.1/udp/{p2p}/quic-v1")
                .parse()
                .expect("valid multiaddr"),
        ];
        cfg.core = self.cfg.core.clone();
        cfg.rng_seed = Some(index as u64 + 1);
        if index != 0 {
            cfg.seeds = self.seed.iter().cloned().collect();
        }
        let node = net::spawn(cfg, Box::new(self.whitelist.source()))
            .await
            .map_err(node_err)?;
        let status = node
            .handle
            .wait_for(|s| !s.listen_addrs.is_empty())
            .await
            .map_err(node_err)?;
        if index == 0 {
            // Prefer the TCP address: QUIC listeners may report later.
            let addr = status
                .listen_addrs
                .iter()
                .filter_map(|a| a.parse::<Multiaddr>().ok())
                .find(|a| a.to_string().contains("/tcp/"))
                .or_else(|| status.listen_addrs[0].parse().ok());
            self.seed = addr.map(|a| (node.handle.peer_id, a));
        }
        let api_addr: SocketAddr = ([127, 0, 0, 1], port(self.cfg.base_port, index)?).into();
        let state = ApiState {
            node: node.handle.clone(),
            devnet: Some(Arc::new(self.whitelist.clone())),
        };
        let (api_addr, api_task) = api::serve(api_addr, state, api::ApiLimits::default())
            .await
            .map_err(|source| DevnetError::Api {
                index,
                addr: api_addr,
                source,
            })?;
        Ok(DevnetNode {
            node,
            api_addr,
            api_task,
        })
    }

    pub async fn shutdown(self) {
        if let Some(miner) = self.miner {
            miner.abort();
        }
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}
