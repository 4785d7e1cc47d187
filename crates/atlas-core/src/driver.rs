//! What both drivers keep beside the core, in one piece: which requests are
//! in flight to which peer, and which inbound requests await an answer.
//!
//! Transports report the same things in different orders. libp2p tells of a
//! closed connection before it fails the requests that were on it; the
//! simulator did the opposite; and a response can still arrive for a request
//! the core has already given up on. Here a closed connection fails its
//! requests (`Failure::Closed`, in request order) before the core hears of
//! the disconnect, and a report about a request no longer in flight is
//! dropped, so the core sees the same events, in the same order, from the
//! node's event loop and from the simulator's engine.

use std::collections::BTreeMap;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use super::messages::{Request, Response};
use super::time::Instant;
use super::{Action, Core, Event, Failure, InboundId, RequestId};

pub struct Driver {
    pub core: Core,
    outbound: BTreeMap<RequestId, PeerId>,
    inbound: BTreeMap<InboundId, PeerId>,
    next_inbound: u64,
    /// The events fed to the core and the penalties it gave, in order, when
    /// recording (driver-parity tests).
    log: Option<Vec<String>>,
}

impl Driver {
    pub fn new(core: Core) -> Self {
        Driver {
            core,
            outbound: BTreeMap::new(),
            inbound: BTreeMap::new(),
            next_inbound: 0,
            log: None,
        }
    }

    /// From now on, every event fed to the core and every penalty it gives
    /// is recorded.
    pub fn record_events(&mut self) {
        self.log.get_or_insert_with(Vec::new);
    }

    pub fn recorded_events(&self) -> &[String] {
        self.log.as_deref().unwrap_or_default()
    }

    /// Feeds the core an event that needs no bookkeeping here (whitelist,
    /// store results, addresses).
    pub fn handle(&mut self, now: Instant, event: Event) {
        if let Some(log) = &mut self.log {
            log.push(format!("{event:?}"));
        }
        self.core.handle(now, event);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        // Requests the core gave up on may never be reported (an answer the
        // far side dropped): forget them here too.
        let core = &self.core;
        self.outbound.retain(|id, _| core.is_outstanding(*id));
    }

    /// The core's next action; a request it sends is in flight from here on.
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.core.poll_action()?;
        match &action {
            Action::Send { peer, id, .. } => {
                self.outbound.insert(*id, *peer);
            }
            Action::Penalize { peer, reason, .. } => {
                if let Some(log) = &mut self.log {
                    log.push(format!("Penalize {{ peer: {peer}, reason: {reason:?} }}"));
                }
            }
            _ => {}
        }
        Some(action)
    }

    pub fn connected(&mut self, now: Instant, peer: PeerId, dialed_addr: Option<Multiaddr>) {
        self.handle(now, Event::PeerConnected { peer, dialed_addr });
    }

    /// The last connection to `peer` closed: what was in flight on it fails
    /// first, then the core hears of the disconnect.
    pub fn disconnected(&mut self, now: Instant, peer: PeerId) -> usize {
        let failed: Vec<RequestId> = self
            .outbound
            .iter()
            .filter(|(_, p)| **p == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in &failed {
            self.outbound.remove(id);
            self.handle(
                now,
                Event::RequestFailed {
                    peer,
                    id: *id,
                    reason: Failure::Closed,
                },
            );
        }
        self.inbound.retain(|_, p| *p != peer);
        self.handle(now, Event::PeerDisconnected { peer });
        failed.len()
    }

    /// A request from `peer`; the id names it when the answer goes back.
    pub fn request(&mut self, now: Instant, peer: PeerId, request: Request) -> InboundId {
        let id = InboundId(self.next_inbound);
        self.next_inbound += 1;
        self.inbound.insert(id, peer);
        self.handle(now, Event::Request { peer, id, request });
        id
    }

    /// The inbound request is answered (or abandoned): forget it.
    pub fn answered(&mut self, id: InboundId) -> Option<PeerId> {
        self.inbound.remove(&id)
    }

    /// Whether our request `id` is still awaiting its answer.
    pub fn in_flight(&self, id: RequestId) -> Option<PeerId> {
        self.outbound.get(&id).copied()
    }

    /// An answer to our request `id`; dropped if it is no longer in flight.
    pub fn response(&mut self, now: Instant, id: RequestId, response: Response) -> bool {
        let Some(peer) = self.outbound.remove(&id) else {
            return false;
        };
        self.handle(now, Event::Response { peer, id, response });
        true
    }

    /// Our request `id` got no answer; dropped if it is no longer in flight
    /// (a closed connection already failed it).
    pub fn failed(&mut self, now: Instant, id: RequestId, reason: Failure) -> bool {
        let Some(peer) = self.outbound.remove(&id) else {
            return false;
        };
        self.handle(now, Event::RequestFailed { peer, id, reason });
        true
    }

    /// `peer` sent something that did not decode.
    pub fn malformed(&mut self, now: Instant, peer: PeerId) {
        self.handle(now, Event::Malformed { peer });
    }
}
