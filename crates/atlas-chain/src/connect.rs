//! Connecting to the chain at start: the follower is anchored on the header
//! before its start height, which it asks the chain servers for (every one
//! that answers must agree). A node whose servers are all down still starts:
//! it serves and replicates what it knows, shows the chain as unavailable in
//! its status, and keeps asking, backing off, until one answers.

use std::sync::Arc;
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::{Network, ScriptBuf};
use tokio::sync::mpsc;

use super::backend::ChainBackend;
use super::follower::Follower;
use super::source::{ChainSource, Wake, spawn_follower};
use crate::ChainStore;
use crate::whitelist::{ChainState, ChainStatus, WhitelistSource, WhitelistUpdate};
use atlas_core::zonefile::Hash160;
use bns_rules::engine::Allocation;
use bns_rules::params::RuleSet;

const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(60);

/// What the follower needs besides its checkpoint.
#[derive(Clone, Debug)]
pub struct FollowerParams {
    pub network: Network,
    pub rules: RuleSet,
    pub genesis: Vec<Allocation>,
    pub start_height: u64,
    pub confirmations: u64,
    pub watch: Vec<ScriptBuf>,
    pub poll: Duration,
}

/// A chain source not yet anchored on its checkpoint.
pub struct ChainConnector {
    pub backends: Vec<Box<dyn ChainBackend>>,
    pub params: FollowerParams,
    pub wake: Arc<Wake>,
}

impl ChainConnector {
    pub fn new(backends: Vec<Box<dyn ChainBackend>>, params: FollowerParams) -> Self {
        ChainConnector {
            backends,
            params,
            wake: Arc::default(),
        }
    }

    /// One pass over the servers for the checkpoint header. Servers that
    /// disagree are a configuration error (another network, another chain).
    pub fn checkpoint(&mut self) -> Result<Header, String> {
        let height = self.params.start_height.max(1) - 1;
        let mut found: Option<Header> = None;
        let mut errors = Vec::new();
        for b in &mut self.backends {
            match b.headers(height, 1) {
                Ok(h) if !h.is_empty() => {
                    if let Some(cp) = found
                        && cp.block_hash() != h[0].block_hash()
                    {
                        return Err(format!(
                            "chain servers disagree on block {height}: check chain.electrum and \
                             chain.network"
                        ));
                    }
                    found = Some(h[0]);
                }
                Ok(_) => errors.push(format!("{} has no block {height}", b.name())),
                Err(e) => errors.push(e.to_string()),
            }
        }
        found.ok_or_else(|| {
            format!(
                "no server in chain.electrum answered for block {height}: {}",
                errors.join("; ")
            )
        })
    }

    /// Anchors the follower; the connector becomes a running source.
    pub fn into_source(self, checkpoint: Header) -> ChainSource {
        let p = self.params;
        ChainSource {
            backends: self.backends,
            follower: Follower::with_rules(
                p.network,
                p.rules,
                p.genesis,
                checkpoint,
                p.start_height,
                p.confirmations,
                p.watch,
            ),
            network: p.network,
            poll: p.poll,
            wake: self.wake,
        }
    }

    /// Tries up to `attempts` passes (for `atlas reindex`, which has nothing to
    /// serve meanwhile).
    pub fn connect(mut self, attempts: usize) -> Result<ChainSource, String> {
        let mut wait = RETRY_FIRST;
        let mut last = String::new();
        for i in 0..attempts.max(1) {
            match self.checkpoint() {
                Ok(cp) => return Ok(self.into_source(cp)),
                Err(e) => last = e,
            }
            if i + 1 < attempts {
                std::thread::sleep(wait);
                wait = (wait * 2).min(RETRY_CAP);
            }
        }
        Err(last)
    }

    fn run(
        mut self,
        store: Arc<dyn ChainStore>,
        known: Vec<Hash160>,
        tx: mpsc::Sender<WhitelistUpdate>,
    ) {
        let mut wait = RETRY_FIRST;
        let mut generation = 0;
        let mut logged = false;
        loop {
            if tx.is_closed() {
                return;
            }
            match self.checkpoint() {
                Ok(cp) => {
                    if logged {
                        tracing::info!("chain servers answer; following the chain");
                    }
                    return self.into_source(cp).run(store, known, tx);
                }
                Err(e) => {
                    if !logged {
                        tracing::warn!(
                            "{e}; the node serves what it knows and keeps trying (backing off to {RETRY_CAP:?})"
                        );
                        logged = true;
                    }
                    let status = ChainStatus {
                        state: ChainState::Unavailable,
                        last_error: Some(e),
                        network: super::network_name(self.params.network),
                        ..ChainStatus::default()
                    };
                    if tx.blocking_send(WhitelistUpdate::Chain(status)).is_err() {
                        return;
                    }
                }
            }
            generation = self.wake.wait(generation, wait);
            wait = (wait * 2).min(RETRY_CAP);
        }
    }
}

impl WhitelistSource for ChainConnector {
    fn start(
        self: Box<Self>,
        store: Arc<dyn ChainStore>,
        known: Vec<Hash160>,
        tx: mpsc::Sender<WhitelistUpdate>,
    ) {
        spawn_follower(move || self.run(store, known, tx));
    }
}
