//! Listen addresses checked before libp2p binds them.
//!
//! libp2p's TCP listener sets SO_REUSEPORT (so that dials can leave from the
//! listen port), which lets a second process bind a port a live node holds and
//! take half its inbound connections; QUIC reports a taken port later, with no
//! reason. A plain bind first makes both fail at start, with a message.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// The socket a listen address would bind, and whether it is UDP (QUIC).
fn socket_of(addr: &Multiaddr) -> Option<(SocketAddr, bool)> {
    let mut ip: Option<IpAddr> = None;
    for part in addr.iter() {
        match part {
            Protocol::Ip4(v4) => ip = Some(v4.into()),
            Protocol::Ip6(v6) => ip = Some(v6.into()),
            Protocol::Tcp(port) => return Some((SocketAddr::new(ip?, port), false)),
            Protocol::Udp(port) => return Some((SocketAddr::new(ip?, port), true)),
            _ => {}
        }
    }
    None
}

/// Fails if the address's port is taken, naming the protocol and what to do.
pub fn check_free(addr: &Multiaddr) -> Result<(), String> {
    let Some((socket, udp)) = socket_of(addr) else {
        return Ok(());
    };
    if socket.port() == 0 {
        return Ok(());
    }
    let (result, what) = if udp {
        (UdpSocket::bind(socket).map(drop), "UDP (QUIC)")
    } else {
        (TcpListener::bind(socket).map(drop), "TCP")
    };
    result.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "{what} port {} is already in use (another atlas node?); stop it or choose \
             another port in p2p.listen",
            socket.port()
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine; use one of its addresses or 0.0.0.0 in \
             p2p.listen",
            socket.ip()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "{what} port {} needs privileges; use a port above 1023 in p2p.listen",
            socket.port()
        ),
        _ => format!("{what} {socket}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_named_for_tcp_and_udp() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        let e = check_free(&addr).unwrap_err();
        assert!(e.contains("TCP port") && e.contains("in use"), "{e}");

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/udp/{port}/quic-v1")
            .parse()
            .unwrap();
        let e = check_free(&addr).unwrap_err();
        assert!(e.contains("UDP (QUIC) port") && e.contains("in use"), "{e}");

        let any: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
        assert!(check_free(&any).is_ok());
        let foreign: Multiaddr = "/ip4/192.0.2.1/tcp/6264".parse().unwrap();
        assert!(check_free(&foreign).unwrap_err().contains("not an address"));
    }
}
