//! The Atlas protocol core: a deterministic state machine with no I/O.
//!
//! The caller feeds it [`Event`]s with the current time (`handle`), fires its
//! timer (`handle_timeout` once `poll_timeout` is due), and carries out the
//! [`Action`]s it queues (`poll_action`): send a request or response, dial,
//! disconnect, store a verified zone file, report a penalty. The libp2p node
//! (`atlas-node`) and the simulator (`atlas-sim`) drive this same code; the
//! tests drive it with a fake clock. This crate depends on no runtime, socket
//! or clock: only libp2p's identity and address types. Randomness comes from a seeded RNG, so a run is
//! reproducible from its seed and its inputs.
//!
//! Polling order after every `handle`/`handle_timeout`: drain `poll_action`
//! until `None`, then re-arm the timer from `poll_timeout`.

mod announced;
mod config;
pub mod driver;
mod handlers;
pub mod inbox;
mod intake;
pub mod inventory;
mod io;
pub mod messages;
mod overlay;
pub mod peers;
mod relay;
mod replication;
pub mod scheduler;
pub mod time;
mod views;
pub mod walker;
pub mod zonefile;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::zonefile::{Hash160, Hash160Set};
use announced::Announced;
pub use config::CoreConfig;
use inventory::RangeSet;
pub use messages::{ChainView, DeltaView, PeerRecord, Protocol, Request, Response};
use peers::PeerTable;
pub use peers::Penalty;
use scheduler::Scheduler;
pub use time::Instant;
use walker::Walker;

pub use handlers::{SERVE_BUDGET_BYTES, serve_within_budget};
pub use intake::Upload;
pub use io::{
    Action, CoreStatus, Event, Failure, InboundId, Observation, Origin, RequestId, Stats,
};
pub use views::Agreement;
use views::PeerChain;

#[derive(Debug)]
struct Neighbor {
    outbound: bool,
    /// On the push tree: new files go to it whole. Otherwise it only hears
    /// of them through our inventory deltas (and pulls them if its tree
    /// link fails). Every link starts eager; duplicates prune it.
    eager: bool,
    /// `None` until the first full inventory arrives.
    inventory: Option<RangeSet>,
    inflight_fetches: usize,
    /// Fetches it may have in flight: halved when it refuses or times out,
    /// one more per answer, up to `max_inflight_per_peer`, so a loaded peer
    /// gets fewer requests instead of dropped ones.
    window: usize,
    next_resync: Instant,
    last_sent: Instant,
    /// How far its whitelist agrees with ours.
    chain: PeerChain,
}

#[derive(Debug)]
enum Pending {
    Walk,
    Inventory,
    Fetch(Vec<Hash160>),
    Other,
}

#[derive(Debug)]
struct Outstanding {
    peer: PeerId,
    what: Pending,
    sent: Instant,
    deadline: Instant,
}

pub struct Core {
    cfg: CoreConfig,
    local: PeerId,
    listen_addrs: Vec<Multiaddr>,
    rng: StdRng,

    whitelist: Announced,
    present: RangeSet,
    /// Verified files handed to the store and not yet confirmed.
    storing: Hash160Set,
    /// Missing positions a neighbour announced live and the push tree has
    /// not delivered: fetching one is a graft, and the file, once here, goes
    /// on down the tree like a pushed one.
    grafts: HashSet<u64>,
    /// Files announced before they arrived, and requests waiting for them.
    relay: relay::Relay,

    peers: PeerTable,
    connected: HashSet<PeerId>,
    neighbors: HashMap<PeerId, Neighbor>,
    walker: Walker,
    sched: Scheduler,
    /// Set when something may let more fetches start.
    sched_dirty: bool,

    outstanding: HashMap<RequestId, Outstanding>,
    deadlines: BTreeSet<(Instant, RequestId)>,
    next_request: u64,
    next_walk: Instant,
    delta: RangeSet,
    delta_due: Option<Instant>,
    next_housekeeping: Instant,
    next_rotation: Instant,
    /// The next walk sample replaces an outbound neighbour.
    rotate_due: bool,

    /// Seeds configured as addresses only.
    bare_seeds: Vec<Multiaddr>,
    /// Since when we have had no connection at all.
    alone_since: Option<Instant>,
    next_redial: Instant,

    actions: VecDeque<Action>,
    observations: Vec<Observation>,
    pub stats: Stats,
}

impl Core {
    pub fn new(cfg: CoreConfig, local: PeerId, listen_addrs: Vec<Multiaddr>, seed: u64) -> Self {
        let peers = PeerTable::new(
            local,
            cfg.peer_table_capacity,
            cfg.peer_table_per_group,
            Duration::from_secs(cfg.ban_secs),
        );
        let sched = Scheduler::new(
            CoreConfig::ms(cfg.backoff_base_ms),
            CoreConfig::ms(cfg.backoff_cap_ms),
        );
        Core {
            cfg,
            local,
            listen_addrs,
            rng: StdRng::seed_from_u64(seed),
            whitelist: Announced::default(),
            present: RangeSet::new(),
            storing: Hash160Set::default(),
            grafts: HashSet::new(),
            relay: relay::Relay::default(),
            peers,
            connected: HashSet::new(),
            neighbors: HashMap::new(),
            walker: Walker::new(),
            sched,
            sched_dirty: false,
            outstanding: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_request: 0,
            next_walk: Instant::ZERO,
            delta: RangeSet::new(),
            delta_due: None,
            next_housekeeping: Instant::ZERO,
            next_rotation: Instant::ZERO,
            rotate_due: false,
            bare_seeds: Vec::new(),
            alone_since: None,
            next_redial: Instant::ZERO,
            actions: VecDeque::new(),
            observations: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn local_peer(&self) -> PeerId {
        self.local
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    pub fn set_listen_addrs(&mut self, addrs: Vec<Multiaddr>) {
        self.listen_addrs = addrs;
    }

    /// A seed: always known, never evicted.
    pub fn add_seed(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        self.peers.pin(peer, addrs, now);
    }

    /// A seed known by its address only (no `/p2p/` part): dialed now, and
    /// again whenever we are alone; pinned once it answers and its peer id
    /// is known.
    pub fn add_seed_addr(&mut self, addr: Multiaddr) {
        self.actions.push_back(Action::Dial {
            peer: None,
            addrs: vec![addr.clone()],
        });
        self.bare_seeds.push(addr);
    }

    pub fn is_bare_seed(&self, addr: &Multiaddr) -> bool {
        self.bare_seeds.contains(addr)
    }

    /// A peer remembered from an earlier run.
    pub fn add_known_peer(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        self.peers.learn(peer, addrs, now);
    }

    pub fn view(&self) -> ChainView {
        ChainView {
            length: self.whitelist.len(),
            tip: self.whitelist.tip(),
        }
    }

    pub fn is_whitelisted(&self, hash: &Hash160) -> bool {
        self.whitelist.contains(hash)
    }

    pub fn has(&self, hash: &Hash160) -> bool {
        self.whitelist
            .first(hash)
            .is_some_and(|i| self.present.contains(i))
    }

    pub fn inventory(&self) -> &RangeSet {
        &self.present
    }

    pub fn whitelist(&self) -> &[Hash160] {
        self.whitelist.hashes()
    }

    pub fn status(&self) -> CoreStatus {
        CoreStatus {
            announced: self.whitelist.len(),
            present: self.present.count(),
            missing: self.sched.len() as u64,
            neighbors: self.neighbors.len(),
            outbound_neighbors: self.outbound_count(),
            diverged_neighbors: self.neighbors.values().filter(|n| n.chain.diverged).count(),
            peers_known: self.peers.len(),
            connected: self.connected.len(),
        }
    }

    /// Current neighbours: (peer, outbound?, inventory size if known).
    pub fn neighbor_list(&self) -> Vec<(PeerId, bool, Option<u64>)> {
        let mut v: Vec<_> = self
            .neighbors
            .iter()
            .map(|(p, n)| (*p, n.outbound, n.inventory.as_ref().map(RangeSet::count)))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }

    /// The positions a neighbour is counted as holding (within the prefix
    /// our whitelists are known to share).
    pub fn neighbor_inventory(&self, peer: &PeerId) -> Option<&RangeSet> {
        self.neighbors.get(peer)?.inventory.as_ref()
    }

    pub fn peer_table(&self) -> &PeerTable {
        &self.peers
    }

    /// Peers worth remembering across restarts.
    pub fn peer_snapshot(&self, now: Instant) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.peers.snapshot(now)
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn drain_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.observations)
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            Some(self.next_walk),
            Some(self.next_housekeeping),
            self.delta_due,
            self.deadlines.first().map(|(t, _)| *t),
            self.sched.next_deadline(),
            self.relay.next_hedge(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle(&mut self, now: Instant, event: Event) {
        match event {
            Event::PeerConnected { peer, dialed_addr } => self.on_connected(now, peer, dialed_addr),
            Event::PeerDisconnected { peer } => self.on_disconnected(now, peer),
            Event::PeerAddresses { peer, addrs } => {
                self.peers.learn(peer, addrs, now);
            }
            Event::Request { peer, id, request } => self.on_request(now, peer, id, request),
            Event::Response { peer, id, response } => self.on_response(now, peer, id, response),
            Event::RequestFailed { peer, id, reason } => {
                if let Some(o) = self.take_outstanding(id) {
                    debug_assert_eq!(o.peer, peer);
                    self.on_failed(now, o, reason);
                }
            }
            Event::Malformed { peer } => self.penalize(now, peer, Penalty::Malformed),
            Event::WhitelistGrew {
                from_index,
                hashes,
                held,
                pending,
            } => self.on_whitelist_grew(now, from_index, hashes, &held, pending),
            Event::WhitelistRolledBack { to_index } => {
                self.on_rollback(now, to_index);
                self.announce_rollback(now);
            }
            Event::ZonefileStored {
                hash,
                bytes,
                origin,
            } => self.on_stored(now, hash, bytes, origin),
            Event::StoreFailed { hash } => self.on_store_failed(hash, now),
            Event::ZonefileLost { hash } => self.on_zonefile_lost(hash),
        }
        self.fill_pipelines(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<RequestId> = self
            .deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .collect();
        for id in expired {
            if let Some(o) = self.take_outstanding(id) {
                self.on_failed(now, o, Failure::Timeout);
            }
        }
        if self.sched.next_deadline().is_some_and(|t| t <= now) {
            self.sched.on_timer(now);
            self.sched_dirty = true;
        }
        if self.delta_due.is_some_and(|t| t <= now) {
            self.flush_delta(now);
        }
        self.send_hedges(now);
        if now >= self.next_walk {
            self.walk_step(now);
        }
        if now >= self.next_housekeeping {
            self.housekeeping(now);
            self.next_housekeeping = now + Duration::from_secs(1);
        }
        self.fill_pipelines(now);
    }

    fn send(&mut self, now: Instant, peer: PeerId, request: Request, what: Pending) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let deadline = now + CoreConfig::ms(self.cfg.request_timeout_ms);
        self.outstanding.insert(
            id,
            Outstanding {
                peer,
                what,
                sent: now,
                deadline,
            },
        );
        self.deadlines.insert((deadline, id));
        if let Some(n) = self.neighbors.get_mut(&peer) {
            n.last_sent = now;
        }
        let addrs = self.peers.addrs(&peer);
        self.actions.push_back(Action::Send {
            peer,
            id,
            request,
            addrs,
        });
        id
    }

    /// Whether the core still awaits an answer to `id` (it gives up at the deadline).
    pub fn is_outstanding(&self, id: RequestId) -> bool {
        self.outstanding.contains_key(&id)
    }

    fn take_outstanding(&mut self, id: RequestId) -> Option<Outstanding> {
        let o = self.outstanding.remove(&id)?;
        self.deadlines.remove(&(o.deadline, id));
        Some(o)
    }

    fn penalize(&mut self, now: Instant, peer: PeerId, reason: Penalty) {
        let banned = self.peers.penalize(&peer, reason, now);
        self.actions.push_back(Action::Penalize {
            peer,
            reason,
            banned,
        });
        if banned {
            self.drop_neighbor(now, peer);
            self.actions.push_back(Action::Disconnect { peer });
        }
    }
}
