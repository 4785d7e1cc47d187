//! Failure reasons: load and unreachability lower a peer's health and make us
//! wait; only a malformed answer costs score, and it costs it once.

use super::*;

fn penalties(actions: &[Action]) -> Vec<(PeerId, Penalty, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Penalize {
                peer,
                reason,
                banned,
            } => Some((*peer, *reason, *banned)),
            _ => None,
        })
        .collect()
}

/// A neighbour fails every fetch for `reason`, 500 times over a few minutes.
fn fail_fetches(reason: Failure) -> (Harness, PeerId, Vec<Action>) {
    let files = [file(0)];
    let cfg = CoreConfig {
        backoff_base_ms: 100,
        backoff_cap_ms: 100,
        ..quiet()
    };
    let mut h = Harness::new(cfg, &files);
    let b = PeerId::random();
    let addr = "/ip4/10.2.0.1/tcp/1".parse().unwrap();
    h.core.add_known_peer(b, vec![addr], h.now);
    h.add_neighbor(b, RangeSet::full(1));
    let mut all = h.actions();
    for _ in 0..500 {
        let Some((peer, id, _)) = fetches(&all).pop() else {
            panic!("the fetch is retried after {reason:?}");
        };
        h.core
            .handle(h.now, Event::RequestFailed { peer, id, reason });
        let mut acts = h.actions();
        if reason == Failure::Malformed && penalties(&acts).iter().any(|(_, _, banned)| *banned) {
            all.append(&mut acts);
            return (h, b, all);
        }
        h.advance(Duration::from_millis(200));
        acts.extend(h.actions());
        all = acts;
    }
    (h, b, all)
}

#[test]
fn load_and_unreachability_never_penalize_or_ban() {
    for reason in [
        Failure::Unreachable,
        Failure::Closed,
        Failure::Timeout,
        Failure::Refused,
    ] {
        let (h, b, _) = fail_fetches(reason);
        assert!(
            !h.core.peer_table().is_banned(&b, h.now),
            "{reason:?} banned the peer"
        );
        let e = h.core.peer_table().get(&b).unwrap();
        assert_eq!(e.score(h.now), 0.0, "{reason:?} cost score");
        assert!(e.health() < 0.1, "{reason:?} lowers health");
        assert!(
            h.core.stats.failures(reason) >= 100,
            "{reason:?} counted: {:?}",
            h.core.stats.request_failures
        );
    }
}

#[test]
fn a_malformed_answer_is_penalized_exactly_once() {
    let files = [file(0)];
    let mut h = Harness::new(quiet(), &files);
    let b = PeerId::random();
    h.add_neighbor(b, RangeSet::full(1));
    let (peer, id, _) = fetches(&h.actions()).pop().unwrap();
    h.core.handle(
        h.now,
        Event::RequestFailed {
            peer,
            id,
            reason: Failure::Malformed,
        },
    );
    assert_eq!(
        penalties(&h.actions()),
        vec![(b, Penalty::Malformed, false)]
    );
    // The same request failing again (a driver reporting it twice) is ignored.
    h.core.handle(
        h.now,
        Event::RequestFailed {
            peer,
            id,
            reason: Failure::Malformed,
        },
    );
    assert!(penalties(&h.actions()).is_empty());
    // Repeated malformed answers do ban.
    let (h, b, _) = fail_fetches(Failure::Malformed);
    assert!(h.core.peer_table().is_banned(&b, h.now));
}

/// A node whose only seed is down keeps trying it, with a capped backoff, and
/// gets its neighbour the moment the seed answers.
#[test]
fn an_unreachable_seed_is_retried_with_a_capped_backoff_and_never_banned() {
    let mut core = Core::new(CoreConfig::default(), PeerId::random(), vec![], 7);
    let seed = PeerId::random();
    core.add_seed(
        seed,
        vec!["/ip4/10.1.0.1/tcp/1".parse().unwrap()],
        Instant::ZERO,
    );
    let mut now = Instant::ZERO;
    let mut dials = Vec::new();
    // Ten minutes of a dead seed: every request to it fails to dial.
    while now < Instant::ZERO + Duration::from_secs(600) {
        now = now + Duration::from_millis(100);
        core.handle_timeout(now);
        let acts: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
        assert!(penalties(&acts).is_empty(), "{acts:?}");
        for a in acts {
            if let Action::Send { peer, id, .. } = a {
                assert_eq!(peer, seed);
                dials.push(now);
                core.handle(
                    now,
                    Event::RequestFailed {
                        peer,
                        id,
                        reason: Failure::Unreachable,
                    },
                );
            }
        }
    }
    assert!(!core.peer_table().is_banned(&seed, now));
    let gaps: Vec<u64> = dials.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert!(
        gaps.iter().take(3).all(|g| *g < 30),
        "early retries are quick: {gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g <= 31),
        "the seed's backoff is capped at 30 s: {gaps:?}"
    );
    assert!(
        dials.len() >= 20 && dials.len() <= 60,
        "retried, not hammered: {} dials in 10 min",
        dials.len()
    );

    // The seed comes back: it connects, and the next walk step uses it.
    core.handle(
        now,
        Event::PeerConnected {
            peer: seed,
            dialed_addr: None,
        },
    );
    let mut asked = false;
    for _ in 0..10 {
        now = now + Duration::from_millis(200);
        core.handle_timeout(now);
        asked |= std::iter::from_fn(|| core.poll_action())
            .any(|a| matches!(a, Action::Send { peer, .. } if peer == seed));
    }
    assert!(asked, "a connected seed is asked again at once");
}

/// Backpressure: a neighbour that refuses a stream (at capacity) gets fewer
/// requests in flight, and more again as it answers.
#[test]
fn a_refusing_neighbour_gets_fewer_requests_in_flight() {
    let files: Vec<_> = (0..12).map(file).collect();
    let cfg = CoreConfig {
        batch_max_hashes: 1,
        max_inflight_per_peer: 4,
        ..quiet()
    };
    let mut h = Harness::new(cfg, &files);
    let b = PeerId::random();
    h.add_neighbor(b, RangeSet::full(files.len() as u64));
    let mut inflight = fetches(&h.actions());
    assert_eq!(inflight.len(), 4);
    let (peer, id, _) = inflight.remove(0);
    h.core.handle(
        h.now,
        Event::RequestFailed {
            peer,
            id,
            reason: Failure::Refused,
        },
    );
    assert!(
        fetches(&h.actions()).is_empty(),
        "3 in flight, window halved to 2: nothing new"
    );
    // Answer everything as it comes; the window grows back to 4.
    let mut most = 0;
    for _ in 0..100 {
        let Some((peer, id, hashes)) = (!inflight.is_empty()).then(|| inflight.remove(0)) else {
            h.advance(Duration::from_millis(200));
            inflight.extend(fetches(&h.actions()));
            continue;
        };
        let zonefiles = hashes
            .iter()
            .map(|x| files.iter().find(|(f, _)| f == x).unwrap().1.clone())
            .collect();
        h.answer_fetch(peer, id, zonefiles);
        let acts = h.actions();
        inflight.extend(fetches(&acts));
        for a in acts {
            if let Action::Store {
                hash,
                bytes,
                origin,
            } = a
            {
                h.core.handle(
                    h.now,
                    Event::ZonefileStored {
                        hash,
                        bytes,
                        origin,
                    },
                );
            }
        }
        inflight.extend(fetches(&h.actions()));
        most = most.max(inflight.len());
    }
    assert_eq!(h.core.status().present, files.len() as u64);
    assert_eq!(most, 4, "the window grew back to max_inflight_per_peer");
}
