//! The overlay: connections, the MHRW-DA walk, and the neighbour set.

use std::time::Duration;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use rand::seq::{IndexedRandom, SliceRandom};

use super::messages::{PeerRecord, Request};
use super::time::Instant;
use super::{Action, Core, CoreConfig, Neighbor, Observation, Pending};

/// How long a node with no connection waits before dialing its seeds again,
/// and between attempts after that.
const SEED_REDIAL: Duration = Duration::from_secs(10);

impl Core {
    pub(super) fn outbound_count(&self) -> usize {
        self.neighbors.values().filter(|n| n.outbound).count()
    }

    fn inbound_count(&self) -> usize {
        self.neighbors.values().filter(|n| !n.outbound).count()
    }

    pub(super) fn on_connected(&mut self, now: Instant, peer: PeerId, dialed: Option<Multiaddr>) {
        if self.peers.is_banned(&peer, now) {
            self.actions.push_back(Action::Disconnect { peer });
            return;
        }
        self.connected.insert(peer);
        if let Some(addr) = dialed {
            // A seed known by address only is pinned to the identity it
            // turned out to have.
            if self.is_bare_seed(&addr) {
                tracing::info!(%peer, "seed {addr} answered");
                self.add_seed(peer, vec![addr.clone()], now);
            }
            self.peers.learn(peer, vec![addr], now);
        }
        self.peers.seen(&peer, now);
    }

    pub(super) fn on_disconnected(&mut self, now: Instant, peer: PeerId) {
        self.connected.remove(&peer);
        self.drop_neighbor(now, peer);
        self.forget_waiting(&peer);
        // Requests on a closed connection will never be answered.
        let lost: Vec<_> = self
            .outstanding
            .iter()
            .filter(|(_, o)| o.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            if let Some(o) = self.take_outstanding(id) {
                self.on_lost(now, o);
            }
        }
    }

    /// What we report in peer exchange: a uniform sample of our neighbours
    /// (or, while we have none, of some known peers, so that a young network
    /// can grow) and how many there are.
    pub(super) fn exchange_list(&mut self, now: Instant) -> (Vec<PeerRecord>, u32) {
        let mut ids: Vec<PeerId> = self.neighbors.keys().copied().collect();
        ids.sort();
        if ids.is_empty() {
            let mut known = self.peers.walkable(now);
            known.shuffle(&mut self.rng);
            known.truncate(self.cfg.neighbors);
            ids = known;
        }
        let degree = ids.len() as u32;
        let (sample, _) = ids.partial_shuffle(&mut self.rng, self.cfg.exchange_sample);
        let records = sample
            .iter()
            .filter_map(|p| {
                let addrs = self.peers.addrs(p);
                (!addrs.is_empty()).then_some(PeerRecord { peer: *p, addrs })
            })
            .collect();
        (records, degree)
    }

    pub(super) fn walk_step(&mut self, now: Instant) {
        let interval = if self.outbound_count() < self.cfg.neighbors {
            self.cfg.walk_fast_ms
        } else {
            self.cfg.walk_slow_ms
        };
        self.next_walk = now + CoreConfig::ms(interval);
        if self.walker.awaiting().is_some() {
            return;
        }
        // Listing every walkable peer is the costly part of a step; only a
        // restart needs it.
        let start = if self.walker.needs_start() {
            self.peers.walkable(now)
        } else {
            Vec::new()
        };
        if let Some(target) = self.walker.next_query(&mut self.rng, &start) {
            self.query_walk_target(now, target);
        }
    }

    /// Asks `target` for its neighbour list, or answers at once when the walk
    /// reached us.
    fn query_walk_target(&mut self, now: Instant, target: PeerId) {
        if target == self.local {
            let (records, degree) = self.exchange_list(now);
            let ids = records.into_iter().map(|r| r.peer).collect();
            self.on_walk_reply(now, target, ids, degree);
            return;
        }
        let backing_off = !self.connected.contains(&target)
            && self.peers.get(&target).is_some_and(|e| !e.dialable(now));
        if backing_off {
            self.on_walk_failed(target);
            return;
        }
        let request = Request::PeerExchange {
            view: self.view(),
            listen_addrs: self.listen_addrs.clone(),
        };
        self.send(now, target, request, Pending::Walk);
    }

    pub(super) fn on_walk_reply(
        &mut self,
        now: Instant,
        from: PeerId,
        ids: Vec<PeerId>,
        degree: u32,
    ) {
        self.stats.walk_steps += 1;
        match self
            .walker
            .on_reply(&mut self.rng, from, ids, degree as usize)
        {
            Some(sample) => {
                self.observations.push(Observation::WalkSample(sample));
                self.consider_neighbor(now, sample)
            }
            // Delayed acceptance: the step is not over until the alternative answers.
            None => {
                if let Some(alt) = self.walker.awaiting() {
                    self.query_walk_target(now, alt);
                }
            }
        }
        // Keep walking promptly while short of neighbours.
        if self.outbound_count() < self.cfg.neighbors {
            self.next_walk = self
                .next_walk
                .min(now + CoreConfig::ms(self.cfg.walk_fast_ms));
        }
    }

    pub(super) fn on_walk_failed(&mut self, peer: PeerId) {
        self.walker.on_failure(peer);
    }

    /// A walk sample becomes an outbound neighbour if we are short of K.
    fn consider_neighbor(&mut self, now: Instant, sample: PeerId) {
        if sample == self.local
            || self.peers.is_banned(&sample, now)
            || (self.peers.is_full(&sample, now) && !self.neighbors.contains_key(&sample))
        {
            return;
        }
        if self.outbound_count() >= self.cfg.neighbors {
            if !self.rotate_due || self.neighbors.contains_key(&sample) {
                return;
            }
            self.rotate_due = false;
            let mut outbound: Vec<PeerId> = self
                .neighbors
                .iter()
                .filter(|(_, n)| n.outbound)
                .map(|(p, _)| *p)
                .collect();
            outbound.sort();
            if let Some(&victim) = outbound.choose(&mut self.rng) {
                self.drop_neighbor(now, victim);
                self.actions.push_back(Action::Disconnect { peer: victim });
            }
        }
        match self.neighbors.get_mut(&sample) {
            // The walk chose a peer that already chose us: the link now counts
            // toward our K as well, or small networks could never reach K.
            Some(n) => n.outbound = true,
            None => self.add_neighbor(now, sample, true),
        }
    }

    pub(super) fn add_neighbor(&mut self, now: Instant, peer: PeerId, outbound: bool) {
        self.neighbors.insert(
            peer,
            Neighbor {
                outbound,
                eager: true,
                inventory: None,
                inflight_fetches: 0,
                window: self.cfg.max_inflight_per_peer,
                next_resync: now + CoreConfig::ms(self.cfg.inventory_resync_ms),
                last_sent: now,
                chain: Default::default(),
            },
        );
        self.ask_inventory(now, peer, Vec::new());
    }

    /// Accepts a peer that asked for our inventory as an inbound neighbour, if there is room.
    /// Returns whether `peer` is our neighbour afterwards.
    pub(super) fn accept_inbound(&mut self, now: Instant, peer: PeerId) -> bool {
        if self.neighbors.contains_key(&peer) {
            return true;
        }
        if self.inbound_count() >= self.cfg.max_inbound || self.peers.is_banned(&peer, now) {
            return false;
        }
        self.add_neighbor(now, peer, false);
        true
    }

    pub(super) fn drop_neighbor(&mut self, now: Instant, peer: PeerId) {
        let Some(n) = self.neighbors.remove(&peer) else {
            return;
        };
        if let Some(inv) = n.inventory {
            self.shift_holders(Some(&inv), None);
        }
        if n.outbound {
            // Replace it from the next walk samples, soon.
            self.next_walk = self
                .next_walk
                .min(now + CoreConfig::ms(self.cfg.walk_fast_ms));
        }
    }

    /// Once a second: heartbeats, periodic full resyncs, peer-table upkeep.
    /// Alone for `SEED_REDIAL` or longer: dial every seed again, named or
    /// bare, every `SEED_REDIAL`. The walk cannot help a node that knows no
    /// one who answers, and a bare seed (an address with no peer id) is not
    /// in the peer table at all.
    fn redial_seeds_if_alone(&mut self, now: Instant) {
        if !self.connected.is_empty() {
            self.alone_since = None;
            return;
        }
        let since = *self.alone_since.get_or_insert(now);
        if now.saturating_duration_since(since) < SEED_REDIAL || now < self.next_redial {
            return;
        }
        self.next_redial = now + SEED_REDIAL;
        let mut pinned: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, e)| e.pinned)
            .map(|(p, _)| *p)
            .collect();
        pinned.sort();
        for peer in pinned {
            let addrs = self.peers.addrs(&peer);
            self.actions.push_back(Action::Dial {
                peer: Some(peer),
                addrs,
            });
        }
        for addr in &self.bare_seeds {
            self.actions.push_back(Action::Dial {
                peer: None,
                addrs: vec![addr.clone()],
            });
        }
    }

    /// Asks `peer` for its whole inventory; `ancestry` after our own rollback.
    pub(super) fn ask_inventory(&mut self, now: Instant, peer: PeerId, ancestry: Vec<[u8; 20]>) {
        let request = Request::Inventory {
            view: self.view(),
            ancestry,
        };
        self.send(now, peer, request, Pending::Inventory);
    }

    pub(super) fn housekeeping(&mut self, now: Instant) {
        self.redial_seeds_if_alone(now);
        self.expire_promises(now);
        if self.cfg.neighbor_rotation_ms > 0 && now >= self.next_rotation {
            self.next_rotation = now + CoreConfig::ms(self.cfg.neighbor_rotation_ms);
            if self.outbound_count() >= self.cfg.neighbors && now > Instant::ZERO {
                // The sample comes from a restart, so it can land anywhere we know of.
                self.rotate_due = true;
                self.walker.restart_now();
                self.next_walk = now;
            }
        }
        let heartbeat = Duration::from_millis(self.cfg.heartbeat_ms);
        let mut resync = Vec::new();
        let mut idle = Vec::new();
        for (p, n) in &self.neighbors {
            if now >= n.next_resync {
                resync.push(*p);
            } else if now.saturating_duration_since(n.last_sent) >= heartbeat {
                idle.push(*p);
            }
        }
        resync.sort();
        idle.sort();
        for p in resync {
            if let Some(n) = self.neighbors.get_mut(&p) {
                n.next_resync = now + CoreConfig::ms(self.cfg.inventory_resync_ms);
            }
            self.ask_inventory(now, p, Vec::new());
        }
        for p in idle {
            // An empty delta keeps the connection open and our view fresh.
            let request = Request::InventoryDelta {
                view: self.delta_view(&p),
                added: Default::default(),
            };
            self.send(now, p, request, Pending::Other);
        }
    }
}
