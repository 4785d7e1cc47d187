//! What the core and its drivers say to each other: the events it is fed,
//! the actions it queues, and what it counts.

use std::time::Duration;

use bytes::Bytes;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use serde::Serialize;

use super::messages::{Request, Response};
use super::peers::Penalty;
use crate::zonefile::Hash160;

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

    pub(super) fn peer(self) -> Option<PeerId> {
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
        /// Those of `hashes` the store holds already (kept from an earlier
        /// run or from before a rollback); a superset does no harm.
        held: Vec<Hash160>,
        /// Files that waited in the pending inbox for `hashes`, taken out of it.
        pending: Vec<(Hash160, Bytes)>,
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
    /// Answer a `GetZonefiles` request from the store (the core does not hold
    /// bytes), choosing the files with [`super::serve_within_budget`].
    ServeZonefiles {
        peer: PeerId,
        id: InboundId,
        hashes: Vec<Hash160>,
        budget: usize,
    },
    /// Open a connection: to a known peer (`peer` set), or to a bare seed
    /// address whose peer id we learn when it answers.
    Dial {
        peer: Option<PeerId>,
        addrs: Vec<Multiaddr>,
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
    /// Requests for files we announced before they arrived, held until they did.
    pub relay_waits: u64,
    /// Fetches of new files sent again to a second neighbour.
    pub hedges: u64,
}

/// One of the core's counters, as both drivers report it: `key` in the
/// simulator's summary, `metric` in Prometheus (under `atlas_`, with `_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    pub key: &'static str,
    pub metric: &'static str,
    pub help: &'static str,
    pub value: u64,
}

impl Stats {
    pub fn failures(&self, reason: Failure) -> u64 {
        self.request_failures[reason as usize]
    }

    /// Every counter but the per-reason failures, in one fixed order: the one
    /// list the node exports and the simulator sums.
    pub fn counted(&self) -> [Counted; 12] {
        let c = |key, metric, help, value| Counted {
            key,
            metric,
            help,
            value,
        };
        [
            c(
                "duplicates_received",
                "duplicate_zonefiles",
                "Zone-file copies received that were already held",
                self.duplicates_received,
            ),
            c(
                "files_pushed",
                "zonefiles_pushed",
                "Zone-file copies pushed to neighbours",
                self.files_pushed,
            ),
            c(
                "files_fetched",
                "zonefiles_fetched",
                "Zone files received in answers to our fetches",
                self.files_fetched,
            ),
            c(
                "fetch_requests",
                "fetch_requests",
                "Zone-file fetch requests sent",
                self.fetch_requests,
            ),
            c(
                "fetch_failures",
                "fetch_failures",
                "Zone-file fetch requests that failed",
                self.fetch_failures,
            ),
            c(
                "walk_steps",
                "walk_steps",
                "Completed MHRW-DA walk steps",
                self.walk_steps,
            ),
            c(
                "refused_busy",
                "refused_busy",
                "Inventory or fetch requests a peer refused for want of room for us",
                self.refused_busy,
            ),
            c(
                "pushes_received",
                "zonefile_pushes_received",
                "Zone files that arrived in pushes, new or not",
                self.pushes_received,
            ),
            c(
                "prunes",
                "push_tree_prunes",
                "Links taken out of the push tree (a push brought only duplicates)",
                self.prunes,
            ),
            c(
                "grafts",
                "push_tree_grafts",
                "Links put back into the push tree (a file announced there was not pushed)",
                self.grafts,
            ),
            c(
                "relay_waits",
                "relay_waits",
                "Requests for files announced before they arrived, answered on arrival",
                self.relay_waits,
            ),
            c(
                "hedges",
                "fetch_hedges",
                "Fetches of new files also sent to a second neighbour after a delay",
                self.hedges,
            ),
        ]
    }

    /// Adds another node's counters (the simulator's totals).
    pub fn add(&mut self, other: &Stats) {
        self.duplicates_received += other.duplicates_received;
        self.files_pushed += other.files_pushed;
        self.files_fetched += other.files_fetched;
        self.fetch_requests += other.fetch_requests;
        self.fetch_failures += other.fetch_failures;
        self.walk_steps += other.walk_steps;
        self.refused_busy += other.refused_busy;
        self.pushes_received += other.pushes_received;
        self.prunes += other.prunes;
        self.grafts += other.grafts;
        self.relay_waits += other.relay_waits;
        self.hedges += other.hedges;
        for (a, b) in self.request_failures.iter_mut().zip(other.request_failures) {
            *a += b;
        }
    }
}

/// A snapshot for status pages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CoreStatus {
    pub announced: u64,
    pub present: u64,
    pub missing: u64,
    pub neighbors: usize,
    pub outbound_neighbors: usize,
    /// Neighbours whose whitelist is not a prefix of ours (nor ours of theirs).
    pub diverged_neighbors: usize,
    pub peers_known: usize,
    pub connected: usize,
}
