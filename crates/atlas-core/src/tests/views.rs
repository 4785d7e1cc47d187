//! Chain views: a neighbour whose whitelist differs from ours after some
//! index is a source (and a recipient) only below it, until the lists agree.

use super::*;

fn files(range: std::ops::Range<u8>) -> Vec<(Hash160, Bytes)> {
    range.map(file).collect()
}

/// The view and ancestry of a node holding `list`.
fn chain_of(list: &[(Hash160, Bytes)]) -> (ChainView, Vec<[u8; 20]>) {
    let other = Harness::new(quiet(), list);
    (other.view(), other.core.ancestry())
}

fn answer_inventory_requests(
    h: &mut Harness,
    acts: &[Action],
    peer: PeerId,
    view: ChainView,
    inventory: &RangeSet,
    ancestry: &[[u8; 20]],
) {
    for a in acts {
        if let Action::Send {
            peer: p,
            id,
            request: Request::Inventory { .. },
            ..
        } = a
            && *p == peer
        {
            h.core.handle(
                h.now,
                Event::Response {
                    peer,
                    id: *id,
                    response: Response::Inventory {
                        view,
                        inventory: inventory.clone(),
                        ancestry: ancestry.to_vec(),
                    },
                },
            );
        }
    }
}

fn asked_hashes(actions: &[Action]) -> Vec<Hash160> {
    let mut v: Vec<Hash160> = fetches(actions).into_iter().flat_map(|f| f.2).collect();
    v.sort();
    v
}

#[test]
fn a_diverged_neighbour_is_used_only_below_the_fork_until_the_lists_agree() {
    // Positions 0..5 are shared; from 5 on, our chain and theirs differ.
    let shared = files(0..5);
    let ours: Vec<_> = shared.iter().cloned().chain(files(10..13)).collect();
    let theirs: Vec<_> = shared.iter().cloned().chain(files(20..23)).collect();
    let (their_view, their_ancestry) = chain_of(&theirs);
    let mut h = Harness::new(quiet(), &ours);
    let peer = PeerId::random();
    h.core.handle(
        h.now,
        Event::PeerConnected {
            peer,
            dialed_addr: None,
        },
    );
    h.request(
        peer,
        Request::Inventory {
            view: their_view,
            ancestry: vec![],
        },
    );
    let acts = h.actions();
    // What we answered: nothing beyond where the lists are known to agree
    // (we hold nothing there yet), and our ancestry, since the views differ.
    let answer = acts.iter().find_map(|a| match a {
        Action::Respond {
            response:
                Response::Inventory {
                    inventory,
                    ancestry,
                    ..
                },
            ..
        } => Some((inventory.clone(), ancestry.len())),
        _ => None,
    });
    assert_eq!(answer, Some((RangeSet::new(), 8)), "lengths 7 down to 0");
    assert_eq!(h.core.agreement(&peer), Some(Agreement::Diverged));
    // It claims all 8 positions of its own list.
    let claim: RangeSet = (0..8).collect();
    answer_inventory_requests(&mut h, &acts, peer, their_view, &claim, &their_ancestry);
    let asked = asked_hashes(&h.actions());
    // Its ancestry shows our lists agree up to 5 (the digests at 7 and 6
    // differ): only those files are asked of it, none of positions 5..8.
    let mut expected: Vec<Hash160> = shared.iter().map(|f| f.0).collect();
    expected.sort();
    assert_eq!(asked, expected);

    // Its follower reorganises onto our chain and it says so: our files at
    // 5..8 count now.
    let (our_view, _) = chain_of(&ours);
    h.request(
        peer,
        Request::InventoryDelta {
            view: DeltaView::Full(our_view),
            added: (5..8).collect(),
        },
    );
    assert_eq!(h.core.agreement(&peer), Some(Agreement::Same));
    let mut asked = asked_hashes(&h.actions());
    let mut expected = vec![ours[5].0, ours[6].0, ours[7].0];
    expected.sort();
    asked.sort();
    assert_eq!(asked, expected, "everything it holds is a source again");
}

#[test]
fn a_lagging_neighbour_is_behind_and_counts_in_full() {
    let all = files(0..6);
    let (behind_view, _) = chain_of(&all[..4]);
    let mut h = Harness::new(quiet(), &all);
    let peer = PeerId::random();
    h.add_neighbor_viewing(peer, (0..4).collect(), behind_view);
    assert_eq!(h.core.agreement(&peer), Some(Agreement::Behind));
}

#[test]
fn a_neighbour_ahead_counts_once_our_follower_confirms_its_list() {
    let all = files(0..6);
    let (ahead_view, _) = chain_of(&all);
    let mut h = Harness::new(quiet(), &all[..4]);
    let peer = PeerId::random();
    // No ancestry (as when the views were equal when it answered): nothing
    // of its list can be checked yet, so nothing of it counts.
    h.add_neighbor_viewing(peer, (0..6).collect(), ahead_view);
    assert_eq!(h.core.agreement(&peer), Some(Agreement::Ahead));
    assert!(asked_hashes(&h.actions()).is_empty());
    h.core.handle(
        h.now,
        Event::WhitelistGrew {
            from_index: 4,
            hashes: all[4..].iter().map(|f| f.0).collect(),
            held: vec![],
            pending: vec![],
        },
    );
    assert_eq!(h.core.agreement(&peer), Some(Agreement::Same));
    let mut expected: Vec<Hash160> = all.iter().map(|f| f.0).collect();
    expected.sort();
    assert_eq!(asked_hashes(&h.actions()), expected);
}

#[test]
fn a_node_that_rolls_back_tells_its_neighbours_where_its_list_now_parts() {
    let shared = files(0..5);
    let old: Vec<_> = shared.iter().cloned().chain(files(10..13)).collect();
    // A reorganisation that replaces 3 entries with 4: the list grows, so
    // its new view alone looks like an extension of the old one.
    let new_tail = files(20..24);
    let mut moved = Harness::new(quiet(), &old);
    let neighbour = PeerId::random();
    moved.add_neighbor(neighbour, RangeSet::new());
    moved.actions();
    moved.core.handle(
        moved.now,
        Event::WhitelistGrew {
            from_index: 5,
            hashes: new_tail.iter().map(|f| f.0).collect(),
            held: vec![],
            pending: vec![],
        },
    );
    let told = moved.actions().into_iter().find_map(|a| match a {
        Action::Send {
            peer,
            request: Request::Inventory { view, ancestry },
            ..
        } if peer == neighbour && !ancestry.is_empty() => Some((view, ancestry)),
        _ => None,
    });
    let (view, ancestry) = told.expect("the neighbour is told, with ancestry");
    assert_eq!(view.length, 9);

    // On the other side: a node still on the old list, which counted the
    // mover as holding all 8 of its positions.
    let mut stayed = Harness::new(quiet(), &old);
    let mover = PeerId::random();
    stayed.add_neighbor(mover, (0..8).collect());
    assert_eq!(stayed.core.agreement(&mover), Some(Agreement::Same));
    stayed.request(mover, Request::Inventory { view, ancestry });
    assert_eq!(stayed.core.agreement(&mover), Some(Agreement::Diverged));
    assert_eq!(
        stayed.core.neighbor_inventory(&mover).map(RangeSet::count),
        Some(5),
        "only the shared prefix still counts"
    );
}

fn delta_views_to(actions: &[Action], peer: PeerId) -> Vec<DeltaView> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                peer: p,
                request: Request::InventoryDelta { view, .. },
                ..
            } if *p == peer => Some(*view),
            _ => None,
        })
        .collect()
}

#[test]
fn deltas_to_a_neighbour_on_our_view_abbreviate_it_and_others_get_it_in_full() {
    let list = files(0..3);
    let mut h = Harness::new(quiet(), &list);
    let (same, behind) = (PeerId::random(), PeerId::random());
    h.add_neighbor(same, RangeSet::new());
    let (short_view, _) = chain_of(&list[..2]);
    h.add_neighbor_viewing(behind, RangeSet::new(), short_view);
    h.actions();
    h.stored(&list[0], Origin::Fetched(same));
    h.advance(Duration::from_millis(h.core.config().delta_flush_ms));
    let acts = h.actions();
    let ours = h.view();
    let mut prefix = [0; 4];
    prefix.copy_from_slice(&ours.tip[..4]);
    assert_eq!(
        delta_views_to(&acts, same),
        vec![DeltaView::Matching {
            length: 3,
            tip_prefix: prefix
        }]
    );
    assert_eq!(delta_views_to(&acts, behind), vec![DeltaView::Full(ours)]);
}

#[test]
fn an_abbreviated_view_is_read_as_a_prefix_of_ours_and_one_that_is_not_asks_for_the_inventory() {
    let list = files(0..3);
    let mut h = Harness::new(quiet(), &list);
    let peer = PeerId::random();
    let (short_view, _) = chain_of(&list[..2]);
    h.add_neighbor_viewing(peer, RangeSet::new(), short_view);
    h.actions();
    // Its list is our first two entries: the abbreviation names that prefix.
    let mut prefix = [0; 4];
    prefix.copy_from_slice(&short_view.tip[..4]);
    let delta = |tip_prefix| Request::InventoryDelta {
        view: DeltaView::Matching {
            length: 2,
            tip_prefix,
        },
        added: [1].into_iter().collect(),
    };
    h.request(peer, delta(prefix));
    assert_eq!(asked_hashes(&h.actions()), vec![list[1].0]);
    assert_eq!(h.core.agreement(&peer), Some(Agreement::Behind));
    // A tip we cannot match: the delta is not read; its inventory is asked for.
    h.request(peer, delta([0xde, 0xad, 0xbe, 0xef]));
    let acts = h.actions();
    assert!(fetches(&acts).is_empty());
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::Send {
            peer: p,
            request: Request::Inventory { .. },
            ..
        } if *p == peer
    )));
}

#[test]
fn abbreviated_views_we_cannot_match_ask_for_the_inventory_only_once_at_a_time() {
    let list = files(0..3);
    let mut h = Harness::new(quiet(), &list);
    let peer = PeerId::random();
    h.add_neighbor(peer, RangeSet::new());
    h.actions();
    let bogus = || Request::InventoryDelta {
        view: DeltaView::Matching {
            length: 3,
            tip_prefix: [0xde, 0xad, 0xbe, 0xef],
        },
        added: [0].into_iter().collect(),
    };
    let inventory_requests = |acts: &[Action]| {
        acts.iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Send {
                        request: Request::Inventory { .. },
                        ..
                    }
                )
            })
            .count()
    };
    h.request(peer, bogus());
    assert_eq!(inventory_requests(&h.actions()), 1);
    h.request(peer, bogus());
    h.request(peer, bogus());
    assert_eq!(inventory_requests(&h.actions()), 0, "one is in flight");
}
