//! The event loop: turns swarm events, API commands, whitelist updates and
//! timers into core events, and carries out the core's actions.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::metrics::Recorder;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Swarm, identify};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant as TokioInstant;

mod upkeep;

use super::adapter::{NodeAdapter, Outgoing};
use super::behaviour::{Behaviour, BehaviourEvent};
use super::codec::InboundRequest;
use super::handle::{Command, NodeStatus};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::whitelist::{ChainStatus, WhitelistUpdate};
use atlas_core::{Core, Instant as CoreInstant, Protocol, Response};

pub(super) struct EventLoop {
    swarm: Swarm<Behaviour>,
    /// Everything but the swarm: the core, the store, requests in flight.
    adapter: NodeAdapter<OutboundRequestId, ResponseChannel<Response>>,
    metrics: Arc<Metrics>,
    p2p_metrics: libp2p::metrics::Metrics,
    status: watch::Sender<NodeStatus>,
    chain: ChainStatus,
    start: TokioInstant,
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
            adapter: NodeAdapter::new(core, store, metrics.clone()),
            metrics,
            p2p_metrics,
            status,
            chain: ChainStatus::default(),
            start: TokioInstant::now(),
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
                .adapter
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
                    self.adapter.timeout(now);
                }
                _ = ticker.tick() => self.periodic(),
            }
            self.drain_actions();
            self.publish();
        }
        let now = self.now();
        let snapshot = self.adapter.driver.core.peer_snapshot(now);
        if let Err(e) = self.adapter.store.save_peers(&snapshot) {
            tracing::warn!("saving peers at shutdown: {e}");
        }
    }

    /// Unpacks a swarm event for the adapter; what is about sockets only
    /// (listen addresses, dial errors worth a log line) stays here.
    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.p2p_metrics.record(&event);
        let now = self.now();
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
                    self.adapter.identified(now, peer_id, addrs);
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
                self.adapter.connected(now, peer_id, dialed_addr);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.adapter.closed(now, peer_id),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                self.on_dial_error(peer_id, &error)
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!("listening on {address}");
                if !self.has_external {
                    let addrs: Vec<_> = self.swarm.listeners().cloned().collect();
                    self.adapter.driver.core.set_listen_addrs(addrs);
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
        let now = self.now();
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.adapter.request(now, protocol, peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.adapter.response(now, protocol, request_id, response),
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => self
                .adapter
                .outbound_failure(now, protocol, peer, request_id, &error),
            request_response::Event::InboundFailure { peer, error, .. } => {
                self.adapter.inbound_failure(now, protocol, peer, &error)
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
                let now = self.now();
                let _ = reply.send(self.adapter.put(now, bytes, &source));
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos());
            }
            Command::Shutdown => {}
        }
    }

    fn on_whitelist(&mut self, update: WhitelistUpdate) {
        let now = self.now();
        match update {
            WhitelistUpdate::Grew { from_index, hashes } => {
                self.adapter.whitelist_grew(now, from_index, hashes)
            }
            WhitelistUpdate::RolledBack { to_index } => {
                self.adapter.whitelist_rolled_back(now, to_index)
            }
            WhitelistUpdate::Chain(status) => self.chain = status,
        }
    }

    /// Carries out what the adapter needs of the swarm.
    fn drain_actions(&mut self) {
        let now = self.now();
        for out in self.adapter.drain(now) {
            match out {
                Outgoing::Send {
                    protocol,
                    peer,
                    id,
                    request,
                    addrs,
                } => {
                    let key = self
                        .swarm
                        .behaviour_mut()
                        .protocol(protocol)
                        .send_request_with_addresses(&peer, Ok(request), addrs);
                    self.adapter.sent(protocol, key, id);
                }
                Outgoing::Respond {
                    protocol,
                    channel,
                    response,
                } => {
                    // The peer may have gone; nothing to do then.
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .protocol(protocol)
                        .send_response(channel, response);
                }
                Outgoing::Dial {
                    peer: Some(peer),
                    addrs,
                } => {
                    let opts = DialOpts::peer_id(peer)
                        .addresses(addrs)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    let _ = self.swarm.dial(opts);
                }
                Outgoing::Dial { peer: None, addrs } => {
                    for addr in addrs {
                        if let Err(e) = self.swarm.dial(addr.clone()) {
                            tracing::debug!("dialing seed {addr}: {e}");
                        }
                    }
                }
                Outgoing::Disconnect { peer } => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
        }
    }
}

fn is_unspecified(a: &libp2p::Multiaddr) -> bool {
    a.iter().any(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_unspecified(),
        libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}
