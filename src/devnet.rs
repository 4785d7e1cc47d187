//! A local network in one process: N nodes on 127.0.0.1 sharing an in-memory
//! whitelist, each with its own API. The zero-setup way to see Atlas work.

use std::net::SocketAddr;
use std::path::PathBuf;

use libp2p::Multiaddr;
use tokio::task::JoinHandle;

use crate::api::{self, ApiState};
use crate::atlas::CoreConfig;
use crate::net::{self, Node, NodeConfig, NodeError};
use crate::whitelist::MemoryWhitelist;

#[derive(Clone, Debug)]
pub struct DevnetConfig {
    pub nodes: usize,
    /// Node i's API listens on base_port + i and its p2p TCP/QUIC on
    /// base_port + 1000 + i; 0 picks free ports (tests).
    pub base_port: u16,
    pub data_dir: PathBuf,
    pub core: CoreConfig,
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
    pub whitelist: MemoryWhitelist,
    cfg: DevnetConfig,
    seed: Option<(libp2p::PeerId, Multiaddr)>,
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
            whitelist: MemoryWhitelist::new(),
            cfg: cfg.clone(),
            seed: None,
        };
        for _ in 0..cfg.nodes {
            devnet.add_node().await?;
        }
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
        let node = net::spawn(cfg, Box::new(self.whitelist.clone()))
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
            devnet: Some(self.whitelist.clone()),
        };
        let (api_addr, api_task) =
            api::serve(api_addr, state)
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
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}
