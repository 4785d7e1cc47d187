//! A cap on handshakes in progress per remote IP address.
//!
//! libp2p bounds pending inbound connections in total; without a per-address
//! bound one host holding that many silent TCP connections keeps every other
//! peer out until the handshake timeout, over and over.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

#[derive(Debug, thiserror::Error)]
#[error("{ip} already has {limit} handshakes in progress")]
pub struct TooManyPending {
    ip: IpAddr,
    limit: u32,
}

pub struct PendingPerIp {
    limit: u32,
    pending: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, u32>,
}

impl PendingPerIp {
    pub fn new(limit: u32) -> Self {
        PendingPerIp {
            limit,
            pending: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    fn release(&mut self, id: ConnectionId) {
        if let Some(ip) = self.pending.remove(&id)
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    #[cfg(test)]
    fn in_progress(&self) -> usize {
        self.pending.len()
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl NetworkBehaviour for PendingPerIp {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote_addr) else {
            return Ok(());
        };
        let n = self.per_ip.entry(ip).or_default();
        if *n >= self.limit {
            return Err(ConnectionDenied::new(TooManyPending {
                ip,
                limit: self.limit,
            }));
        }
        *n += 1;
        self.pending.insert(connection_id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.release(connection_id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.release(connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_at_most_the_limit_and_slots_come_back() {
        let mut b = PendingPerIp::new(2);
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let a: Multiaddr = "/ip4/10.0.0.1/tcp/50000".parse().unwrap();
        let other: Multiaddr = "/ip4/10.0.0.2/tcp/50000".parse().unwrap();
        let ids: Vec<ConnectionId> = (0..4).map(ConnectionId::new_unchecked).collect();
        assert!(
            b.handle_pending_inbound_connection(ids[0], &local, &a)
                .is_ok()
        );
        assert!(
            b.handle_pending_inbound_connection(ids[1], &local, &a)
                .is_ok()
        );
        assert!(
            b.handle_pending_inbound_connection(ids[2], &local, &a)
                .is_err()
        );
        assert!(
            b.handle_pending_inbound_connection(ids[3], &local, &other)
                .is_ok()
        );
        let peer = PeerId::random();
        b.handle_established_inbound_connection(ids[0], peer, &local, &a)
            .unwrap();
        assert!(
            b.handle_pending_inbound_connection(ids[2], &local, &a)
                .is_ok()
        );
        assert_eq!(b.in_progress(), 3);
    }
}
