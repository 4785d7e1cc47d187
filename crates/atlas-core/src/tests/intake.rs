//! Files that enter other than from peers (uploads, the pending inbox, the
//! store's own files) and a lone node's seed redial: decisions both drivers
//! used to make on their own.

use super::*;

fn grow(h: &mut Harness, from: u64, hashes: &[Hash160], pending: Vec<(Hash160, Bytes)>) {
    h.core.handle(
        h.now,
        Event::WhitelistGrew {
            from_index: from,
            hashes: hashes.to_vec(),
            held: vec![],
            pending,
        },
    );
}

fn stores(actions: &[Action]) -> Vec<(Hash160, Origin)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Store { hash, origin, .. } => Some((*hash, *origin)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_upload_waits_until_announced_and_is_stored_once() {
    let files = [file(0), file(1)];
    let mut h = Harness::new(quiet(), &files[..1]);
    assert_eq!(h.core.upload_decision(&files[1].0), Upload::Stash);
    assert_eq!(h.core.upload_decision(&files[0].0), Upload::Store);
    h.stored(&files[0], Origin::Local);
    assert_eq!(h.core.upload_decision(&files[0].0), Upload::AlreadyHeld);
}

#[test]
fn inbox_files_are_stored_not_fetched_and_held_files_count_at_once() {
    let files = [file(0), file(1), file(2), file(3)];
    let mut h = Harness::new(quiet(), &files[..1]);
    let holder = PeerId::random();
    // The neighbour's follower is ahead: it holds everything that will be announced.
    let ahead = Harness::new(quiet(), &files).view();
    h.add_neighbor_viewing(holder, (0..4).collect(), ahead);
    h.actions();
    let new: Vec<Hash160> = files[1..].iter().map(|f| f.0).collect();
    // files[1] waited in the inbox; files[2] is on disk from before a
    // rollback; a junk entry claiming files[3]'s hash is not trusted.
    h.core.handle(
        h.now,
        Event::WhitelistGrew {
            from_index: 1,
            hashes: new,
            held: vec![files[2].0],
            pending: vec![files[1].clone(), (files[3].0, Bytes::from_static(b"junk"))],
        },
    );
    let acts = h.actions();
    assert_eq!(stores(&acts), vec![(files[1].0, Origin::Inbox)]);
    let mut asked: Vec<Hash160> = fetches(&acts).into_iter().flat_map(|f| f.2).collect();
    asked.sort();
    let mut lacking = vec![files[0].0, files[3].0];
    lacking.sort();
    // files[0] counts only now: the neighbour's holdings beyond where its
    // view agreed with ours waited until our whitelist could confirm it.
    assert_eq!(
        asked, lacking,
        "only the files nobody here holds are fetched"
    );
    assert!(h.core.has(&files[2].0));
    assert_eq!(h.core.upload_decision(&files[1].0), Upload::AlreadyHeld);
}

#[test]
fn an_inbox_file_the_store_failed_to_write_is_fetched_from_peers() {
    let files = [file(0), file(1)];
    let mut h = Harness::new(quiet(), &files[..1]);
    let holder = PeerId::random();
    let ahead = Harness::new(quiet(), &files).view();
    h.add_neighbor_viewing(holder, (0..2).collect(), ahead);
    h.actions();
    grow(&mut h, 1, &[files[1].0], vec![files[1].clone()]);
    let asked: Vec<Hash160> = fetches(&h.actions())
        .into_iter()
        .flat_map(|f| f.2)
        .collect();
    assert_eq!(asked, vec![files[0].0], "the inbox file is not fetched");
    h.core
        .handle(h.now, Event::StoreFailed { hash: files[1].0 });
    let asked = fetches(&h.actions());
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].0, asked[0].2.clone()), (holder, vec![files[1].0]));
}

fn dials(actions: &[Action]) -> Vec<Option<PeerId>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dial { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lone_node_dials_its_seeds_again_every_10_s_until_connected() {
    let mut h = Harness::new(quiet(), &[]);
    let seed = PeerId::random();
    let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
    h.core.add_seed(seed, vec![addr.clone()], h.now);
    h.core
        .add_seed_addr("/ip4/127.0.0.1/tcp/2".parse().unwrap());
    assert_eq!(
        dials(&h.actions()),
        vec![None],
        "a bare seed is dialed at once"
    );
    let mut redials = Vec::new();
    for _ in 0..25 {
        h.advance(Duration::from_secs(1));
        for d in dials(&h.actions()) {
            redials.push((h.now.as_micros() / 1_000_000, d));
        }
    }
    // Alone is counted from the first timer tick that finds us alone (1 s).
    assert_eq!(
        redials,
        vec![(11, Some(seed)), (11, None), (21, Some(seed)), (21, None)]
    );
    h.core.handle(
        h.now,
        Event::PeerConnected {
            peer: seed,
            dialed_addr: Some(addr),
        },
    );
    for _ in 0..30 {
        h.advance(Duration::from_secs(1));
        assert!(dials(&h.actions()).is_empty(), "connected: no redial");
    }
}

#[test]
fn a_bare_seed_that_answers_is_pinned_to_its_identity() {
    let mut h = Harness::new(quiet(), &[]);
    let bare: Multiaddr = "/ip4/127.0.0.1/tcp/2".parse().unwrap();
    h.core.add_seed_addr(bare.clone());
    let (seed, other) = (PeerId::random(), PeerId::random());
    // A peer dialed at another address is learned, not pinned.
    for (peer, addr) in [
        (other, "/ip4/127.0.0.1/tcp/3".parse().unwrap()),
        (seed, bare),
    ] {
        h.core.handle(
            h.now,
            Event::PeerConnected {
                peer,
                dialed_addr: Some(addr),
            },
        );
    }
    let pinned = |p: &PeerId| h.core.peer_table().get(p).map(|e| e.pinned);
    assert_eq!(pinned(&seed), Some(true));
    assert_eq!(pinned(&other), Some(false));
}
