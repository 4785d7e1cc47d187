//! The libp2p behaviour: connection limits, identify, ping, and one
//! request-response behaviour per Atlas protocol.

use std::sync::Arc;
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, connection_limits, identify, identity, ping, request_response};

use super::codec::AtlasCodec;
use super::ip_limits::PendingPerIp;
use crate::metrics::Metrics;
use atlas_core::Protocol;
use atlas_wire as wire;

pub const AGENT: &str = concat!("atlas/", env!("CARGO_PKG_VERSION"));
pub const IDENTIFY_PROTOCOL: &str = "/atlas/id/1.0.0";

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub per_ip: PendingPerIp,
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub peers: request_response::Behaviour<AtlasCodec>,
    pub inv: request_response::Behaviour<AtlasCodec>,
    pub zonefiles: request_response::Behaviour<AtlasCodec>,
    pub push: request_response::Behaviour<AtlasCodec>,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: u32,
    pub max_per_peer: u32,
    pub max_pending: u32,
    /// Handshakes in progress from one IP address.
    pub max_pending_per_ip: u32,
    /// Inbound requests open at once per connection and protocol.
    pub max_inbound_streams: usize,
}

impl Behaviour {
    pub fn new(
        key: &identity::Keypair,
        metrics: Option<Arc<Metrics>>,
        limits: Limits,
        request_timeout: Duration,
    ) -> Self {
        let rr = |p: Protocol| {
            let cfg = request_response::Config::default()
                .with_request_timeout(request_timeout)
                .with_max_concurrent_streams(limits.max_inbound_streams);
            request_response::Behaviour::with_codec(
                AtlasCodec::new(metrics.clone()),
                [(
                    StreamProtocol::new(wire::protocol_name(p)),
                    request_response::ProtocolSupport::Full,
                )],
                cfg,
            )
        };
        let conn_limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(limits.max_connections))
            .with_max_established_per_peer(Some(limits.max_per_peer))
            .with_max_pending_incoming(Some(limits.max_pending))
            .with_max_pending_outgoing(Some(limits.max_pending));
        Behaviour {
            per_ip: PendingPerIp::new(limits.max_pending_per_ip),
            limits: connection_limits::Behaviour::new(conn_limits),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(AGENT.into()),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            peers: rr(Protocol::Peers),
            inv: rr(Protocol::Inventory),
            zonefiles: rr(Protocol::Zonefiles),
            push: rr(Protocol::Push),
        }
    }

    pub fn protocol(&mut self, p: Protocol) -> &mut request_response::Behaviour<AtlasCodec> {
        match p {
            Protocol::Peers => &mut self.peers,
            Protocol::Inventory => &mut self.inv,
            Protocol::Zonefiles => &mut self.zonefiles,
            Protocol::Push => &mut self.push,
        }
    }
}
