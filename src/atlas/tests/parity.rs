//! Driver parity: the two transports report the same happenings in
//! different orders (libp2p tells of a closed connection before failing the
//! requests that were on it; the simulator the other way round; answers can
//! come after the core gave up). Through the shared `Driver` the core sees
//! the same events in the same order, and gives the same penalties.

use super::*;
use crate::atlas::driver::Driver;

/// How a transport reports a connection closing with requests in flight.
#[derive(Clone, Copy)]
enum Order {
    /// libp2p: `ConnectionClosed`, then an `OutboundFailure` per request.
    CloseThenFailures,
    /// The simulator: each request fails, then the close.
    FailuresThenClose,
}

struct Run {
    d: Driver,
    now: Instant,
    sends: Vec<(RequestId, PeerId, Request)>,
    penalties: Vec<(PeerId, Penalty)>,
}

impl Run {
    fn drain(&mut self) {
        while let Some(a) = self.d.poll_action() {
            match a {
                Action::Send {
                    id, peer, request, ..
                } => self.sends.push((id, peer, request)),
                Action::Respond { id, .. } | Action::ServeZonefiles { id, .. } => {
                    self.d.answered(id);
                }
                Action::Penalize { peer, reason, .. } => self.penalties.push((peer, reason)),
                _ => {}
            }
        }
    }

    fn pending(&self, peer: PeerId, pick: impl Fn(&Request) -> bool) -> Vec<RequestId> {
        self.sends
            .iter()
            .filter(|(id, p, r)| *p == peer && pick(r) && self.d.in_flight(*id).is_some())
            .map(|(id, _, _)| *id)
            .collect()
    }

    fn advance(&mut self, secs: u64) {
        self.now = self.now + Duration::from_secs(secs);
        self.d.handle_timeout(self.now);
        self.drain();
    }
}

/// One scripted session: connections, requests both ways, an answer that
/// does not decode, a whitelist that grows with an upload waiting for it, a
/// late answer, and a connection that closes with fetches in flight.
fn session(order: Order) -> (Vec<String>, Vec<(PeerId, Penalty)>) {
    let files: Vec<(Hash160, Bytes)> = (0..6).map(file).collect();
    let [a, b] = [1u8, 2].map(|i| {
        PeerId::from_public_key(
            &libp2p::identity::Keypair::ed25519_from_bytes([i; 32])
                .unwrap()
                .public(),
        )
    });
    let mut core = Core::new(quiet(), PeerId::random(), vec![], 7);
    core.handle(
        Instant::ZERO,
        Event::WhitelistGrew {
            from_index: 0,
            hashes: files[..4].iter().map(|f| f.0).collect(),
            held: vec![],
            pending: vec![],
        },
    );
    let mut r = Run {
        d: Driver::new(core),
        now: Instant::ZERO,
        sends: Vec::new(),
        penalties: Vec::new(),
    };
    r.d.record_events();
    for peer in [a, b] {
        r.d.connected(r.now, peer, None);
        let view = r.d.core.view();
        r.d.request(
            r.now,
            peer,
            Request::Inventory {
                view,
                ancestry: vec![],
            },
        );
        r.drain();
        for id in r.pending(peer, |q| matches!(q, Request::Inventory { .. })) {
            let response = Response::Inventory {
                view,
                inventory: (0..6).collect(),
                ancestry: vec![],
            };
            r.d.response(r.now, id, response);
        }
        r.drain();
    }
    // A's first fetch answer does not decode.
    if let Some(&id) = r
        .pending(a, |q| matches!(q, Request::GetZonefiles { .. }))
        .first()
    {
        r.d.failed(r.now, id, Failure::Malformed);
        r.drain();
    }
    // Two more entries are announced; an upload of one waited in the inbox.
    r.d.handle(
        r.now,
        Event::WhitelistGrew {
            from_index: 4,
            hashes: vec![files[4].0, files[5].0],
            held: vec![],
            pending: vec![files[4].clone()],
        },
    );
    r.drain();
    // B's fetches time out in the core; B answers one afterwards anyway.
    let late = r.pending(b, |q| matches!(q, Request::GetZonefiles { .. }));
    r.advance(31);
    if let Some(&id) = late.first() {
        let response = Response::Zonefiles {
            zonefiles: vec![files[0].1.clone()],
            missing: vec![],
        };
        r.d.response(r.now, id, response);
        r.drain();
    }
    // A connection closes with requests in flight on it.
    let victim = [a, b]
        .into_iter()
        .find(|p| !r.pending(*p, |_| true).is_empty())
        .expect("the retries after the timeouts are in flight");
    let in_flight = r.pending(victim, |_| true);
    match order {
        Order::CloseThenFailures => {
            r.d.disconnected(r.now, victim);
            for id in in_flight {
                r.d.failed(r.now, id, Failure::Closed);
            }
        }
        Order::FailuresThenClose => {
            for id in in_flight {
                r.d.failed(r.now, id, Failure::Closed);
            }
            r.d.disconnected(r.now, victim);
        }
    }
    r.drain();
    (r.d.recorded_events().to_vec(), r.penalties)
}

#[test]
fn both_transport_orders_give_the_core_the_same_events_and_penalties() {
    let (node_events, node_penalties) = session(Order::CloseThenFailures);
    let (sim_events, sim_penalties) = session(Order::FailuresThenClose);
    assert_eq!(node_events, sim_events);
    assert_eq!(node_penalties, sim_penalties);
    // The session did what it says: a malformed answer (penalised once),
    // an inbox file, requests failed by the close before the disconnect.
    assert_eq!(
        node_penalties
            .iter()
            .filter(|(_, r)| *r == Penalty::Malformed)
            .count(),
        1
    );
    let closed = node_events
        .iter()
        .position(|e| e.starts_with("PeerDisconnected"))
        .expect("the close reached the core");
    assert!(
        node_events[..closed]
            .iter()
            .any(|e| e.starts_with("RequestFailed") && e.contains("Closed")),
        "requests in flight fail before the disconnect: {node_events:#?}"
    );
    assert!(
        !node_events[closed..]
            .iter()
            .any(|e| e.starts_with("RequestFailed")),
        "and nothing is reported for them afterwards"
    );
}
