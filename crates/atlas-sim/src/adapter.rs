//! The simulator's adapter for one node, without the virtual network: what
//! a node does with each thing the network reports, its inbox and its disk,
//! up to the point where it needs the network. The engine carries messages
//! and calls these; the driver-parity test replays a scripted session
//! through this same code and through the node's (`atlas_node::net::adapter`).

use bytes::Bytes;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use super::node::{Kind, NodeId, SimNode};
use atlas_core::zonefile::Hash160;
use atlas_core::{
    Action, Event, Failure, InboundId, Instant, Origin, Penalty, Request, RequestId, Response,
    Upload,
};

/// What became of one of the core's actions.
#[derive(Debug)]
pub enum Local {
    /// Done on the node (a stash).
    Done,
    /// On the node's disk now; the engine marks the file held.
    Stored(Hash160),
    /// A penalty, for the engine to count.
    Penalized(Penalty),
    /// For the network to carry out.
    Remote(Action),
}

impl SimNode {
    /// A connection to `peer` is up, and identify has told us where it
    /// listens, in the order libp2p reports them.
    pub fn on_connected(&mut self, now: Instant, peer: PeerId, addr: Multiaddr, we_dialed: bool) {
        let dialed_addr = we_dialed.then(|| addr.clone());
        self.driver.connected(now, peer, dialed_addr);
        self.driver.handle(
            now,
            Event::PeerAddresses {
                peer,
                addrs: vec![addr],
            },
        );
    }

    /// The core's timer is due.
    pub fn on_timer(&mut self, now: Instant) {
        self.driver.handle_timeout(now);
    }

    /// The connection to `from` is gone: what was in flight there fails,
    /// then the core hears of the disconnect. Returns how many failed.
    pub fn on_closed(&mut self, now: Instant, from: NodeId, peer: PeerId) -> usize {
        self.inflight.retain(|_, (t, _)| *t != Some(from));
        self.driver.disconnected(now, peer)
    }

    /// A request from node `from`; `deadline` is when its asker gives up.
    pub fn on_request(
        &mut self,
        now: Instant,
        from: (NodeId, PeerId),
        id: RequestId,
        request: Request,
        deadline: u64,
    ) {
        let kind = Kind::of(&request);
        // The core's answer is queued until the route back is kept.
        let iid = self.driver.request(now, from.1, request);
        self.inbound.insert(iid.0, (from.0, id, kind, deadline));
    }

    /// A frame from `peer` that did not decode. (The virtual network
    /// never corrupts one; the driver-parity test does.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn on_malformed(&mut self, now: Instant, peer: PeerId) {
        self.driver.malformed(now, peer);
    }

    /// We sent request `id` to `target` (none: an identity nobody has).
    pub fn sent(&mut self, id: RequestId, target: Option<NodeId>, kind: Kind) {
        self.inflight.insert(id, (target, kind));
    }

    /// An answer to our request `id`; false if it is no longer awaited.
    pub fn on_response(&mut self, now: Instant, id: RequestId, response: Response) -> bool {
        let awaited = self.inflight.remove(&id).is_some();
        if awaited {
            self.driver.response(now, id, response);
        }
        awaited
    }

    /// Request `id` could not be delivered (`Unreachable`: its dial failed)
    /// or its answer was not read; false if it is no longer awaited.
    pub fn on_failed(&mut self, now: Instant, id: RequestId, reason: Failure) -> bool {
        let awaited = self.inflight.remove(&id).is_some();
        if awaited {
            self.driver.failed(now, id, reason);
        }
        awaited
    }

    /// The inbound request `id` is answered or abandoned: where the answer
    /// would go (asker, its request id, kind, its deadline).
    pub fn take_inbound(&mut self, id: InboundId) -> Option<(NodeId, RequestId, Kind, u64)> {
        self.driver.answered(id);
        self.inbound.remove(&id.0)
    }

    /// A user's upload at the node's API: stored, stashed until announced,
    /// or already held.
    pub fn upload(&mut self, now: Instant, hash: Hash160, bytes: Bytes) -> Upload {
        let decision = self.driver.core.upload_decision(&hash);
        match decision {
            Upload::Store => self.driver.handle(
                now,
                Event::ZonefileStored {
                    hash,
                    bytes,
                    origin: Origin::Local,
                },
            ),
            Upload::AlreadyHeld => {}
            Upload::Stash => self.inbox.stash(hash, bytes, "ip:client"),
        }
        decision
    }

    /// New announcements, with which of them the disk already `held`;
    /// uploads that waited in the inbox for them go to the core.
    pub fn whitelist_grew(
        &mut self,
        now: Instant,
        from_index: u64,
        hashes: Vec<Hash160>,
        held: Vec<Hash160>,
    ) {
        let pending = self.inbox.take(&hashes);
        self.driver.handle(
            now,
            Event::WhitelistGrew {
                from_index,
                hashes,
                held,
                pending,
            },
        );
    }

    /// Carries out an action that needs no network.
    pub fn apply_local(&mut self, now: Instant, action: Action) -> Local {
        match action {
            Action::Store {
                hash,
                bytes,
                origin,
            } => {
                // The in-memory disk never fails a write.
                self.driver.handle(
                    now,
                    Event::ZonefileStored {
                        hash,
                        bytes,
                        origin,
                    },
                );
                Local::Stored(hash)
            }
            Action::Stash { hash, bytes, from } => {
                self.inbox.stash(hash, bytes, &format!("peer:{from}"));
                Local::Done
            }
            Action::Penalize { reason, .. } => Local::Penalized(reason),
            other => Local::Remote(other),
        }
    }
}
