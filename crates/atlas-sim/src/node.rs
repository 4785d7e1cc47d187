//! One simulated node's state besides its core: its disk (zone files held,
//! the pending inbox), its connections and its requests in flight; and the
//! names the engine and the record share.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use atlas_core::driver::Driver;
use atlas_core::inbox::{InboxLedger, InboxLimits};
use atlas_core::zonefile::Hash160;
use atlas_core::{Core, Instant, Request, RequestId};

pub type NodeId = u32;

/// What a node is, for the driver (the core is the same in all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Seed,
    Honest,
    /// Advertises its files but never serves them.
    Withholder,
    /// Answers peer exchanges with fake identities.
    Sybil,
}

/// One side of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub epoch: u64,
    pub last_active: u64,
}

pub struct SimNode {
    /// The core, with its requests in flight (the same piece the node uses).
    pub driver: Driver,
    pub peer: PeerId,
    pub addr: Multiaddr,
    pub alive: bool,
    pub role: Role,
    pub group: u16,
    /// Zone files on this node's disk, by file number.
    pub held: Vec<u64>,
    pub held_count: u32,
    /// Uploads and pushes waiting for their announcement.
    pub inbox: SimInbox,
    /// Whitelist entries this node's follower has delivered.
    pub whitelist_len: usize,
    /// The reorganisations its follower has seen (`Sim::fork_epoch`).
    pub chain_epoch: u32,
    pub timer: Option<Instant>,
    pub conns: BTreeMap<NodeId, Conn>,
    /// Requests being served: who asked, their id, kind, and when the asker gives up.
    pub(super) inbound: HashMap<u64, (NodeId, RequestId, Kind, u64)>,
    /// Our requests awaiting an answer: id -> (target, kind).
    pub(super) inflight: HashMap<RequestId, (Option<NodeId>, Kind)>,
    pub up_free: u64,
    pub joined_us: u64,
    pub left_us: Option<u64>,
    /// Walk samples (any node's) that landed here.
    pub walk_visits: u64,
    pub(super) walk_steps_seen: u64,
}

impl SimNode {
    pub fn new(
        core: Core,
        peer: PeerId,
        addr: Multiaddr,
        role: Role,
        group: u16,
        now: u64,
    ) -> SimNode {
        SimNode {
            driver: Driver::new(core),
            peer,
            addr,
            alive: true,
            role,
            group,
            held: Vec::new(),
            held_count: 0,
            inbox: SimInbox::default(),
            whitelist_len: 0,
            chain_epoch: 0,
            timer: None,
            conns: BTreeMap::new(),
            inbound: HashMap::new(),
            inflight: HashMap::new(),
            up_free: now,
            joined_us: now,
            left_us: None,
            walk_visits: 0,
            walk_steps_seen: 0,
        }
    }

    pub fn holds(&self, file: u32) -> bool {
        self.held
            .get(file as usize / 64)
            .is_some_and(|w| w & (1 << (file % 64)) != 0)
    }

    /// The files on this node's disk, by number, in order.
    pub fn held_files(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.held_count as usize);
        for (w, &word) in self.held.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                out.push(w as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        out
    }

    /// Marks `file` held; false if it already was.
    pub(super) fn hold(&mut self, file: u32) -> bool {
        let (w, bit) = (file as usize / 64, 1u64 << (file % 64));
        if self.held.len() <= w {
            self.held.resize(w + 1, 0);
        }
        let new = self.held[w] & bit == 0;
        self.held[w] |= bit;
        self.held_count += new as u32;
        new
    }

    pub fn counts(&self) -> bool {
        self.alive && self.role != Role::Sybil
    }
}

/// The pending inbox in memory, bounded and evicted by the core's ledger as
/// the node's store is.
pub struct SimInbox {
    ledger: InboxLedger,
    files: BTreeMap<Hash160, Bytes>,
}

impl Default for SimInbox {
    fn default() -> Self {
        SimInbox {
            ledger: InboxLedger::new(InboxLimits::default()),
            files: BTreeMap::new(),
        }
    }
}

impl SimInbox {
    /// Keeps a file until its announcement; what the ledger refuses is dropped.
    pub fn stash(&mut self, hash: Hash160, bytes: Bytes, source: &str) {
        let Ok(evict) = self.ledger.plan(&hash, source, bytes.len() as u64) else {
            return;
        };
        for e in &evict {
            self.files.remove(&e.hash);
        }
        let seq = self.ledger.next_seq();
        self.ledger
            .admit(&evict, source, seq, hash, bytes.len() as u64);
        self.files.insert(hash, bytes);
    }

    /// Removes and returns the files among `hashes`.
    pub fn take(&mut self, hashes: &[Hash160]) -> Vec<(Hash160, Bytes)> {
        hashes
            .iter()
            .filter_map(|h| {
                let b = self.files.remove(h)?;
                self.ledger.remove(h);
                Some((*h, b))
            })
            .collect()
    }
}

/// Message kinds for bandwidth accounting (a response counts as its request's kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Peers,
    Inventory,
    Delta,
    Zonefiles,
    Push,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Peers,
        Kind::Inventory,
        Kind::Delta,
        Kind::Zonefiles,
        Kind::Push,
    ];

    pub fn of(r: &Request) -> Kind {
        match r {
            Request::PeerExchange { .. } => Kind::Peers,
            Request::Inventory { .. } => Kind::Inventory,
            Request::InventoryDelta { .. } => Kind::Delta,
            Request::GetZonefiles { .. } => Kind::Zonefiles,
            Request::Push { .. } => Kind::Push,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Peers => "peers",
            Kind::Inventory => "inventory",
            Kind::Delta => "inventory_delta",
            Kind::Zonefiles => "zonefiles",
            Kind::Push => "push",
        }
    }
}
