//! The Atlas protocol core: a deterministic state machine with no I/O.
//!
//! The caller feeds it [`Event`]s with the current time (`handle`), fires its
//! timer (`handle_timeout` once `poll_timeout` is due), and carries out the
//! [`Action`]s it queues (`poll_action`): send a request or response, dial,
//! disconnect, store a verified zone file, report a penalty. The libp2p node
//! (`crate::node`) and the simulator drive this same code; the tests drive it
//! with a fake clock. Randomness comes from a seeded RNG, so a run is
//! reproducible from its seed and its inputs.
//!
//! Polling order after every `handle`/`handle_timeout`: drain `poll_action`
//! until `None`, then re-arm the timer from `poll_timeout`.

mod announced;
mod handlers;
pub mod inventory;
pub mod messages;
mod overlay;
pub mod peers;
mod replication;
pub mod scheduler;
pub mod time;
pub mod walker;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::zonefile::{Hash160, Hash160Set};
use announced::Announced;
use inventory::RangeSet;
pub use messages::{ChainView, PeerRecord, Protocol, Request, Response};
use peers::PeerTable;
pub use peers::Penalty;
use scheduler::Scheduler;
pub use time::Instant;
use walker::Walker;

/// Tunables of the protocol. Every field has a default; `validate` says what is wrong.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CoreConfig {
    /// Outbound neighbours to keep (K).
    pub neighbors: usize,
    /// Inbound neighbours accepted on top of K.
    pub max_inbound: usize,
    /// Most hashes in one fetch request.
    pub batch_max_hashes: usize,
    /// Fetch requests in flight to one neighbour at once.
    pub max_inflight_per_peer: usize,
    pub request_timeout_ms: u64,
    /// Walk step period while short of neighbours, and once the set is full.
    pub walk_fast_ms: u64,
    pub walk_slow_ms: u64,
    /// Full inventory re-download from each neighbour, as a safety net for deltas.
    pub inventory_resync_ms: u64,
    /// A neighbour that heard nothing from us this long gets an empty delta.
    pub heartbeat_ms: u64,
    /// How long new inventory is gathered before a delta goes out.
    pub delta_flush_ms: u64,
    /// Send inventory deltas (off = the original's poll-only behaviour).
    pub deltas: bool,
    /// Push newly received zone files to neighbours that lack them.
    pub push: bool,
    /// A file we were pushed is pushed on to at most this many neighbours
    /// that lack it (uploads go to all of them); the rest learn of it from
    /// our inventory delta and pull it. Bounds duplicate copies.
    pub push_fanout: usize,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub peer_table_capacity: usize,
    pub peer_table_per_group: usize,
    pub ban_secs: u64,
    /// Every so often one outbound neighbour is replaced by a fresh walk
    /// sample (the walk restarting from a random known peer), so the overlay
    /// stays a random graph: it heals after a partition and cannot be
    /// frozen by whoever we met first. 0 turns it off.
    pub neighbor_rotation_ms: u64,
    /// Serve inventories and zone files to neighbours only, and answer Busy
    /// when there is no room for a new one, so that thousands of nodes that
    /// know the same seed do not all fetch from it at once. Off = the
    /// original's open service: anyone may fetch from anyone.
    pub neighbors_only: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            neighbors: 8,
            max_inbound: 24,
            batch_max_hashes: 100,
            max_inflight_per_peer: 4,
            request_timeout_ms: 30_000,
            walk_fast_ms: 200,
            walk_slow_ms: 30_000,
            inventory_resync_ms: 600_000,
            heartbeat_ms: 60_000,
            delta_flush_ms: 50,
            deltas: true,
            push: true,
            push_fanout: 2,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 120_000,
            peer_table_capacity: 4096,
            peer_table_per_group: 256,
            ban_secs: 3_600,
            neighbor_rotation_ms: 600_000,
            neighbors_only: true,
        }
    }
}

impl CoreConfig {
    /// The original Python Atlas's timing: full inventories every 600 s, a walk
    /// step every 300 s, no deltas, no push. For side-by-side comparisons.
    pub fn original_atlas() -> Self {
        CoreConfig {
            walk_fast_ms: 300_000,
            walk_slow_ms: 300_000,
            inventory_resync_ms: 600_000,
            deltas: false,
            push: false,
            neighbors_only: false,
            ..CoreConfig::default()
        }
    }

    /// Checks the values; the error names the field and what to do.
    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, msg: &str| if ok { Ok(()) } else { Err(msg.to_string()) };
        check(
            (1..=64).contains(&self.neighbors),
            "neighbors must be between 1 and 64",
        )?;
        check(
            (1..=100).contains(&self.batch_max_hashes),
            "batch_max_hashes must be between 1 and 100",
        )?;
        check(
            self.max_inflight_per_peer >= 1,
            "max_inflight_per_peer must be at least 1",
        )?;
        check(
            self.request_timeout_ms >= 100,
            "request_timeout_ms must be at least 100",
        )?;
        check(
            self.walk_fast_ms >= 10 && self.walk_slow_ms >= self.walk_fast_ms,
            "walk_fast_ms must be >= 10 and walk_slow_ms >= walk_fast_ms",
        )?;
        check(
            self.backoff_base_ms >= 1 && self.backoff_cap_ms >= self.backoff_base_ms,
            "backoff_base_ms must be >= 1 and backoff_cap_ms >= backoff_base_ms",
        )?;
        check(
            self.peer_table_capacity >= self.neighbors + self.max_inbound,
            "peer_table_capacity must hold at least neighbors + max_inbound peers",
        )?;
        check(
            self.peer_table_per_group >= 1,
            "peer_table_per_group must be at least 1",
        )?;
        check(
            self.inventory_resync_ms >= 1_000 && self.heartbeat_ms >= 1_000,
            "inventory_resync_ms and heartbeat_ms must be at least 1000",
        )?;
        check(
            self.neighbor_rotation_ms == 0 || self.neighbor_rotation_ms >= 1_000,
            "neighbor_rotation_ms must be 0 (off) or at least 1000",
        )?;
        Ok(())
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Names an inbound request so the driver can route the response back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundId(pub u64);

/// Where a stored zone file came from; decides whether it is pushed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Uploaded to this node's API.
    Local,
    /// Uploaded earlier, kept in the pending inbox until its hash was announced.
    Inbox,
    /// Fetched from a peer on our request.
    Fetched(PeerId),
    /// Pushed to us by a peer.
    Pushed(PeerId),
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Inbox => "inbox",
            Origin::Fetched(_) => "fetched",
            Origin::Pushed(_) => "pushed",
        }
    }

    fn peer(self) -> Option<PeerId> {
        match self {
            Origin::Fetched(p) | Origin::Pushed(p) => Some(p),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Event {
    PeerConnected {
        peer: PeerId,
        /// The address we dialed, when we dialed; inbound remote ports are ephemeral.
        dialed_addr: Option<Multiaddr>,
    },
    PeerDisconnected {
        peer: PeerId,
    },
    /// Listen addresses a peer reported about itself (identify).
    PeerAddresses {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    },
    Request {
        peer: PeerId,
        id: InboundId,
        request: Request,
    },
    Response {
        peer: PeerId,
        id: RequestId,
        response: Response,
    },
    RequestFailed {
        peer: PeerId,
        id: RequestId,
    },
    /// The peer sent something undecodable; the driver already dropped it.
    Malformed {
        peer: PeerId,
    },
    /// Whitelist entries `from_index..` in chain order. A `from_index` below
    /// our length first rolls back to it.
    WhitelistGrew {
        from_index: u64,
        hashes: Vec<Hash160>,
    },
    WhitelistRolledBack {
        to_index: u64,
    },
    ZonefileStored {
        hash: Hash160,
        bytes: Bytes,
        origin: Origin,
    },
    StoreFailed {
        hash: Hash160,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send a request; `addrs` are our known addresses for the peer, so the
    /// driver can dial even after libp2p forgot them.
    Send {
        peer: PeerId,
        id: RequestId,
        request: Request,
        addrs: Vec<Multiaddr>,
    },
    Respond {
        peer: PeerId,
        id: InboundId,
        response: Response,
    },
    /// Answer a `GetZonefiles` request from the store: the core does not hold bytes.
    ServeZonefiles {
        peer: PeerId,
        id: InboundId,
        hashes: Vec<Hash160>,
    },
    Disconnect {
        peer: PeerId,
    },
    /// Persist a zone file whose hash was verified against the whitelist, then
    /// report `ZonefileStored` (or `StoreFailed`).
    Store {
        hash: Hash160,
        bytes: Bytes,
        origin: Origin,
    },
    /// A pushed zone file whose hash we have not seen announced yet: keep it in
    /// the pending inbox in case our whitelist is behind the sender's.
    Stash {
        hash: Hash160,
        bytes: Bytes,
        from: PeerId,
    },
    Penalize {
        peer: PeerId,
        reason: Penalty,
        banned: bool,
    },
}

/// Measurements the driver turns into histograms.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    FetchLatency(Duration),
    PushFanout(u32),
    /// Where a walk step landed (a sample of the MHRW-DA walk).
    WalkSample(PeerId),
}

/// Counters kept by the core; the driver exports them as metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub duplicates_received: u64,
    pub files_pushed: u64,
    pub files_fetched: u64,
    pub fetch_requests: u64,
    pub fetch_failures: u64,
    pub walk_steps: u64,
    /// Inventory or fetch requests a peer refused as busy (no room for us).
    pub refused_busy: u64,
}

#[derive(Debug)]
struct Neighbor {
    outbound: bool,
    /// `None` until the first full inventory arrives.
    inventory: Option<RangeSet>,
    inflight_fetches: usize,
    next_resync: Instant,
    last_sent: Instant,
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

/// A snapshot for status pages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CoreStatus {
    pub announced: u64,
    pub present: u64,
    pub missing: u64,
    pub neighbors: usize,
    pub outbound_neighbors: usize,
    pub peers_known: usize,
    pub connected: usize,
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

    /// A peer remembered from an earlier run.
    pub fn add_known_peer(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        self.peers.learn(peer, addrs, now);
    }

    /// Marks hashes the store already holds (at start-up), without pushing or
    /// announcing them: neighbours learn them from our full inventory.
    pub fn restore_present(&mut self, held: impl IntoIterator<Item = Hash160>) {
        for h in held {
            for i in self.whitelist.positions(&h) {
                self.present.insert(i);
                self.sched.remove(i);
            }
        }
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
            Event::RequestFailed { peer, id } => {
                if let Some(o) = self.take_outstanding(id) {
                    debug_assert_eq!(o.peer, peer);
                    self.on_failed(now, o, Penalty::Timeout);
                }
            }
            Event::Malformed { peer } => self.penalize(now, peer, Penalty::Malformed),
            Event::WhitelistGrew { from_index, hashes } => {
                self.on_whitelist_grew(now, from_index, hashes)
            }
            Event::WhitelistRolledBack { to_index } => self.on_rollback(to_index),
            Event::ZonefileStored {
                hash,
                bytes,
                origin,
            } => self.on_stored(now, hash, bytes, origin),
            Event::StoreFailed { hash } => {
                self.storing.remove(&hash);
                self.fetch_failed(hash, now);
            }
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
                self.on_failed(now, o, Penalty::Timeout);
            }
        }
        if self.sched.next_deadline().is_some_and(|t| t <= now) {
            self.sched.on_timer(now);
            self.sched_dirty = true;
        }
        if self.delta_due.is_some_and(|t| t <= now) {
            self.flush_delta(now);
        }
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
