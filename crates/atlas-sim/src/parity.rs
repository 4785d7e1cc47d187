//! Driver parity: one scripted session (connections, requests both ways,
//! answers that do not decode, failures, uploads, whitelist growth, late
//! answers, a close with requests in flight) played through the node's
//! adapter (`atlas_node::net::adapter`, with libp2p's own failure types and report
//! order, a real redb store) and through the simulator's (`crate::adapter`,
//! the engine's report order, the in-memory disk). The core must see the
//! same events in the same order and give the same penalties, and both
//! must ask the network for the same things.
//!
//! The two transports differ where it matters: libp2p reports a closed
//! connection before failing the requests that were on it, and reports its
//! own timeouts after the core gave up; the simulator fails what was on a
//! connection as it closes, and has no transport timeout.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use libp2p::request_response::OutboundFailure;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use prometheus_client::registry::Registry;

use super::adapter::Local;
use super::node::{Kind, NodeId, Role, SimNode};
use atlas_core::driver::Driver;
use atlas_core::zonefile::Hash160;
use atlas_core::{
    Action, Core, CoreConfig, Failure, Instant, Protocol, Request, RequestId, Response,
    serve_within_budget,
};
use atlas_node::metrics::Metrics;
use atlas_node::net::adapter::{NodeAdapter, Outgoing};
use atlas_node::net::codec::Rejected;
use atlas_node::store::Store;

/// How a request of ours can end without an answer, in both transports.
#[derive(Clone, Copy)]
enum Lost {
    /// The answer did not decode.
    Malformed,
    /// The peer could not be dialed.
    Unreachable,
}

/// What the script needs of a transport's adapter.
trait Transport {
    fn driver(&mut self) -> &mut Driver;
    fn connect(&mut self, now: Instant, peer: PeerId, addr: Multiaddr, we_dialed: bool);
    /// `peer` asks us something; `None` is a frame that did not decode.
    fn ask(&mut self, now: Instant, peer: PeerId, request: Option<Request>);
    fn answer(&mut self, now: Instant, id: RequestId, response: Response);
    fn lose(&mut self, now: Instant, id: RequestId, how: Lost);
    /// The core's timer fires at `now`.
    fn timer(&mut self, now: Instant);
    /// The transport's own timeouts of requests the core gave up on.
    fn transport_timeouts(&mut self, now: Instant, ids: &[RequestId]);
    fn close(&mut self, now: Instant, peer: PeerId);
    fn upload(&mut self, now: Instant, bytes: Bytes);
    fn announce(&mut self, now: Instant, from: u64, hashes: Vec<Hash160>);
    /// Carries out the core's actions: what went to the network, as text,
    /// and the requests sent.
    fn drain(&mut self, now: Instant) -> (Vec<String>, Vec<(RequestId, PeerId, Request)>);
    /// Zone files on disk.
    fn disk(&self) -> BTreeSet<Hash160>;
}

struct NodeSide {
    adapter: NodeAdapter<u64, ()>,
    /// Our requests: the transport's key for each, and where it went.
    keys: HashMap<RequestId, (Protocol, u64, PeerId)>,
    next_key: u64,
    _dir: tempfile::TempDir,
}

impl Transport for NodeSide {
    fn driver(&mut self) -> &mut Driver {
        &mut self.adapter.driver
    }

    fn connect(&mut self, now: Instant, peer: PeerId, addr: Multiaddr, we_dialed: bool) {
        self.adapter
            .connected(now, peer, we_dialed.then(|| addr.clone()));
        self.adapter.identified(now, peer, vec![addr]);
    }

    fn ask(&mut self, now: Instant, peer: PeerId, request: Option<Request>) {
        let request = request.ok_or_else(|| Rejected("bad protobuf".into()));
        let protocol = match &request {
            Ok(r) => r.protocol(),
            Err(_) => Protocol::Inventory,
        };
        self.adapter.request(now, protocol, peer, request, ());
    }

    fn answer(&mut self, now: Instant, id: RequestId, response: Response) {
        let (protocol, key, _) = self.keys[&id];
        self.adapter.response(now, protocol, key, response);
    }

    fn lose(&mut self, now: Instant, id: RequestId, how: Lost) {
        let (protocol, key, peer) = self.keys[&id];
        let error = match how {
            Lost::Malformed => OutboundFailure::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "frame does not decode",
            )),
            Lost::Unreachable => OutboundFailure::DialFailure,
        };
        self.adapter
            .outbound_failure(now, protocol, peer, key, &error);
    }

    fn timer(&mut self, now: Instant) {
        self.adapter.timeout(now);
    }

    fn transport_timeouts(&mut self, now: Instant, ids: &[RequestId]) {
        for id in ids {
            let (protocol, key, peer) = self.keys[id];
            self.adapter
                .outbound_failure(now, protocol, peer, key, &OutboundFailure::Timeout);
        }
    }

    fn close(&mut self, now: Instant, peer: PeerId) {
        self.adapter.closed(now, peer);
        // libp2p then fails every request that was on the connection.
        let mut on_it: Vec<_> = self
            .keys
            .values()
            .filter(|k| k.2 == peer)
            .copied()
            .collect();
        on_it.sort_by_key(|k| k.1);
        for (protocol, key, peer) in on_it {
            self.adapter.outbound_failure(
                now,
                protocol,
                peer,
                key,
                &OutboundFailure::ConnectionClosed,
            );
        }
    }

    fn upload(&mut self, now: Instant, bytes: Bytes) {
        self.adapter.put(now, bytes, "ip:client").expect("stored");
    }

    fn announce(&mut self, now: Instant, from: u64, hashes: Vec<Hash160>) {
        self.adapter.whitelist_grew(now, from, hashes);
    }

    fn drain(&mut self, now: Instant) -> (Vec<String>, Vec<(RequestId, PeerId, Request)>) {
        let (mut out, mut sends) = (Vec::new(), Vec::new());
        for o in self.adapter.drain(now) {
            match o {
                Outgoing::Send {
                    protocol,
                    peer,
                    id,
                    request,
                    ..
                } => {
                    let key = self.next_key;
                    self.next_key += 1;
                    self.adapter.sent(protocol, key, id);
                    self.keys.insert(id, (protocol, key, peer));
                    out.push(format!("send {peer} {request:?}"));
                    sends.push((id, peer, request));
                }
                Outgoing::Respond { response, .. } => out.push(format!("respond {response:?}")),
                Outgoing::Dial { peer, addrs } => out.push(format!("dial {peer:?} {addrs:?}")),
                Outgoing::Disconnect { peer } => out.push(format!("disconnect {peer}")),
            }
        }
        (out, sends)
    }

    fn disk(&self) -> BTreeSet<Hash160> {
        self.adapter
            .store
            .held_hashes()
            .unwrap()
            .into_iter()
            .collect()
    }
}

struct SimSide {
    node: SimNode,
    /// The script's peers as the engine would number them.
    ids: BTreeMap<PeerId, NodeId>,
    files: BTreeMap<Hash160, Bytes>,
    disk: BTreeSet<Hash160>,
}

impl Transport for SimSide {
    fn driver(&mut self) -> &mut Driver {
        &mut self.node.driver
    }

    fn connect(&mut self, now: Instant, peer: PeerId, addr: Multiaddr, we_dialed: bool) {
        self.node.on_connected(now, peer, addr, we_dialed);
    }

    fn ask(&mut self, now: Instant, peer: PeerId, request: Option<Request>) {
        match request {
            Some(r) => {
                self.node
                    .on_request(now, (self.ids[&peer], peer), RequestId(9_999), r, u64::MAX)
            }
            None => self.node.on_malformed(now, peer),
        }
    }

    fn answer(&mut self, now: Instant, id: RequestId, response: Response) {
        self.node.on_response(now, id, response);
    }

    fn lose(&mut self, now: Instant, id: RequestId, how: Lost) {
        let reason = match how {
            Lost::Malformed => Failure::Malformed,
            Lost::Unreachable => Failure::Unreachable,
        };
        self.node.on_failed(now, id, reason);
    }

    fn timer(&mut self, now: Instant) {
        self.node.on_timer(now);
    }

    fn transport_timeouts(&mut self, _: Instant, _: &[RequestId]) {}

    fn close(&mut self, now: Instant, peer: PeerId) {
        self.node.on_closed(now, self.ids[&peer], peer);
    }

    fn upload(&mut self, now: Instant, bytes: Bytes) {
        let hash = Hash160::of(&bytes);
        if self.node.upload(now, hash, bytes) == atlas_core::Upload::Store {
            self.disk.insert(hash);
        }
    }

    fn announce(&mut self, now: Instant, from: u64, hashes: Vec<Hash160>) {
        let held = hashes
            .iter()
            .filter(|h| self.disk.contains(h))
            .copied()
            .collect();
        self.node.whitelist_grew(now, from, hashes, held);
    }

    fn drain(&mut self, now: Instant) -> (Vec<String>, Vec<(RequestId, PeerId, Request)>) {
        let (mut out, mut sends) = (Vec::new(), Vec::new());
        // As the engine's `drain` and `execute` do, with the network left out.
        while let Some(action) = self.node.driver.poll_action() {
            let action = match self.node.apply_local(now, action) {
                Local::Stored(hash) => {
                    self.disk.insert(hash);
                    continue;
                }
                Local::Done | Local::Penalized(_) => continue,
                Local::Remote(a) => a,
            };
            match action {
                Action::Send {
                    peer, id, request, ..
                } => {
                    self.node
                        .sent(id, self.ids.get(&peer).copied(), Kind::of(&request));
                    out.push(format!("send {peer} {request:?}"));
                    sends.push((id, peer, request));
                }
                Action::Respond { id, response, .. } => {
                    self.node.take_inbound(id);
                    out.push(format!("respond {response:?}"));
                }
                Action::ServeZonefiles {
                    id, hashes, budget, ..
                } => {
                    self.node.take_inbound(id);
                    let read = |h: &Hash160| -> Result<Option<Bytes>, std::convert::Infallible> {
                        Ok(self.disk.contains(h).then(|| self.files[h].clone()))
                    };
                    let Ok((zonefiles, missing)) = serve_within_budget(&hashes, budget, read);
                    let response = Response::Zonefiles { zonefiles, missing };
                    out.push(format!("respond {response:?}"));
                }
                Action::Dial { peer, addrs } => out.push(format!("dial {peer:?} {addrs:?}")),
                Action::Disconnect { peer } => out.push(format!("disconnect {peer}")),
                other => unreachable!("local action left for the network: {other:?}"),
            }
        }
        (out, sends)
    }

    fn disk(&self) -> BTreeSet<Hash160> {
        self.disk.clone()
    }
}

fn peer(i: u8) -> PeerId {
    let key = libp2p_identity::Keypair::ed25519_from_bytes([i; 32]).expect("32 bytes");
    PeerId::from_public_key(&key.public())
}

fn files() -> Vec<(Hash160, Bytes)> {
    (0..6)
        .map(|i| {
            let b = Bytes::from(format!("$ORIGIN name{i}.id\n$TTL 3600\n"));
            (Hash160::of(&b), b)
        })
        .collect()
}

fn core() -> Core {
    let cfg = CoreConfig {
        // The walk is not what this is about; keep it out of the way.
        walk_fast_ms: 3_600_000,
        walk_slow_ms: 3_600_000,
        ..CoreConfig::default()
    };
    Core::new(cfg, peer(9), vec![], 7)
}

fn node_side() -> NodeSide {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("atlas.redb"), 100).unwrap());
    let metrics = Arc::new(Metrics::new(&mut Registry::default()));
    NodeSide {
        adapter: NodeAdapter::new(core(), store, metrics),
        keys: HashMap::new(),
        next_key: 0,
        _dir: dir,
    }
}

fn sim_side() -> SimSide {
    let addr: Multiaddr = "/ip4/10.0.0.9/tcp/4000".parse().unwrap();
    SimSide {
        node: SimNode::new(core(), peer(9), addr, Role::Honest, 0, 0),
        ids: [(peer(1), 1), (peer(2), 2)].into_iter().collect(),
        files: files().into_iter().collect(),
        disk: BTreeSet::new(),
    }
}

/// What a run left: the core's log, what it asked of the network, its disk.
struct Outcome {
    log: Vec<String>,
    /// Our fetch answered after the core gave up on it.
    late_answer: RequestId,
    /// Requests the transport timed out after the core gave up on them.
    transport_timeouts: usize,
    network: Vec<String>,
    disk: BTreeSet<Hash160>,
}

struct Run<'a> {
    t: &'a mut dyn Transport,
    now: Instant,
    network: Vec<String>,
    sends: Vec<(RequestId, PeerId, Request)>,
}

impl Run<'_> {
    fn drain(&mut self) {
        let (out, sends) = self.t.drain(self.now);
        self.network.extend(out);
        self.sends.extend(sends);
    }

    /// Our requests to `peer` that are still awaited, in the order sent.
    fn awaited(&mut self, peer: PeerId, pick: impl Fn(&Request) -> bool) -> Vec<RequestId> {
        let ids: Vec<RequestId> = self
            .sends
            .iter()
            .filter(|(_, p, r)| *p == peer && pick(r))
            .map(|(id, _, _)| *id)
            .collect();
        ids.into_iter()
            .filter(|id| self.t.driver().in_flight(*id).is_some())
            .collect()
    }
}

fn is_fetch(r: &Request) -> bool {
    matches!(r, Request::GetZonefiles { .. })
}

fn session(t: &mut dyn Transport) -> Outcome {
    let files = files();
    let (a, b) = (peer(1), peer(2));
    t.driver().record_events();
    let mut r = Run {
        t,
        now: Instant::ZERO,
        network: Vec::new(),
        sends: Vec::new(),
    };
    // Four files announced; one uploaded, one uploaded before its announcement.
    r.t.announce(r.now, 0, files[..4].iter().map(|f| f.0).collect());
    r.t.upload(r.now, files[0].1.clone());
    r.t.upload(r.now, files[5].1.clone());
    r.drain();
    // We dial A; B dials us. Each asks for our inventory; we ask for theirs:
    // A holds the first three entries, B the first four.
    for (p, host, we_dialed, holds) in [(a, 1, true, 3), (b, 2, false, 4)] {
        let addr: Multiaddr = format!("/ip4/10.0.0.{host}/tcp/4000").parse().unwrap();
        r.t.connect(r.now, p, addr, we_dialed);
        r.drain();
        let view = r.t.driver().core.view();
        let ask = Request::Inventory {
            view,
            ancestry: vec![],
        };
        r.t.ask(r.now, p, Some(ask));
        r.drain();
        for id in r.awaited(p, |q| matches!(q, Request::Inventory { .. })) {
            let response = Response::Inventory {
                view,
                inventory: (0..holds).collect(),
                ancestry: vec![],
            };
            r.t.answer(r.now, id, response);
        }
        r.drain();
    }
    // A sends a frame that does not decode; its answer to our first fetch
    // does not decode either; one fetch to B fails to dial.
    r.t.ask(r.now, a, None);
    if let Some(&id) = r.awaited(a, is_fetch).first() {
        r.t.lose(r.now, id, Lost::Malformed);
    }
    if let Some(&id) = r.awaited(b, is_fetch).first() {
        r.t.lose(r.now, id, Lost::Unreachable);
    }
    r.drain();
    // Two more entries announced: the upload that waited is stored.
    r.t.announce(r.now, 4, vec![files[4].0, files[5].0]);
    r.drain();
    // What B was asked times out in the core. B answers one fetch late;
    // the transport then reports its own timeouts of the rest.
    let late = r.awaited(b, |_| true);
    r.now = r.now + Duration::from_secs(31);
    r.t.timer(r.now);
    r.drain();
    let late_fetch = late
        .iter()
        .copied()
        .find(|id| r.sends.iter().any(|(s, _, q)| s == id && is_fetch(q)));
    let late_answer = late_fetch.expect("a fetch to B timed out");
    {
        let id = late_answer;
        let response = Response::Zonefiles {
            zonefiles: vec![files[1].1.clone()],
            missing: vec![],
        };
        r.t.answer(r.now, id, response);
    }
    let rest: Vec<RequestId> = late
        .into_iter()
        .filter(|id| Some(*id) != late_fetch)
        .collect();
    r.t.transport_timeouts(r.now, &rest);
    r.drain();
    // A retry is answered "not found", for files the peer had announced.
    let retry = [a, b]
        .into_iter()
        .flat_map(|p| r.awaited(p, is_fetch))
        .min()
        .expect("the timed-out fetches are retried");
    let asked = r
        .sends
        .iter()
        .find_map(|(id, _, q)| match q {
            Request::GetZonefiles { hashes, .. } if *id == retry => Some(hashes.clone()),
            _ => None,
        })
        .expect("a fetch");
    let response = Response::Zonefiles {
        zonefiles: vec![],
        missing: asked,
    };
    r.t.answer(r.now, retry, response);
    r.drain();
    // A connection closes with requests in flight on it.
    let victim = [a, b]
        .into_iter()
        .find(|p| !r.awaited(*p, |_| true).is_empty())
        .expect("the retries are in flight");
    r.t.close(r.now, victim);
    r.drain();
    r.now = r.now + Duration::from_secs(31);
    r.t.timer(r.now);
    r.drain();
    let log = r.t.driver().recorded_events().to_vec();
    Outcome {
        log,
        late_answer,
        transport_timeouts: rest.len(),
        network: r.network,
        disk: r.t.disk(),
    }
}

#[test]
fn the_node_and_the_simulator_adapters_give_the_core_the_same_session() {
    let node = session(&mut node_side());
    let sim = session(&mut sim_side());
    assert_eq!(node.log, sim.log, "the core's events and penalties");
    assert_eq!(node.network, sim.network, "what each asked of the network");
    assert_eq!(node.disk, sim.disk, "what each stored");

    // The session did what it says.
    let count = |kind: &str, what: &str| {
        node.log
            .iter()
            .filter(|e| e.starts_with(kind) && e.contains(what))
            .count()
    };
    assert_eq!(count("Malformed", ""), 1, "a bad request, reported once");
    assert_eq!(
        count("RequestFailed", "Malformed"),
        1,
        "a bad answer, failed once"
    );
    assert_eq!(count("Penalize", "Malformed"), 2, "each penalised once");
    assert_eq!(count("RequestFailed", "Unreachable"), 1);
    assert_eq!(
        count("ZonefileStored", "origin: Inbox"),
        1,
        "the waiting upload"
    );
    assert!(
        count("Penalize", "NotFound") >= 1,
        "a peer said no to what it announced"
    );
    let files = files();
    for f in [&files[0], &files[5]] {
        assert!(node.disk.contains(&f.0));
    }
    let closed = node
        .log
        .iter()
        .position(|e| e.starts_with("PeerDisconnected"))
        .expect("the close reached the core");
    assert!(
        node.log[..closed]
            .iter()
            .any(|e| e.starts_with("RequestFailed") && e.contains("Closed")),
        "requests in flight fail before the disconnect: {:#?}",
        node.log
    );
    assert!(
        !node.log[closed..]
            .iter()
            .any(|e| e.starts_with("RequestFailed") && e.contains("Closed")),
        "and libp2p's later reports of them are dropped"
    );
    let late = format!("id: {:?},", node.late_answer);
    assert!(
        !node
            .log
            .iter()
            .any(|e| e.starts_with("Response") && e.contains(&late)),
        "an answer after the core gave up is dropped"
    );
    assert!(node.transport_timeouts > 0);
    assert!(
        !node
            .log
            .iter()
            .any(|e| e.contains("reason: Timeout") && e.contains("RequestFailed")),
        "the transport's own timeouts come after the core gave up and are dropped"
    );
}
