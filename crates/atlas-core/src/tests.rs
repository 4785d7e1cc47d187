//! Scenario tests of the whole core, driven by hand with a fake clock: the
//! test plays every peer, so each action the core takes can be checked.

use std::time::Duration;

use bytes::Bytes;
use libp2p_identity::PeerId;

use super::inventory::RangeSet;
use super::*;
use crate::zonefile::Hash160;

mod failures;
mod intake;
mod relay;
mod serving;
mod tree;
mod views;

struct Harness {
    core: Core,
    now: Instant,
    next_inbound: u64,
}

fn file(i: u8) -> (Hash160, Bytes) {
    let b = Bytes::from(format!("$ORIGIN name{i}.id\n$TTL 3600\n"));
    (Hash160::of(&b), b)
}

impl Harness {
    fn new(cfg: CoreConfig, files: &[(Hash160, Bytes)]) -> Self {
        let mut core = Core::new(cfg, PeerId::random(), vec![], 42);
        core.handle(
            Instant::ZERO,
            Event::WhitelistGrew {
                from_index: 0,
                hashes: files.iter().map(|(h, _)| *h).collect(),
                held: vec![],
                pending: vec![],
            },
        );
        Harness {
            core,
            now: Instant::ZERO,
            next_inbound: 0,
        }
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.core.poll_action()).collect()
    }

    fn view(&self) -> ChainView {
        self.core.view()
    }

    /// Makes `peer` an inbound neighbour holding `inventory`, on our chain.
    fn add_neighbor(&mut self, peer: PeerId, inventory: RangeSet) {
        let view = self.view();
        self.add_neighbor_viewing(peer, inventory, view);
    }

    /// As `add_neighbor`, for a neighbour whose whitelist is `view`.
    fn add_neighbor_viewing(&mut self, peer: PeerId, inventory: RangeSet, view: ChainView) {
        self.core.handle(
            self.now,
            Event::PeerConnected {
                peer,
                dialed_addr: None,
            },
        );
        self.request(
            peer,
            Request::Inventory {
                view,
                ancestry: vec![],
            },
        );
        let acts = self.actions();
        let req = acts
            .iter()
            .find_map(|a| match a {
                Action::Send {
                    peer: p,
                    id,
                    request: Request::Inventory { .. },
                    ..
                } if *p == peer => Some(*id),
                _ => None,
            })
            .expect("the core asks a new neighbour for its inventory");
        self.core.handle(
            self.now,
            Event::Response {
                peer,
                id: req,
                response: Response::Inventory {
                    view,
                    inventory,
                    ancestry: vec![],
                },
            },
        );
    }

    /// `peer` sends us `request`; returns the id our answer must carry.
    fn request(&mut self, peer: PeerId, request: Request) -> InboundId {
        let id = InboundId(self.next_inbound);
        self.next_inbound += 1;
        self.core
            .handle(self.now, Event::Request { peer, id, request });
        id
    }

    /// The store confirms `file`, as the driver reports a write.
    fn stored(&mut self, file: &(Hash160, Bytes), origin: Origin) {
        let event = Event::ZonefileStored {
            hash: file.0,
            bytes: file.1.clone(),
            origin,
        };
        self.core.handle(self.now, event);
    }

    /// `peer` answers our fetch `id` with `zonefiles`, missing nothing.
    fn answer_fetch(&mut self, peer: PeerId, id: RequestId, zonefiles: Vec<Bytes>) {
        let response = Response::Zonefiles {
            zonefiles,
            missing: vec![],
        };
        self.core
            .handle(self.now, Event::Response { peer, id, response });
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.core.handle_timeout(self.now);
    }
}

fn fetches(actions: &[Action]) -> Vec<(PeerId, RequestId, Vec<Hash160>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                peer,
                id,
                request: Request::GetZonefiles { hashes, .. },
                ..
            } => Some((*peer, *id, hashes.clone())),
            _ => None,
        })
        .collect()
}

fn quiet() -> CoreConfig {
    // Keep the walk out of the way: these tests are about replication.
    CoreConfig {
        walk_fast_ms: 3_600_000,
        walk_slow_ms: 3_600_000,
        ..CoreConfig::default()
    }
}

#[test]
fn push_goes_only_to_neighbours_that_lack_the_file() {
    let files = [file(0)];
    let mut h = Harness::new(quiet(), &files);
    let (b, c, d) = (PeerId::random(), PeerId::random(), PeerId::random());
    h.add_neighbor(b, RangeSet::new());
    h.add_neighbor(c, RangeSet::full(1));
    h.add_neighbor(d, RangeSet::new());
    h.actions();
    h.stored(&files[0], Origin::Local);
    let mut pushed: Vec<PeerId> = h
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Send {
                peer,
                request: Request::Push { zonefiles, .. },
                ..
            } => {
                assert_eq!(zonefiles, vec![files[0].1.clone()]);
                Some(peer)
            }
            _ => None,
        })
        .collect();
    pushed.sort();
    let mut want = vec![b, d];
    want.sort();
    assert_eq!(pushed, want);
    assert_eq!(
        h.core.drain_observations(),
        vec![Observation::PushFanout(2)]
    );
    // No delta: b and d got the file from us, c had it (it learns of ours
    // at its next full resync; it needs nothing from us meanwhile).
    h.advance(Duration::from_millis(h.core.config().delta_flush_ms));
    let deltas = h
        .actions()
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    request: Request::InventoryDelta { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(deltas, 0);
}

#[test]
fn pulled_files_are_not_pushed_on() {
    let files = [file(0)];
    let mut h = Harness::new(quiet(), &files);
    let (b, c) = (PeerId::random(), PeerId::random());
    h.add_neighbor(b, RangeSet::full(1));
    h.add_neighbor(c, RangeSet::new());
    h.actions();
    h.stored(&files[0], Origin::Fetched(b));
    assert!(!h.actions().iter().any(|a| matches!(
        a,
        Action::Send {
            request: Request::Push { .. },
            ..
        }
    )));
}

#[test]
fn rarest_file_is_fetched_first() {
    let files = [file(0), file(1)];
    let cfg = CoreConfig {
        batch_max_hashes: 1,
        max_inflight_per_peer: 1,
        ..quiet()
    };
    let mut h = Harness::new(cfg, &files);
    let (b, c) = (PeerId::random(), PeerId::random());
    // File 1 is held by both, file 0 only by b: file 0 is rarer.
    h.add_neighbor(c, RangeSet::from_iter([1]));
    h.actions();
    h.add_neighbor(b, RangeSet::full(2));
    let f = fetches(&h.actions());
    let to_b: Vec<_> = f.iter().filter(|x| x.0 == b).collect();
    assert_eq!(to_b.len(), 1);
    assert_eq!(to_b[0].2, vec![files[0].0], "b is asked for the rare file");
}

#[test]
fn wrong_hash_bans_the_peer_and_the_file_is_fetched_elsewhere() {
    let files = [file(0)];
    let cfg = CoreConfig {
        backoff_base_ms: 500,
        ..quiet()
    };
    let mut h = Harness::new(cfg, &files);
    let (b, c) = (PeerId::random(), PeerId::random());
    h.add_neighbor(b, RangeSet::full(1));
    let first = fetches(&h.actions());
    assert_eq!(first.len(), 1);
    let (liar, id, _) = first[0].clone();
    assert_eq!(liar, b);
    h.add_neighbor(c, RangeSet::full(1));
    h.actions();
    h.answer_fetch(liar, id, vec![Bytes::from_static(b"forged")]);
    let acts = h.actions();
    assert!(acts.contains(&Action::Penalize {
        peer: liar,
        reason: Penalty::WrongHash,
        banned: true
    }));
    assert!(acts.contains(&Action::Disconnect { peer: liar }));
    assert!(!acts.iter().any(|a| matches!(a, Action::Store { .. })));
    // After the backoff, the honest neighbour is asked.
    h.advance(Duration::from_millis(499));
    assert!(fetches(&h.actions()).is_empty(), "still backing off");
    h.advance(Duration::from_millis(1));
    let retry = fetches(&h.actions());
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].0, c);
    h.answer_fetch(c, retry[0].1, vec![files[0].1.clone()]);
    assert!(h.actions().contains(&Action::Store {
        hash: files[0].0,
        bytes: files[0].1.clone(),
        origin: Origin::Fetched(c),
    }));
    // The banned peer may not come back.
    h.core.handle(
        h.now,
        Event::PeerConnected {
            peer: liar,
            dialed_addr: None,
        },
    );
    assert_eq!(h.actions(), vec![Action::Disconnect { peer: liar }]);
}

#[test]
fn timeouts_back_off_and_retry_forever() {
    let files = [file(0)];
    let cfg = CoreConfig {
        request_timeout_ms: 1_000,
        backoff_base_ms: 1_000,
        backoff_cap_ms: 4_000,
        ..quiet()
    };
    let mut h = Harness::new(cfg, &files);
    let b = PeerId::random();
    h.add_neighbor(b, RangeSet::full(1));
    let mut sent_at = vec![];
    assert_eq!(fetches(&h.actions()).len(), 1);
    sent_at.push(h.now);
    for _ in 0..200 {
        h.advance(Duration::from_millis(250));
        let acts = h.actions();
        if !fetches(&acts).is_empty() {
            sent_at.push(h.now);
        }
    }
    let gaps: Vec<u64> = sent_at
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    // timeout (1 s) + backoff 1, 2, 4, 4, ... s; the peer's score decays, so
    // timeouts alone never ban it and retries go on.
    assert_eq!(&gaps[..4], &[2_000, 3_000, 5_000, 5_000]);
    assert!(
        gaps.len() >= 9,
        "still retrying after {} attempts",
        gaps.len()
    );
}

#[test]
fn not_found_clears_the_advertisement_and_other_holders_are_asked() {
    let files = [file(0)];
    let mut h = Harness::new(quiet(), &files);
    let (b, c) = (PeerId::random(), PeerId::random());
    h.add_neighbor(b, RangeSet::full(1));
    let first = fetches(&h.actions());
    h.add_neighbor(c, RangeSet::full(1));
    h.actions();
    h.core.handle(
        h.now,
        Event::Response {
            peer: b,
            id: first[0].1,
            response: Response::Zonefiles {
                zonefiles: vec![],
                missing: vec![files[0].0],
            },
        },
    );
    let acts = h.actions();
    assert!(acts.contains(&Action::Penalize {
        peer: b,
        reason: Penalty::NotFound,
        banned: false
    }));
    let f = fetches(&acts);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, c, "asked the remaining holder at once");
}

#[test]
fn whitelist_rollback_forgets_later_indices() {
    let files = [file(0), file(1), file(2)];
    let mut h = Harness::new(quiet(), &files);
    assert_eq!(h.core.status().missing, 3);
    h.core
        .handle(h.now, Event::WhitelistRolledBack { to_index: 1 });
    assert_eq!(h.core.status().announced, 1);
    assert_eq!(h.core.status().missing, 1);
    assert!(!h.core.is_whitelisted(&files[2].0));
    // A pushed file whose hash we no longer know goes to the inbox, not the store.
    let p = PeerId::random();
    h.core.handle(
        h.now,
        Event::Request {
            peer: p,
            id: InboundId(9),
            request: Request::Push {
                view: ChainView::default(),
                zonefiles: vec![files[2].1.clone()],
            },
        },
    );
    let acts = h.actions();
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Stash { hash, .. } if *hash == files[2].0))
    );
    assert!(acts.contains(&Action::Respond {
        peer: p,
        id: InboundId(9),
        response: Response::PushAck {
            accepted: 0,
            prune: false,
        }
    }));
}

#[test]
fn same_seed_same_actions() {
    let run = || {
        let files = [file(0), file(1)];
        let id = |i: u8| {
            libp2p_identity::Keypair::ed25519_from_bytes([i; 32])
                .unwrap()
                .public()
                .to_peer_id()
        };
        let cfg = CoreConfig {
            request_timeout_ms: 1_000,
            ..CoreConfig::default()
        };
        let mut core = Core::new(cfg, id(99), vec![], 7);
        let seeds: Vec<PeerId> = (1..6u8).map(id).collect();
        for s in &seeds {
            core.add_seed(
                *s,
                vec![
                    format!("/ip4/10.0.0.{}/tcp/1", s.to_bytes()[5])
                        .parse()
                        .unwrap(),
                ],
                Instant::ZERO,
            );
        }
        core.handle(
            Instant::ZERO,
            Event::WhitelistGrew {
                from_index: 0,
                hashes: files.iter().map(|f| f.0).collect(),
                held: vec![],
                pending: vec![],
            },
        );
        let mut out = Vec::new();
        for t in 0..100u64 {
            core.handle_timeout(Instant::from_micros(t * 300_000));
            while let Some(a) = core.poll_action() {
                out.push(format!("{a:?}"));
            }
        }
        out
    };
    let a = run();
    assert!(a.len() >= 10, "the walk restarts after each timeout: {a:?}");
    assert_eq!(a, run());
}

#[test]
fn the_walk_never_stalls_on_delayed_acceptance() {
    // An irregular graph of 12 peers around us; the test answers every peer
    // exchange from it, instantly. Backtrack proposals are common here, and
    // each one needs a second query: a walk that forgot to send it would stop.
    let id = |i: u8| {
        libp2p_identity::Keypair::ed25519_from_bytes([i + 1; 32])
            .unwrap()
            .public()
            .to_peer_id()
    };
    let peers: Vec<PeerId> = (0..12u8).map(id).collect();
    let adj = |i: usize| -> Vec<PeerId> {
        let mut v = vec![peers[(i + 1) % 12], peers[(i + 11) % 12]];
        if i.is_multiple_of(3) {
            v.extend((0..12).filter(|j| j % 2 == 1).map(|j| peers[j]));
        }
        v.sort();
        v.dedup();
        v.retain(|p| *p != peers[i]);
        v
    };
    let cfg = CoreConfig {
        neighbors: 64,
        ..CoreConfig::default()
    };
    let mut core = Core::new(cfg, PeerId::random(), vec![], 3);
    for p in &peers {
        core.add_seed(
            *p,
            vec!["/ip4/10.9.0.1/tcp/1".parse().unwrap()],
            Instant::ZERO,
        );
    }
    let mut now = Instant::ZERO;
    for _ in 0..3_000 {
        now = now + Duration::from_millis(200);
        core.handle_timeout(now);
        let acts: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
        for a in acts {
            if let Action::Send {
                peer,
                id,
                request: Request::Inventory { .. },
                ..
            } = a
            {
                let response = Response::Inventory {
                    view: ChainView::default(),
                    inventory: RangeSet::new(),
                    ancestry: vec![],
                };
                core.handle(now, Event::Response { peer, id, response });
            } else if let Action::Send {
                peer,
                id,
                request: Request::PeerExchange { .. },
                ..
            } = a
            {
                let i = peers.iter().position(|p| *p == peer).unwrap();
                let list: Vec<PeerRecord> = adj(i)
                    .into_iter()
                    .map(|p| PeerRecord {
                        peer: p,
                        addrs: vec!["/ip4/10.9.0.2/tcp/1".parse().unwrap()],
                    })
                    .collect();
                core.handle(
                    now,
                    Event::Response {
                        peer,
                        id,
                        response: Response::Peers {
                            view: ChainView::default(),
                            degree: list.len() as u32,
                            peers: list,
                        },
                    },
                );
            }
        }
    }
    assert!(
        core.stats.walk_steps > 2_500,
        "the walk kept going: {} steps in 3000 ticks",
        core.stats.walk_steps
    );
}
