//! Who serves whom: only neighbours fetch, a full node says Busy, and every
//! neighbour holding something we lack gets work.

use super::*;

#[test]
fn a_full_node_says_busy_and_the_asker_looks_elsewhere() {
    let files = [file(0), file(1)];
    let cfg = CoreConfig {
        max_inbound: 1,
        ..quiet()
    };
    let mut server = Harness::new(cfg, &files);
    let first = PeerId::random();
    server.add_neighbor(first, RangeSet::new());
    server.actions();

    // No room for a second inbound neighbour: its inventory request is refused.
    let second = PeerId::random();
    let view = server.view();
    for (id, request) in [
        (
            InboundId(100),
            Request::Inventory {
                view,
                ancestry: vec![],
            },
        ),
        (
            InboundId(101),
            Request::GetZonefiles {
                hashes: vec![files[0].0],
                graft: false,
            },
        ),
    ] {
        server.core.handle(
            server.now,
            Event::Request {
                peer: second,
                id,
                request,
            },
        );
        let acts = server.actions();
        assert!(
            acts.iter().any(|a| matches!(
                a,
                Action::Respond { peer, id: i, response: Response::Busy } if *peer == second && *i == id
            )),
            "{id:?} refused with Busy: {acts:?}"
        );
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, Action::ServeZonefiles { .. } | Action::Penalize { .. })),
            "nothing served to a non-neighbour, nobody penalised"
        );
    }
    // The neighbour it has is still served.
    server.core.handle(
        server.now,
        Event::Request {
            peer: first,
            id: InboundId(102),
            request: Request::GetZonefiles {
                hashes: vec![files[0].0],
                graft: false,
            },
        },
    );
    assert!(
        server
            .actions()
            .iter()
            .any(|a| matches!(a, Action::ServeZonefiles { peer, .. } if *peer == first))
    );

    // The asker's side: a Busy answer to a fetch releases the files at once
    // (another holder is asked), drops the busy peer and penalises nobody.
    let mut asker = Harness::new(quiet(), &files);
    let (busy, other) = (PeerId::random(), PeerId::random());
    asker.add_neighbor(busy, RangeSet::full(2));
    let sent = fetches(&asker.actions());
    assert_eq!(sent.len(), 1, "one batch to the only holder");
    asker.add_neighbor(other, RangeSet::full(2));
    asker.actions();
    asker.core.handle(
        asker.now,
        Event::Response {
            peer: busy,
            id: sent[0].1,
            response: Response::Busy,
        },
    );
    let acts = asker.actions();
    let again = fetches(&acts);
    assert_eq!(again.len(), 1, "{acts:?}");
    assert_eq!(again[0].0, other);
    assert_eq!(again[0].2.len(), 2);
    assert!(!acts.iter().any(|a| matches!(a, Action::Penalize { .. })));
    assert!(
        !asker
            .core
            .neighbor_list()
            .iter()
            .any(|(p, _, _)| *p == busy),
        "the busy peer is no longer a neighbour"
    );
    assert_eq!(asker.core.stats.refused_busy, 1);
}

#[test]
fn the_original_profile_serves_anyone() {
    let files = [file(0)];
    let cfg = CoreConfig {
        max_inbound: 0,
        ..CoreConfig::original_atlas()
    };
    let mut h = Harness::new(cfg, &files);
    let stranger = PeerId::random();
    let view = h.view();
    h.core.handle(
        h.now,
        Event::Request {
            peer: stranger,
            id: InboundId(1),
            request: Request::Inventory {
                view,
                ancestry: vec![],
            },
        },
    );
    h.core.handle(
        h.now,
        Event::Request {
            peer: stranger,
            id: InboundId(2),
            request: Request::GetZonefiles {
                hashes: vec![files[0].0],
                graft: false,
            },
        },
    );
    let acts = h.actions();
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::Respond {
            response: Response::Inventory { .. },
            ..
        }
    )));
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::ServeZonefiles { peer, .. } if *peer == stranger))
    );
    assert!(h.core.neighbor_list().is_empty(), "served, not admitted");
}

#[test]
fn a_neighbour_holding_only_common_files_still_gets_work() {
    // 10,000 files: A holds all of them, B only the last 4,000. The first
    // 6,000 are the rarest (one holder) and fill the front of the queue
    // beyond what one batch looks at; B must still be asked for what it holds.
    let files: Vec<(Hash160, Bytes)> = (0..10_000u32)
        .map(|i| {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            (Hash160(h), Bytes::new())
        })
        .collect();
    let mut h = Harness::new(quiet(), &files);
    let (a, b) = (PeerId::random(), PeerId::random());
    h.add_neighbor(a, RangeSet::full(10_000));
    let mut last = RangeSet::new();
    last.insert_range(6000, 10_000);
    h.add_neighbor(b, last);
    let sent = fetches(&h.actions());
    let to_b: Vec<_> = sent.iter().filter(|f| f.0 == b).collect();
    assert_eq!(
        to_b.len(),
        4,
        "B's pipeline is full: {} requests",
        to_b.len()
    );
    let wl = h.core.whitelist().to_vec();
    for (_, _, hashes) in to_b {
        assert_eq!(hashes.len(), 100);
        for x in hashes {
            let idx = wl.iter().position(|w| w == x).unwrap();
            assert!(idx >= 6000, "B was asked for a file it does not hold");
        }
    }
    let mut asked: Vec<&Hash160> = sent.iter().flat_map(|f| f.2.iter()).collect();
    let n = asked.len();
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), n, "no file asked of two peers at once");
}
