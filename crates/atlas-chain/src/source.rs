//! The chain as a `WhitelistSource`: the follower runs on its own thread
//! (Electrum clients block), against a list of servers. Their tips are
//! cross-checked each round and the follower uses one at the best tip; a
//! server that fails is rotated out for the round, one caught lying is
//! dropped for good. Announcements are diffed against what the node has, so
//! a reorg below the confirmation depth reaches it as a rollback.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bitcoin::Network;
use tokio::sync::mpsc;

use super::backend::{BackendError, ChainBackend};
use super::follower::Follower;
use crate::whitelist::{ChainState, ChainStatus, WhitelistSource, WhitelistUpdate, common_prefix};
use crate::{ChainDelta, ChainStore};
use atlas_core::zonefile::Hash160;

/// Lets whoever mines (devnet, tests) wake the follower at once.
#[derive(Default)]
pub struct Wake {
    generation: Mutex<u64>,
    cv: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *self.generation.lock().expect("wake lock") += 1;
        self.cv.notify_all();
    }

    pub(super) fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let g = self.generation.lock().expect("wake lock");
        let (g, _) = self
            .cv
            .wait_timeout_while(g, timeout, |g| *g == seen)
            .expect("wake lock");
        *g
    }
}

pub struct ChainSource {
    pub backends: Vec<Box<dyn ChainBackend>>,
    pub follower: Follower,
    pub network: Network,
    pub poll: Duration,
    pub wake: Arc<Wake>,
}

impl ChainSource {
    /// One round against the best server; returns the status for `/v1/status`.
    fn round(&mut self, current: &mut usize) -> Result<ChainStatus, String> {
        if self.backends.is_empty() {
            return Err("no chain servers left".into());
        }
        let tips: Vec<Option<u64>> = self
            .backends
            .iter_mut()
            .map(|b| b.tip_height().ok())
            .collect();
        let best = tips
            .iter()
            .flatten()
            .copied()
            .max()
            .ok_or("no chain server answers")?;
        *current = (*current).min(self.backends.len() - 1);
        if tips[*current].is_none_or(|t| t + 1 < best) {
            *current = tips
                .iter()
                .position(|t| *t == Some(best))
                .expect("best is some tip");
        }
        let backend = &mut self.backends[*current];
        match self.follower.poll(backend.as_mut()) {
            Ok(s) => Ok(ChainStatus {
                state: ChainState::Following,
                last_error: None,
                network: super::network_name(self.network),
                backend: backend.name(),
                height: s.tip,
                tip: self
                    .follower
                    .tip_hash()
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
                confirmed_height: s.confirmed,
                consensus_hash: hex::encode(s.consensus_hash),
                halted: s.halted.map(|h| h.to_string()),
                last_success_unix: crate::whitelist::unix_now(),
                ..ChainStatus::default()
            }),
            Err(e @ (BackendError::Lied { .. } | BackendError::WrongTx { .. })) => {
                tracing::warn!("dropping chain server: {e}");
                self.backends.remove(*current);
                *current = 0;
                Err(e.to_string())
            }
            Err(e) => {
                *current = (*current + 1) % self.backends.len();
                Err(e.to_string())
            }
        }
    }

    /// Loads the follower's saved progress, if it fits this configuration.
    fn resume(&mut self, store: &dyn ChainStore) {
        match store.load_chain(&self.follower.identity()) {
            Ok(Some(saved)) => match self.follower.restore(saved) {
                Ok(()) => tracing::info!(
                    height = self.follower.verified_height(),
                    "chain follower resumes from saved progress"
                ),
                Err(e) => {
                    tracing::warn!("saved chain progress unusable, re-reading from the start: {e}")
                }
            },
            Ok(None) => {}
            Err(e) => tracing::warn!("reading saved chain progress: {e}"),
        }
    }

    /// Saves what the last round learned; a failed save is retried with the
    /// next round's changes, so nothing is skipped.
    fn save(&mut self, store: &dyn ChainStore, unsaved: &mut Option<ChainDelta>) {
        let delta = self.follower.take_delta();
        let delta = match unsaved.take() {
            Some(earlier) => earlier.merge(delta),
            None => delta,
        };
        if delta.is_empty() {
            return;
        }
        if let Err(e) = store.save_chain(&self.follower.identity(), &delta) {
            tracing::warn!("saving chain progress: {e}");
            *unsaved = Some(delta);
        }
    }

    /// `atlas reindex`: forgets saved progress and reads the chain from the
    /// start height to the tip. Returns the whitelist it yields (the caller
    /// rewrites its own with it) and the confirmed height.
    pub fn reindex(
        mut self,
        store: &dyn ChainStore,
        attempts: usize,
    ) -> Result<(Vec<Hash160>, u64), String> {
        store.clear_chain().map_err(|e| e.to_string())?;
        let mut current = 0;
        let mut last_error = String::from("no attempt made");
        for _ in 0..attempts.max(1) {
            match self.round(&mut current) {
                Ok(status) => {
                    let mut unsaved = None;
                    self.save(store, &mut unsaved);
                    if unsaved.is_some() {
                        return Err("could not save chain progress".into());
                    }
                    let hashes: Vec<Hash160> = self
                        .follower
                        .announcements()
                        .iter()
                        .map(|a| a.zonefile_hash)
                        .collect();
                    return Ok((hashes, status.confirmed_height));
                }
                Err(e) => {
                    tracing::warn!("chain follower: {e}");
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }

    pub(super) fn run(
        mut self,
        store: Arc<dyn ChainStore>,
        known: Vec<Hash160>,
        tx: mpsc::Sender<WhitelistUpdate>,
    ) {
        self.resume(store.as_ref());
        let mut unsaved = None;
        let mut sent = known;
        let mut current = 0;
        let mut generation = 0;
        let mut last_good = ChainStatus::default();
        let mut unavailable = false;
        let (mut failovers, mut dropped) = (0, 0);
        loop {
            if tx.is_closed() {
                return;
            }
            let (was_current, servers) = (current, self.backends.len());
            let round = self.round(&mut current);
            if self.backends.len() < servers {
                dropped += 1;
            } else if current != was_current {
                failovers += 1;
            }
            match round {
                Ok(mut status) => {
                    status.failovers = failovers;
                    status.servers_dropped = dropped;
                    if unavailable {
                        tracing::info!("chain servers answer again");
                        unavailable = false;
                    }
                    last_good = status.clone();
                    // Progress is saved before the node hears of it: after a
                    // crash in between, the diff against the node's whitelist
                    // sends it again.
                    self.save(store.as_ref(), &mut unsaved);
                    let now: Vec<Hash160> = self
                        .follower
                        .announcements()
                        .iter()
                        .map(|a| a.zonefile_hash)
                        .collect();
                    let keep = common_prefix(&sent, &now);
                    // The chain status goes first, so a node whose whitelist
                    // changed already shows the chain that changed it.
                    let mut updates = vec![WhitelistUpdate::Chain(status)];
                    if keep < sent.len() {
                        updates.push(WhitelistUpdate::RolledBack {
                            to_index: keep as u64,
                        });
                    }
                    if now.len() > keep {
                        updates.push(WhitelistUpdate::Grew {
                            from_index: keep as u64,
                            hashes: now[keep..].to_vec(),
                        });
                    }
                    sent = now;
                    for u in updates {
                        if tx.blocking_send(u).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    // Logged once per outage; the status carries the latest reason.
                    if !unavailable {
                        tracing::warn!(
                            "chain servers unavailable ({e}); serving what is known, retrying every {:?}",
                            self.poll
                        );
                        unavailable = true;
                    } else {
                        tracing::debug!("chain follower: {e}");
                    }
                    let status = ChainStatus {
                        state: ChainState::Unavailable,
                        last_error: Some(e),
                        network: super::network_name(self.network),
                        failovers,
                        servers_dropped: dropped,
                        ..last_good.clone()
                    };
                    if tx.blocking_send(WhitelistUpdate::Chain(status)).is_err() {
                        return;
                    }
                }
            }
            generation = self.wake.wait(generation, self.poll);
        }
    }
}

/// The follower's thread: Electrum clients block, so it runs beside the runtime.
pub(super) fn spawn_follower(run: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name("chain-follower".into())
        .spawn(run)
        .expect("spawning the chain follower thread");
}

impl WhitelistSource for ChainSource {
    fn start(
        self: Box<Self>,
        store: Arc<dyn ChainStore>,
        known: Vec<Hash160>,
        tx: mpsc::Sender<WhitelistUpdate>,
    ) {
        spawn_follower(move || self.run(store, known, tx));
    }
}
