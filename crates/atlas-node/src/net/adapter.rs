//! The node's adapter without the swarm: what the event loop does with each
//! libp2p report, the store and the metrics, up to the point where it needs
//! a socket. The event loop unpacks swarm events into calls here and carries
//! out the [`Outgoing`] it gets back.
//!
//! It is generic over the transport's request key `K` and response channel
//! `C` because libp2p's (`OutboundRequestId`, `ResponseChannel`) cannot be
//! made outside libp2p; the driver-parity test replays a scripted session
//! through this same code with plain numbers in their place.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use bytes::Bytes;
use libp2p::request_response::{InboundFailure, OutboundFailure};
use libp2p::{Multiaddr, PeerId};

use super::codec::InboundRequest;
use super::handle::{PutError, PutOutcome};
use crate::metrics::{Metrics, OriginLabel, ReasonLabel};
use crate::store::{Store, StoreError};
use atlas_core::driver::Driver;
use atlas_core::zonefile::Hash160;
use atlas_core::{
    Action, Core, Event, Failure, InboundId, Instant, Observation, Origin, Protocol, Request,
    RequestId, Response, Upload,
};

/// What the adapter needs the swarm to do.
#[derive(Debug)]
pub enum Outgoing<C> {
    /// Send; report the transport's key back with [`NodeAdapter::sent`].
    Send {
        protocol: Protocol,
        peer: PeerId,
        id: RequestId,
        request: Request,
        addrs: Vec<Multiaddr>,
    },
    Respond {
        protocol: Protocol,
        channel: C,
        response: Response,
    },
    Dial {
        peer: Option<PeerId>,
        addrs: Vec<Multiaddr>,
    },
    Disconnect {
        peer: PeerId,
    },
}

pub struct NodeAdapter<K, C> {
    /// The core, with the requests in flight and awaiting answers.
    pub driver: Driver,
    pub store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// Request keys are per protocol behaviour, so the protocol is part of the key.
    outbound: HashMap<(Protocol, K), RequestId>,
    inbound: HashMap<InboundId, (Protocol, C)>,
    pub penalties: u64,
}

impl<K: Hash + Eq, C> NodeAdapter<K, C> {
    pub fn new(core: Core, store: Arc<Store>, metrics: Arc<Metrics>) -> Self {
        NodeAdapter {
            driver: Driver::new(core),
            store,
            metrics,
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            penalties: 0,
        }
    }

    /// The first connection to `peer` is up.
    pub fn connected(&mut self, now: Instant, peer: PeerId, dialed_addr: Option<Multiaddr>) {
        self.driver.connected(now, peer, dialed_addr);
    }

    /// The last connection to `peer` closed. libp2p fails its requests
    /// afterwards; the driver has failed them already and drops those reports.
    pub fn closed(&mut self, now: Instant, peer: PeerId) {
        self.driver.disconnected(now, peer);
    }

    /// Identify told us where `peer` listens.
    pub fn identified(&mut self, now: Instant, peer: PeerId, addrs: Vec<Multiaddr>) {
        self.driver
            .handle(now, Event::PeerAddresses { peer, addrs });
    }

    /// A request from `peer`; its answer goes back on `channel`.
    pub fn request(
        &mut self,
        now: Instant,
        protocol: Protocol,
        peer: PeerId,
        request: InboundRequest,
        channel: C,
    ) {
        match request {
            Err(rejected) => {
                tracing::warn!(%peer, ?protocol, "malformed request refused: {}", rejected.0);
                // Dropping the channel resets the stream: the peer gets no answer.
                self.driver.malformed(now, peer);
            }
            Ok(request) => {
                // The core's answer is queued, not sent, until the channel is kept.
                let id = self.driver.request(now, peer, request);
                self.inbound.insert(id, (protocol, channel));
            }
        }
    }

    /// The transport took our request `id` under `key`.
    pub fn sent(&mut self, protocol: Protocol, key: K, id: RequestId) {
        self.outbound.insert((protocol, key), id);
    }

    pub fn response(&mut self, now: Instant, protocol: Protocol, key: K, response: Response) {
        if let Some(id) = self.outbound.remove(&(protocol, key)) {
            self.driver.response(now, id, response);
        }
    }

    pub fn outbound_failure(
        &mut self,
        now: Instant,
        protocol: Protocol,
        peer: PeerId,
        key: K,
        error: &OutboundFailure,
    ) {
        let reason = failure_reason(error);
        if reason == Failure::Malformed {
            tracing::warn!(%peer, ?protocol, "malformed response: {error}");
        } else {
            tracing::debug!(%peer, ?protocol, reason = reason.label(), "request failed: {error}");
        }
        if let Some(id) = self.outbound.remove(&(protocol, key)) {
            self.driver.failed(now, id, reason);
        }
    }

    /// A request that failed on our side of the stream. Only one that did
    /// not decode is the peer's fault; the codec turns those it can read
    /// whole into a rejected request, so this is the rest (a bad frame).
    pub fn inbound_failure(
        &mut self,
        now: Instant,
        protocol: Protocol,
        peer: PeerId,
        error: &InboundFailure,
    ) {
        if let InboundFailure::Io(e) = error
            && e.kind() == std::io::ErrorKind::InvalidData
        {
            tracing::warn!(%peer, ?protocol, "malformed request refused: {e}");
            self.driver.malformed(now, peer);
        }
    }

    pub fn timeout(&mut self, now: Instant) {
        self.driver.handle_timeout(now);
    }

    /// An upload from the API.
    pub fn put(
        &mut self,
        now: Instant,
        bytes: Bytes,
        source: &str,
    ) -> Result<PutOutcome, PutError> {
        let hash = Hash160::of(&bytes);
        match self.driver.core.upload_decision(&hash) {
            Upload::Stash => {
                self.store.stash_pending(&hash, &bytes, source)?;
                Ok(PutOutcome::Pending { hash })
            }
            Upload::AlreadyHeld => Ok(PutOutcome::Stored { hash, new: false }),
            Upload::Store => {
                self.commit(now, vec![(hash, bytes, Origin::Local)])?;
                Ok(PutOutcome::Stored { hash, new: true })
            }
        }
    }

    /// New announcements, persisted before the core hears of them.
    pub fn whitelist_grew(&mut self, now: Instant, from_index: u64, hashes: Vec<Hash160>) {
        if let Err(e) = self.store.set_announcements(from_index, &hashes) {
            tracing::error!("persisting whitelist: {e}");
            return;
        }
        tracing::info!(from_index, count = hashes.len(), "whitelist grew");
        // Files already on disk (from before a rollback) count at once,
        // and uploads that waited for these announcements are stored.
        let held = self.store.held_among(&hashes).unwrap_or_else(|e| {
            tracing::error!("reading held zone files: {e}");
            Vec::new()
        });
        let pending = self.store.pending_among(&hashes).unwrap_or_else(|e| {
            tracing::error!("reading pending inbox: {e}");
            Vec::new()
        });
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

    pub fn whitelist_rolled_back(&mut self, now: Instant, to_index: u64) {
        if let Err(e) = self.store.set_announcements(to_index, &[]) {
            tracing::error!("persisting whitelist rollback: {e}");
            return;
        }
        tracing::warn!(to_index, "whitelist rolled back");
        self.driver
            .handle(now, Event::WhitelistRolledBack { to_index });
    }

    /// Deletes zone files found corrupt on disk and has the core fetch them again.
    pub fn drop_corrupt(&mut self, now: Instant) {
        match self.store.drop_corrupt() {
            Ok(lost) => {
                for hash in lost {
                    self.driver.handle(now, Event::ZonefileLost { hash });
                }
            }
            Err(e) => tracing::debug!("dropping corrupt zone files: {e}"),
        }
    }

    /// Carries out the core's actions that need no socket and returns the
    /// rest, in order. Zone files to store are written in one commit per
    /// round, and their `ZonefileStored` events may queue more.
    pub fn drain(&mut self, now: Instant) -> Vec<Outgoing<C>> {
        let mut out = Vec::new();
        loop {
            let mut to_store = Vec::new();
            while let Some(action) = self.driver.poll_action() {
                match action {
                    Action::Store {
                        hash,
                        bytes,
                        origin,
                    } => to_store.push((hash, bytes, origin)),
                    other => self.execute(now, other, &mut out),
                }
            }
            if to_store.is_empty() {
                break;
            }
            // A failure is the store's to report; the core refetches later.
            let _ = self.commit(now, to_store);
        }
        for obs in self.driver.core.drain_observations() {
            match obs {
                Observation::FetchLatency(d) => self.metrics.fetch_latency.observe(d.as_secs_f64()),
                Observation::PushFanout(n) => self.metrics.push_fanout.observe(f64::from(n)),
                Observation::WalkSample(_) => {}
            }
        }
        out
    }

    /// Writes a batch in one commit and tells the core how it went.
    fn commit(
        &mut self,
        now: Instant,
        batch: Vec<(Hash160, Bytes, Origin)>,
    ) -> Result<(), StoreError> {
        let files: Vec<(Hash160, Bytes)> = batch.iter().map(|(h, b, _)| (*h, b.clone())).collect();
        let started = std::time::Instant::now();
        let result = self.store.put_zonefiles(&files);
        self.metrics
            .store_commit
            .observe(started.elapsed().as_secs_f64());
        // An inbox file leaves the inbox only once it is safely stored, so a
        // crash in between loses nothing (the next start promotes it again).
        let promoted: Vec<Hash160> = batch
            .iter()
            .filter(|(_, _, o)| *o == Origin::Inbox)
            .map(|(h, _, _)| *h)
            .collect();
        if result.is_ok()
            && !promoted.is_empty()
            && let Err(e) = self.store.take_pending(&promoted)
        {
            tracing::warn!("clearing promoted files from the inbox: {e}");
        }
        for (hash, bytes, origin) in batch {
            let event = match &result {
                Ok(()) => {
                    self.metrics
                        .stored
                        .get_or_create(&OriginLabel {
                            origin: origin.label(),
                        })
                        .inc();
                    Event::ZonefileStored {
                        hash,
                        bytes,
                        origin,
                    }
                }
                Err(e) => {
                    // The store logs its change of state once; this is per file.
                    tracing::debug!(%hash, "store write failed: {e}");
                    Event::StoreFailed { hash }
                }
            };
            self.driver.handle(now, event);
        }
        result
    }

    fn execute(&mut self, now: Instant, action: Action, out: &mut Vec<Outgoing<C>>) {
        match action {
            Action::Send {
                peer,
                id,
                request,
                addrs,
            } => out.push(Outgoing::Send {
                protocol: request.protocol(),
                peer,
                id,
                request,
                addrs,
            }),
            Action::Respond { id, response, .. } => self.respond(id, response, out),
            Action::ServeZonefiles {
                id, hashes, budget, ..
            } => {
                let response = match self.store.get_zonefiles(&hashes, budget) {
                    Ok((zonefiles, missing)) => Response::Zonefiles { zonefiles, missing },
                    Err(e) => {
                        tracing::error!("reading zone files for a peer: {e}");
                        Response::Zonefiles {
                            zonefiles: Vec::new(),
                            missing: Vec::new(),
                        }
                    }
                };
                self.respond(id, response, out);
                self.drop_corrupt(now);
            }
            Action::Dial { peer, addrs } => out.push(Outgoing::Dial { peer, addrs }),
            Action::Disconnect { peer } => out.push(Outgoing::Disconnect { peer }),
            Action::Stash { hash, bytes, from } => {
                if let Err(e) = self
                    .store
                    .stash_pending(&hash, &bytes, &format!("peer:{from}"))
                {
                    tracing::warn!(%from, "stashing pushed zone file: {e}");
                }
            }
            Action::Penalize {
                peer,
                reason,
                banned,
            } => {
                self.penalties += 1;
                self.metrics
                    .penalties
                    .get_or_create(&ReasonLabel {
                        reason: reason.label(),
                    })
                    .inc();
                if banned {
                    self.metrics
                        .bans
                        .get_or_create(&ReasonLabel {
                            reason: reason.label(),
                        })
                        .inc();
                    tracing::warn!(%peer, reason = reason.label(), "peer banned");
                } else {
                    tracing::debug!(%peer, reason = reason.label(), "peer penalized");
                }
            }
            Action::Store { .. } => unreachable!("stores are batched by drain"),
        }
    }

    fn respond(&mut self, id: InboundId, response: Response, out: &mut Vec<Outgoing<C>>) {
        self.driver.answered(id);
        // The peer may have gone, and its channel with it; nothing to do then.
        if let Some((protocol, channel)) = self.inbound.remove(&id) {
            out.push(Outgoing::Respond {
                protocol,
                channel,
                response,
            });
        }
    }
}

/// What a libp2p outbound failure means for the peer. A stream the remote
/// dropped or reset (it was at capacity) is load, not a fault.
pub fn failure_reason(error: &OutboundFailure) -> Failure {
    use OutboundFailure as F;
    match error {
        F::DialFailure => Failure::Unreachable,
        F::Timeout => Failure::Timeout,
        F::ConnectionClosed => Failure::Closed,
        F::UnsupportedProtocols => Failure::Refused,
        F::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => Failure::Malformed,
        F::Io(_) => Failure::Refused,
    }
}
