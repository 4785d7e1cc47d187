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
mod config;
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
use serde::Serialize;

use crate::zonefile::{Hash160, Hash160Set};
use announced::Announced;
pub use config::CoreConfig;
use inventory::RangeSet;
pub use messages::{ChainView, PeerRecord, Protocol, Request, Response};
use peers::PeerTable;
pub use peers::Penalty;
use scheduler::Scheduler;
pub use time::Instant;
use walker::Walker;

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

/// Why an outbound request got no answer. Only `Malformed` says the peer
/// misbehaved; the others happen to honest peers under load, behind a
/// firewall, or while restarting, so they lower its health, never its score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// No connection could be made.
    Unreachable,
    /// The connection closed before the answer came.
    Closed,
    /// No answer within the request timeout.
    Timeout,
    /// The peer dropped or reset the stream: it is at capacity.
    Refused,
    /// The answer did not decode.
    Malformed,
}

impl Failure {
    pub const ALL: [Failure; 5] = [
        Failure::Unreachable,
        Failure::Closed,
        Failure::Timeout,
        Failure::Refused,
        Failure::Malformed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Failure::Unreachable => "unreachable",
            Failure::Closed => "closed",
            Failure::Timeout => "timeout",
            Failure::Refused => "refused",
            Failure::Malformed => "malformed",
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
        reason: Failure,
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
    /// The store no longer holds the file (it was found corrupt on disk and
    /// dropped): fetch it again.
    ZonefileLost {
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
    /// Requests that got no answer, by [`Failure`] (in `Failure::ALL` order).
    pub request_failures: [u64; 5],
    /// Zone files that arrived in pushes (new or not).
    pub pushes_received: u64,
    /// Links we took out of the push tree (a push brought only duplicates).
    pub prunes: u64,
    /// Links we put into the push tree (a file announced there and not pushed).
    pub grafts: u64,
}

impl Stats {
    pub fn failures(&self, reason: Failure) -> u64 {
        self.request_failures[reason as usize]
    }
}

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
    /// Missing positions a neighbour announced live and the push tree has
    /// not delivered: fetching one is a graft, and the file, once here, goes
    /// on down the tree like a pushed one.
    grafts: HashSet<u64>,

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
            grafts: HashSet::new(),
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
            Event::RequestFailed { peer, id, reason } => {
                if let Some(o) = self.take_outstanding(id) {
                    debug_assert_eq!(o.peer, peer);
                    self.on_failed(now, o, reason);
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
