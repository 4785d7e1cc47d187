//! Relaying: a file is announced on as soon as it is on its way, and a
//! request for it waits for it; promises that cannot be kept lapse.

use super::tree::{announce_from, settle};
use super::*;
use crate::relay::RELAY_WAIT;

fn deltas_to(actions: &[Action]) -> Vec<(PeerId, Vec<u64>)> {
    let mut v: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                peer,
                request: Request::InventoryDelta { added, .. },
                ..
            } => Some((*peer, added.iter().collect())),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn served(actions: &[Action]) -> Vec<(PeerId, InboundId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ServeZonefiles { peer, id, .. } => Some((*peer, *id)),
            _ => None,
        })
        .collect()
}

/// Three neighbours holding nothing; `a` then announces file 0.
fn relaying() -> (Harness, [(Hash160, Bytes); 2], [PeerId; 3]) {
    let files = [file(0), file(1)];
    let mut h = Harness::new(quiet(), &files);
    let peers = [PeerId::random(), PeerId::random(), PeerId::random()];
    for p in peers {
        h.add_neighbor(p, RangeSet::new());
    }
    h.actions();
    (h, files, peers)
}

fn answer(h: &mut Harness, peer: PeerId, id: RequestId, bytes: &Bytes) -> Vec<Action> {
    h.answer_fetch(peer, id, vec![bytes.clone()]);
    settle(h)
}

#[test]
fn a_file_first_announced_by_a_neighbour_is_asked_of_it_and_announced_on_at_once() {
    let (mut h, files, [a, b, c]) = relaying();
    let acts = announce_from(&mut h, a, 0);
    let asked = fetches(&acts);
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].0, asked[0].2.clone()), (a, vec![files[0].0]));
    // The announcement goes on now, not after the flush delay, and not back to `a`.
    h.advance(Duration::ZERO);
    let mut want = vec![(b, vec![0]), (c, vec![0])];
    want.sort();
    assert_eq!(deltas_to(&h.actions()), want);
}

#[test]
fn a_request_for_a_file_on_its_way_is_answered_when_it_arrives_and_it_is_not_announced_twice() {
    let (mut h, files, [a, b, _c]) = relaying();
    let asked = fetches(&announce_from(&mut h, a, 0));
    h.advance(Duration::ZERO);
    h.actions();
    let id = h.request(
        b,
        Request::GetZonefiles {
            hashes: vec![files[0].0],
            graft: false,
        },
    );
    assert!(
        served(&h.actions()).is_empty(),
        "answered before the file is here"
    );
    assert_eq!(h.core.stats.relay_waits, 1);
    let acts = answer(&mut h, a, asked[0].1, &files[0].1);
    assert_eq!(served(&acts), vec![(b, id)]);
    h.advance(Duration::from_millis(h.core.config().delta_flush_ms));
    assert!(deltas_to(&h.actions()).is_empty(), "announced twice");
}

#[test]
fn a_request_for_files_we_hold_is_answered_at_once() {
    let (mut h, files, [a, b, _c]) = relaying();
    let asked = fetches(&announce_from(&mut h, a, 0));
    answer(&mut h, a, asked[0].1, &files[0].1);
    let id = h.request(
        b,
        Request::GetZonefiles {
            hashes: vec![files[0].0, files[1].0],
            graft: false,
        },
    );
    assert_eq!(served(&h.actions()), vec![(b, id)]);
}

#[test]
fn a_promise_that_cannot_be_kept_lapses_and_the_waiting_request_is_answered() {
    let (mut h, files, [a, b, _c]) = relaying();
    let asked = fetches(&announce_from(&mut h, a, 0));
    let id = h.request(
        b,
        Request::GetZonefiles {
            hashes: vec![files[0].0],
            graft: false,
        },
    );
    // Our source fails us and nobody else has the file.
    h.core.handle(
        h.now,
        Event::RequestFailed {
            peer: a,
            id: asked[0].1,
            reason: Failure::Timeout,
        },
    );
    h.advance(RELAY_WAIT - Duration::from_secs(1));
    assert!(served(&h.actions()).is_empty(), "gave up early");
    h.advance(Duration::from_secs(2));
    assert_eq!(served(&h.actions()), vec![(b, id)]);
}

#[test]
fn when_our_source_leaves_another_holder_is_asked_and_the_waiting_request_still_answered() {
    let (mut h, files, [a, b, c]) = relaying();
    let asked = fetches(&announce_from(&mut h, a, 0));
    assert_eq!(asked[0].0, a);
    let id = h.request(
        b,
        Request::GetZonefiles {
            hashes: vec![files[0].0],
            graft: false,
        },
    );
    // `c` announces it too, then our source leaves before answering.
    announce_from(&mut h, c, 0);
    h.core.handle(h.now, Event::PeerDisconnected { peer: a });
    let again = fetches(&settle(&mut h));
    assert_eq!(
        again.len(),
        1,
        "the file is asked of the other holder at once"
    );
    assert_eq!(again[0].0, c);
    let acts = answer(&mut h, c, again[0].1, &files[0].1);
    assert_eq!(served(&acts), vec![(b, id)]);
}

#[test]
fn a_waiting_request_of_a_neighbour_that_left_is_dropped() {
    let (mut h, files, [a, b, _c]) = relaying();
    let asked = fetches(&announce_from(&mut h, a, 0));
    h.request(
        b,
        Request::GetZonefiles {
            hashes: vec![files[0].0],
            graft: false,
        },
    );
    h.core.handle(h.now, Event::PeerDisconnected { peer: b });
    h.actions();
    let acts = answer(&mut h, a, asked[0].1, &files[0].1);
    assert!(served(&acts).is_empty(), "answered a closed connection");
}

#[test]
fn without_relay_a_file_is_announced_only_once_stored() {
    let files = [file(0)];
    let cfg = CoreConfig {
        relay: false,
        ..quiet()
    };
    let mut h = Harness::new(cfg, &files);
    let (a, b) = (PeerId::random(), PeerId::random());
    h.add_neighbor(a, RangeSet::new());
    h.add_neighbor(b, RangeSet::new());
    h.actions();
    announce_from(&mut h, a, 0);
    h.advance(Duration::from_millis(h.core.config().delta_flush_ms));
    assert!(deltas_to(&h.actions()).is_empty());
}

#[test]
fn a_fetch_of_a_new_file_unanswered_for_hedge_ms_is_also_asked_of_another_announcer() {
    let (mut h, files, [a, b, c]) = relaying();
    let asked = fetches(&announce_from(&mut h, a, 0));
    announce_from(&mut h, c, 0);
    let hedge = Duration::from_millis(h.core.config().hedge_ms);
    h.advance(hedge - Duration::from_millis(1));
    assert!(fetches(&h.actions()).is_empty(), "hedged early");
    h.advance(Duration::from_millis(1));
    let again = fetches(&h.actions());
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].0, again[0].2.clone()), (c, vec![files[0].0]));
    assert_ne!(again[0].0, b, "b never announced it");
    assert_eq!(h.core.stats.hedges, 1);
    // The first answer is stored; the late one is a duplicate, not a fault.
    answer(&mut h, c, again[0].1, &files[0].1);
    let acts = answer(&mut h, a, asked[0].1, &files[0].1);
    assert!(!acts.iter().any(|x| matches!(x, Action::Penalize { .. })));
    assert_eq!(h.core.stats.duplicates_received, 1);
}

#[test]
fn a_fetch_answered_in_time_is_not_hedged() {
    let (mut h, files, [a, _b, c]) = relaying();
    let asked = fetches(&announce_from(&mut h, a, 0));
    announce_from(&mut h, c, 0);
    answer(&mut h, a, asked[0].1, &files[0].1);
    h.advance(Duration::from_millis(h.core.config().hedge_ms) * 2);
    assert!(fetches(&h.actions()).is_empty());
    assert_eq!(h.core.stats.hedges, 0);
}
