//! The event loop: turns swarm events, API commands, whitelist updates and
//! timers into core events, and carries out the core's actions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use libp2p::metrics::Recorder;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Swarm, identify};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant as TokioInstant;

mod upkeep;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::codec::InboundRequest;
use super::handle::{Command, NodeStatus, PutError, PutOutcome};
use crate::atlas::driver::Driver;
use crate::atlas::{
    Action, Core, Event, Failure, InboundId, Instant as CoreInstant, Observation, Origin, Protocol,
    RequestId, Response, Upload,
};
use crate::metrics::{Metrics, OriginLabel, ReasonLabel};
use crate::store::{Store, StoreError};
use crate::whitelist::{ChainStatus, WhitelistUpdate};
use crate::zonefile::Hash160;

pub(super) struct EventLoop {
    swarm: Swarm<Behaviour>,
    /// The core, with the requests in flight and awaiting answers.
    driver: Driver,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    p2p_metrics: libp2p::metrics::Metrics,
    status: watch::Sender<NodeStatus>,
    chain: ChainStatus,
    start: TokioInstant,
    /// Request ids are per protocol behaviour, so the protocol is part of the key.
    outbound: HashMap<(Protocol, OutboundRequestId), RequestId>,
    inbound: HashMap<InboundId, (Protocol, ResponseChannel<Response>)>,
    penalties: u64,
    has_external: bool,
    /// Seeds whose last dial failed, logged once until they answer.
    seeds_down: std::collections::HashSet<String>,
    progress: Progress,
}

struct Progress {
    last_at: TokioInstant,
    last_present: u64,
}

impl EventLoop {
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        core: Core,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        p2p_metrics: libp2p::metrics::Metrics,
        status: watch::Sender<NodeStatus>,
        has_external: bool,
    ) -> Self {
        let present = core.status().present;
        EventLoop {
            swarm,
            driver: Driver::new(core),
            store,
            metrics,
            p2p_metrics,
            status,
            chain: ChainStatus::default(),
            start: TokioInstant::now(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            penalties: 0,
            has_external,
            seeds_down: Default::default(),
            progress: Progress {
                last_at: TokioInstant::now(),
                last_present: present,
            },
        }
    }

    fn now(&self) -> CoreInstant {
        CoreInstant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    fn to_tokio(&self, t: CoreInstant) -> TokioInstant {
        self.start + Duration::from_micros(t.as_micros())
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut whitelist: mpsc::Receiver<WhitelistUpdate>,
    ) {
        // What the core queued at start-up (promoted inbox files) comes first.
        self.drain_actions();
        let mut ticker = tokio::time::interval(Duration::from_secs(10));
        let mut whitelist_open = true;
        loop {
            let deadline = self
                .driver
                .core
                .poll_timeout()
                .map(|t| self.to_tokio(t))
                .unwrap_or_else(|| TokioInstant::now() + Duration::from_secs(3600));
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.on_command(cmd),
                },
                upd = whitelist.recv(), if whitelist_open => match upd {
                    Some(u) => self.on_whitelist(u),
                    None => whitelist_open = false,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    let now = self.now();
                    self.driver.handle_timeout(now);
                }
                _ = ticker.tick() => self.periodic(),
            }
            self.drain_actions();
            self.publish();
        }
        let now = self.now();
        if let Err(e) = self.store.save_peers(&self.driver.core.peer_snapshot(now)) {
            tracing::warn!("saving peers at shutdown: {e}");
        }
    }

    fn feed(&mut self, event: Event) {
        let now = self.now();
        self.driver.handle(now, event);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.p2p_metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Peers(e)) => self.on_rr(Protocol::Peers, e),
            SwarmEvent::Behaviour(BehaviourEvent::Inv(e)) => self.on_rr(Protocol::Inventory, e),
            SwarmEvent::Behaviour(BehaviourEvent::Zonefiles(e)) => {
                self.on_rr(Protocol::Zonefiles, e)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Push(e)) => self.on_rr(Protocol::Push, e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => {
                self.p2p_metrics.record(&e);
                if let identify::Event::Received { peer_id, info, .. } = e {
                    let addrs = info
                        .listen_addrs
                        .into_iter()
                        .filter(|a| !is_unspecified(a))
                        .collect();
                    self.feed(Event::PeerAddresses {
                        peer: peer_id,
                        addrs,
                    });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.p2p_metrics.record(&e),
            SwarmEvent::Behaviour(BehaviourEvent::Limits(v) | BehaviourEvent::PerIp(v)) => {
                match v {}
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } if num_established.get() == 1 => {
                let dialed_addr = endpoint.is_dialer().then(|| {
                    let mut a = endpoint.get_remote_address().clone();
                    if matches!(a.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
                        a.pop();
                    }
                    a
                });
                self.seed_reached(peer_id, dialed_addr.as_ref());
                if let Some(a) = &dialed_addr
                    && self.driver.core.is_bare_seed(a)
                {
                    tracing::info!(peer = %peer_id, "seed {a} answered");
                    let now = self.now();
                    self.driver.core.add_seed(peer_id, vec![a.clone()], now);
                }
                let now = self.now();
                self.driver.connected(now, peer_id, dialed_addr);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                // Its requests in flight fail first (libp2p reports them later).
                let now = self.now();
                self.driver.disconnected(now, peer_id);
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                self.on_dial_error(peer_id, &error)
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!("listening on {address}");
                if !self.has_external {
                    let addrs: Vec<_> = self.swarm.listeners().cloned().collect();
                    self.driver.core.set_listen_addrs(addrs);
                }
            }
            _ => {}
        }
    }

    fn on_rr(
        &mut self,
        protocol: Protocol,
        event: request_response::Event<InboundRequest, Response>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request: Err(rejected),
                    ..
                } => {
                    tracing::warn!(%peer, ?protocol, "malformed request refused: {}", rejected.0);
                    let now = self.now();
                    self.driver.malformed(now, peer);
                }
                request_response::Message::Request {
                    request: Ok(request),
                    channel,
                    ..
                } => {
                    let now = self.now();
                    // The core's answer is queued, not sent, until the channel is kept.
                    let id = self.driver.request(now, peer, request);
                    self.inbound.insert(id, (protocol, channel));
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(id) = self.outbound.remove(&(protocol, request_id)) {
                        let now = self.now();
                        self.driver.response(now, id, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let reason = failure_reason(&error);
                if reason == Failure::Malformed {
                    tracing::warn!(%peer, ?protocol, "malformed response: {error}");
                } else {
                    tracing::debug!(%peer, ?protocol, reason = reason.label(), "request failed: {error}");
                }
                if let Some(id) = self.outbound.remove(&(protocol, request_id)) {
                    let now = self.now();
                    self.driver.failed(now, id, reason);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if let request_response::InboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    tracing::warn!(%peer, ?protocol, "malformed request refused: {e}");
                    let now = self.now();
                    self.driver.malformed(now, peer);
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Put {
                bytes,
                source,
                reply,
            } => {
                let _ = reply.send(self.put(bytes, &source));
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos());
            }
            Command::Shutdown => {}
        }
    }

    fn put(&mut self, bytes: Bytes, source: &str) -> Result<PutOutcome, PutError> {
        let hash = Hash160::of(&bytes);
        match self.driver.core.upload_decision(&hash) {
            Upload::Stash => {
                self.store.stash_pending(&hash, &bytes, source)?;
                Ok(PutOutcome::Pending { hash })
            }
            Upload::AlreadyHeld => Ok(PutOutcome::Stored { hash, new: false }),
            Upload::Store => {
                self.commit(vec![(hash, bytes, Origin::Local)])?;
                Ok(PutOutcome::Stored { hash, new: true })
            }
        }
    }

    fn on_whitelist(&mut self, update: WhitelistUpdate) {
        match update {
            WhitelistUpdate::Grew { from_index, hashes } => {
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
                self.feed(Event::WhitelistGrew {
                    from_index,
                    hashes,
                    held,
                    pending,
                });
            }
            WhitelistUpdate::RolledBack { to_index } => {
                if let Err(e) = self.store.set_announcements(to_index, &[]) {
                    tracing::error!("persisting whitelist rollback: {e}");
                    return;
                }
                tracing::warn!(to_index, "whitelist rolled back");
                self.feed(Event::WhitelistRolledBack { to_index });
            }
            WhitelistUpdate::Chain(status) => self.chain = status,
        }
    }

    /// Carries out the core's actions; zone files to store are written in one
    /// commit per round, and their `ZonefileStored` events may queue more.
    fn drain_actions(&mut self) {
        loop {
            let mut to_store = Vec::new();
            while let Some(action) = self.driver.poll_action() {
                match action {
                    Action::Store {
                        hash,
                        bytes,
                        origin,
                    } => to_store.push((hash, bytes, origin)),
                    other => self.execute(other),
                }
            }
            if to_store.is_empty() {
                break;
            }
            // A failure is the store's to report; the core refetches later.
            let _ = self.commit(to_store);
        }
        for obs in self.driver.core.drain_observations() {
            match obs {
                Observation::FetchLatency(d) => self.metrics.fetch_latency.observe(d.as_secs_f64()),
                Observation::PushFanout(n) => self.metrics.push_fanout.observe(f64::from(n)),
                Observation::WalkSample(_) => {}
            }
        }
    }

    /// Writes a batch in one commit and tells the core how it went.
    fn commit(&mut self, batch: Vec<(Hash160, Bytes, Origin)>) -> Result<(), StoreError> {
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
            self.feed(event);
        }
        result
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Send {
                peer,
                id,
                request,
                addrs,
            } => {
                let protocol = request.protocol();
                let rid = self
                    .swarm
                    .behaviour_mut()
                    .protocol(protocol)
                    .send_request_with_addresses(&peer, Ok(request), addrs);
                self.outbound.insert((protocol, rid), id);
            }
            Action::Respond { id, response, .. } => self.respond(id, response),
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
                self.respond(id, response);
                self.drop_corrupt();
            }
            Action::Dial {
                peer: Some(peer),
                addrs,
            } => {
                let opts = DialOpts::peer_id(peer)
                    .addresses(addrs)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let _ = self.swarm.dial(opts);
            }
            Action::Dial { peer: None, addrs } => {
                for addr in addrs {
                    if let Err(e) = self.swarm.dial(addr.clone()) {
                        tracing::debug!("dialing seed {addr}: {e}");
                    }
                }
            }
            Action::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
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
                    tracing::warn!(%peer, reason = reason.label(), "peer banned");
                } else {
                    tracing::debug!(%peer, reason = reason.label(), "peer penalized");
                }
            }
            Action::Store { .. } => unreachable!("stores are batched by drain_actions"),
        }
    }

    fn respond(&mut self, id: InboundId, response: Response) {
        self.driver.answered(id);
        if let Some((protocol, channel)) = self.inbound.remove(&id) {
            // The peer may have gone; nothing to do then.
            let _ = self
                .swarm
                .behaviour_mut()
                .protocol(protocol)
                .send_response(channel, response);
        }
    }
}

/// What a libp2p outbound failure means for the peer. A stream the remote
/// dropped or reset (it was at capacity) is load, not a fault.
fn failure_reason(error: &request_response::OutboundFailure) -> Failure {
    use request_response::OutboundFailure as F;
    match error {
        F::DialFailure => Failure::Unreachable,
        F::Timeout => Failure::Timeout,
        F::ConnectionClosed => Failure::Closed,
        F::UnsupportedProtocols => Failure::Refused,
        F::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => Failure::Malformed,
        F::Io(_) => Failure::Refused,
    }
}

fn is_unspecified(a: &libp2p::Multiaddr) -> bool {
    a.iter().any(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_unspecified(),
        libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}
