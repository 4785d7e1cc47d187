//! Upkeep of the event loop: the status and metrics it publishes, the
//! periodic progress line and peer save, and what a failed seed dial is worth logging.

use std::collections::HashMap;

use libp2p::multiaddr::Protocol as AddrPart;
use libp2p::swarm::DialError;
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant as TokioInstant;

use super::EventLoop;
use crate::net::handle::{NeighborRole, NodeStatus, PeerInfo};

impl EventLoop {
    pub(super) fn peer_infos(&self) -> Vec<PeerInfo> {
        let now = self.now();
        let neighbors: HashMap<PeerId, (bool, Option<u64>)> = self
            .adapter
            .driver
            .core
            .neighbor_list()
            .into_iter()
            .map(|(p, out, inv)| (p, (out, inv)))
            .collect();
        let mut v: Vec<PeerInfo> = self
            .adapter
            .driver
            .core
            .peer_table()
            .iter()
            .map(|(p, e)| {
                let n = neighbors.get(p);
                PeerInfo {
                    peer_id: p.to_string(),
                    addrs: e.addrs.iter().map(|a| a.to_string()).collect(),
                    neighbor: n.map(|(out, _)| {
                        if *out {
                            NeighborRole::Outbound
                        } else {
                            NeighborRole::Inbound
                        }
                    }),
                    inventory: n.and_then(|(_, inv)| *inv),
                    chain: self.adapter.driver.core.agreement(p),
                    connected: self.swarm.is_connected(p),
                    health: e.health(),
                    banned: e.is_banned(now),
                }
            })
            .collect();
        v.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        v
    }

    pub(super) fn publish(&mut self) {
        let s = self.adapter.driver.core.status();
        let m = &self.metrics;
        m.peers_known.set(s.peers_known as i64);
        m.neighbors.set(s.neighbors as i64);
        m.neighbors_diverged.set(s.diverged_neighbors as i64);
        m.connected.set(s.connected as i64);
        m.announced.set(s.announced as i64);
        m.present.set(s.present as i64);
        m.missing.set(s.missing as i64);
        let pending = self.adapter.store.pending_count();
        m.pending.set(pending as i64);
        m.set_chain(&self.chain);
        m.set_store(&self.adapter.store.health());
        m.absorb(&self.adapter.driver.core.stats);
        let listen_addrs = self.swarm.listeners().map(|a| a.to_string()).collect();
        let next = NodeStatus {
            peer_id: self.adapter.driver.core.local_peer().to_string(),
            listen_addrs,
            neighbors: s.neighbors,
            diverged_neighbors: s.diverged_neighbors,
            outbound_neighbors: s.outbound_neighbors,
            connected: s.connected,
            peers_known: s.peers_known,
            announced: s.announced,
            present: s.present,
            missing: s.missing,
            pending,
            penalties: self.adapter.penalties,
            request_failures: self.adapter.driver.core.stats.request_failures.iter().sum(),
            chain: self.chain.clone(),
            store: self.adapter.store.health(),
        };
        self.status.send_if_modified(|cur| {
            if *cur == next {
                false
            } else {
                *cur = next;
                true
            }
        });
    }

    /// Every 10 s: a progress line while catching up, and peers to disk.
    pub(super) fn periodic(&mut self) {
        let s = self.adapter.driver.core.status();
        let now = TokioInstant::now();
        let elapsed = now.duration_since(self.progress.last_at).as_secs_f64();
        let gained = s.present.saturating_sub(self.progress.last_present);
        if s.present < s.announced && elapsed > 0.0 {
            let rate = gained as f64 / elapsed;
            let left = s.announced - s.present;
            let eta = if rate > 0.0 {
                format!("{:.0}s", left as f64 / rate)
            } else {
                "unknown".to_string()
            };
            tracing::info!(
                "catching up: {}/{} zone files ({:.1}%), {:.1} files/s, ETA {eta}, {} neighbours",
                s.present,
                s.announced,
                100.0 * s.present as f64 / s.announced.max(1) as f64,
                rate,
                s.neighbors
            );
        }
        self.progress.last_at = now;
        self.progress.last_present = s.present;
        self.adapter.drop_corrupt(self.now());
        let snapshot = self.adapter.driver.core.peer_snapshot(self.now());
        if let Err(e) = self.adapter.store.save_peers(&snapshot) {
            tracing::warn!("saving peers: {e}");
        }
    }

    /// The seed a failed dial was for, if it was one.
    fn seed_of(&self, peer: Option<PeerId>, error: &DialError) -> Option<String> {
        if let Some(p) = peer
            && self
                .adapter
                .driver
                .core
                .peer_table()
                .get(&p)
                .is_some_and(|e| e.pinned)
        {
            return Some(p.to_string());
        }
        let DialError::Transport(attempts) = error else {
            return None;
        };
        attempts.iter().find_map(|(addr, _)| {
            let mut a = addr.clone();
            if matches!(a.iter().last(), Some(AddrPart::P2p(_))) {
                a.pop();
            }
            self.adapter
                .driver
                .core
                .is_bare_seed(&a)
                .then(|| a.to_string())
        })
    }

    /// A seed that cannot be dialed is worth one line: the operator may have
    /// mistyped it, or it may be down. Retries stay quiet until it answers.
    pub(super) fn on_dial_error(&mut self, peer: Option<PeerId>, error: &DialError) {
        if let Some(seed) = self.seed_of(peer, error)
            && self.seeds_down.insert(seed.clone())
        {
            tracing::warn!(
                "seed {seed} unreachable ({error}); retrying every 30 s at most until it answers"
            );
        }
    }

    pub(super) fn seed_reached(&mut self, peer: PeerId, addr: Option<&Multiaddr>) {
        for key in [Some(peer.to_string()), addr.map(|a| a.to_string())]
            .into_iter()
            .flatten()
        {
            if self.seeds_down.remove(&key) {
                tracing::info!("seed {key} answers again");
            }
        }
    }
}
