//! Push paths: no refetch of a file on its way to disk, deltas only with
//! news, and the (experimental) push tree's prune, graft and repair.

use super::*;

fn tree() -> CoreConfig {
    CoreConfig {
        push_tree: true,
        ..quiet()
    }
}

/// Carries out the core's stores at once (as a store that never fails) and
/// returns every other action, including those the stores led to.
pub(super) fn settle(h: &mut Harness) -> Vec<Action> {
    let mut out = Vec::new();
    loop {
        let acts = h.actions();
        if acts.is_empty() {
            return out;
        }
        for a in acts {
            match a {
                Action::Store {
                    hash,
                    bytes,
                    origin,
                } => h.core.handle(
                    h.now,
                    Event::ZonefileStored {
                        hash,
                        bytes,
                        origin,
                    },
                ),
                other => out.push(other),
            }
        }
    }
}

fn push(h: &Harness, bytes: &Bytes) -> Request {
    Request::Push {
        view: h.view(),
        zonefiles: vec![bytes.clone()],
    }
}

fn push_from(h: &mut Harness, peer: PeerId, bytes: &Bytes) -> Vec<Action> {
    let request = push(h, bytes);
    h.request(peer, request);
    settle(h)
}

pub(super) fn announce_from(h: &mut Harness, peer: PeerId, index: u64) -> Vec<Action> {
    let mut added = RangeSet::new();
    added.insert(index);
    let view = h.view();
    h.request(
        peer,
        Request::InventoryDelta {
            view: DeltaView::Full(view),
            added,
        },
    );
    settle(h)
}

fn pushes_to(actions: &[Action]) -> Vec<PeerId> {
    let mut v: Vec<PeerId> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                peer,
                request: Request::Push { .. },
                ..
            } => Some(*peer),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn push_ack(actions: &[Action]) -> Option<(u32, bool)> {
    actions.iter().find_map(|a| match a {
        Action::Respond {
            response: Response::PushAck { accepted, prune },
            ..
        } => Some((*accepted, *prune)),
        _ => None,
    })
}

#[test]
fn a_pushed_file_is_not_fetched_again_while_it_is_stored() {
    let files = [file(0)];
    let mut h = Harness::new(quiet(), &files);
    let b = PeerId::random();
    h.add_neighbor(b, RangeSet::new());
    h.actions();
    let request = push(&h, &files[0].1);
    h.request(b, request);
    // The store has not confirmed yet (a redb commit is under way).
    let acts = h.actions();
    assert!(acts.iter().any(|a| matches!(a, Action::Store { .. })));
    assert!(
        fetches(&acts).is_empty(),
        "the pusher now advertises the file, but it is already on its way to disk: {acts:?}"
    );
    h.advance(Duration::from_secs(5));
    assert!(fetches(&h.actions()).is_empty());
}

#[test]
fn a_delta_carries_only_what_the_neighbour_is_not_known_to_hold() {
    let files = [file(0)];
    // Pushes forwarded and announced once stored (the relay announces earlier).
    let cfg = CoreConfig {
        push_fanout: 1,
        relay: false,
        ..quiet()
    };
    let mut h = Harness::new(cfg, &files);
    let (b, c) = (PeerId::random(), PeerId::random());
    h.add_neighbor(b, RangeSet::new());
    h.add_neighbor(c, RangeSet::new());
    h.actions();
    // b pushes the file; we push it on to c (an upload-free push goes to
    // up to `push_fanout` neighbours); both are then known to hold it.
    let acts = push_from(&mut h, b, &files[0].1);
    assert_eq!(pushes_to(&acts), vec![c]);
    h.advance(Duration::from_millis(100));
    let deltas: Vec<PeerId> = h
        .actions()
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                peer,
                request: Request::InventoryDelta { .. },
                ..
            } => Some(*peer),
            _ => None,
        })
        .collect();
    assert!(deltas.is_empty(), "nobody needs the news: {deltas:?}");
}

#[test]
fn a_duplicate_prunes_the_link_and_an_announcement_grafts_it_back() {
    let files = [file(0), file(1), file(2)];
    let mut h = Harness::new(tree(), &files);
    let (b, c, d) = (PeerId::random(), PeerId::random(), PeerId::random());
    for p in [b, c, d] {
        h.add_neighbor(p, RangeSet::new());
    }
    h.actions();

    // Every link starts on the tree: a file from b goes on to c and d.
    let acts = push_from(&mut h, b, &files[0].1);
    assert_eq!(push_ack(&acts), Some((1, false)));
    let mut cd = vec![c, d];
    cd.sort();
    assert_eq!(pushes_to(&acts), cd);

    // c sends the same file: the c link closes a cycle and is pruned.
    let acts = push_from(&mut h, c, &files[0].1);
    assert_eq!(push_ack(&acts), Some((0, true)));
    assert_eq!(h.core.stats.prunes, 1);

    // The next file from b reaches d by push and c only by announcement.
    let acts = push_from(&mut h, b, &files[1].1);
    assert_eq!(pushes_to(&acts), vec![d]);

    // c announces file 2, which the tree has not brought: it is awaited
    // for the graft delay, then pulled from c with the graft flag.
    let acts = announce_from(&mut h, c, 2);
    assert!(fetches(&acts).is_empty(), "first the tree gets its chance");
    h.advance(Duration::from_millis(tree().graft_delay_ms + 1));
    let acts = h.actions();
    let graft = acts.iter().find_map(|a| match a {
        Action::Send {
            peer,
            request: Request::GetZonefiles { hashes, graft },
            ..
        } => Some((*peer, hashes.clone(), *graft)),
        _ => None,
    });
    assert_eq!(graft, Some((c, vec![files[2].0], true)));
    assert_eq!(h.core.stats.grafts, 1);
}

#[test]
fn the_tree_repairs_itself_when_a_tree_neighbour_leaves() {
    let files = [file(0), file(1)];
    let mut h = Harness::new(tree(), &files);
    let (b, c, d) = (PeerId::random(), PeerId::random(), PeerId::random());
    for p in [b, c, d] {
        h.add_neighbor(p, RangeSet::new());
    }
    h.actions();
    // b is our tree parent; c's link was pruned by a duplicate.
    push_from(&mut h, b, &files[0].1);
    push_from(&mut h, c, &files[0].1);
    // b leaves.
    h.core.handle(h.now, Event::PeerDisconnected { peer: b });
    h.actions();
    // File 1 travels the tree elsewhere and reaches c, which announces it.
    announce_from(&mut h, c, 1);
    h.advance(Duration::from_millis(tree().graft_delay_ms + 1));
    let acts = h.actions();
    let (peer, id, hashes) = fetches(&acts).pop().expect("a graft");
    assert_eq!((peer, hashes.clone()), (c, vec![files[1].0]));
    h.answer_fetch(c, id, vec![files[1].1.clone()]);
    // Pulled by a graft, the file goes on down the tree (to d) as a push would.
    let acts = settle(&mut h);
    assert_eq!(pushes_to(&acts), vec![d]);
    // And c is on our tree now: the next file goes to it by push.
    assert!(h.core.has(&files[1].0));
}
