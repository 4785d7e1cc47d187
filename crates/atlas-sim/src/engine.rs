//! The discrete-event engine: one queue of timed events, ordered by (time,
//! sequence number) so ties break the same way every run, and the driver
//! that carries out each core's actions the way `atlas_node::net::adapter` does.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use bytes::Bytes;
use libp2p_identity::PeerId;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::adapter::Local;
use super::network::NetModel;
use super::node::{Conn, Kind, NodeId, Role, SimNode};
use super::record::Record;
use super::scenario::{Scenario, ScenarioError};
use atlas_core::zonefile::Hash160;
use atlas_core::{
    Action, CoreConfig, Failure, InboundId, Instant, Observation, PeerRecord, Request, RequestId,
    Response, serve_within_budget,
};
use atlas_wire as wire;

mod links;

#[derive(Debug)]
pub enum Msg {
    Request {
        id: RequestId,
        request: Request,
        /// When the asker's core gives up on it.
        deadline: u64,
    },
    Response {
        id: RequestId,
        response: Response,
    },
}

#[derive(Debug)]
pub enum Ev {
    Timer(NodeId),
    Deliver {
        to: NodeId,
        from: NodeId,
        msg: Msg,
    },
    /// A request that could not be sent: a dial that failed.
    Failed {
        to: NodeId,
        id: RequestId,
    },
    Connected {
        dialer: NodeId,
        listener: NodeId,
        epoch: u64,
    },
    Closed {
        to: NodeId,
        from: NodeId,
        epoch: u64,
    },
    Start(NodeId),
    Whitelist {
        node: NodeId,
        upto: usize,
    },
    Upload {
        node: NodeId,
        file: u32,
    },
    Block,
    Churn,
    PartitionStart,
    PartitionHeal,
    DataLoss,
    Fork,
    /// Counts holdings credited to neighbours that do not hold the file.
    ForkCheck {
        label: &'static str,
    },
    Sample,
    IdleSweep,
}

struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Fake records a Sybil node puts in one peer-exchange answer (about what
/// fits in the 64 KiB frame limit).
const SYBIL_RECORDS: usize = 900;

pub struct Sim {
    pub nodes: Vec<SimNode>,
    pub by_peer: HashMap<PeerId, NodeId>,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    pub now: u64,
    pub events: u64,
    pub rng: StdRng,
    pub net: NetModel,
    pub cfg: CoreConfig,
    pub scenario: Scenario,
    /// Every zone file of the run (announced or still to come) and its hash.
    pub files: Vec<(Hash160, Bytes)>,
    pub file_of: HashMap<Hash160, u32>,
    /// The chain: announced hashes in order, and when.
    pub announced: Vec<Hash160>,
    pub partitioned: bool,
    pub alive: Vec<NodeId>,
    pub alive_pos: HashMap<NodeId, usize>,
    pub sybil_pool: Vec<PeerRecord>,
    next_gen: u64,
    pub record: Record,
    /// Chain reorganisations so far; a node whose `chain_epoch` is older
    /// rolls back to `fork_point` when its follower next reports.
    pub fork_epoch: u32,
    /// The next file a block announces.
    pub next_block_file: usize,
    pub fork_point: usize,
    /// When every follower has seen the reorganisation.
    pub fork_agreed_us: u64,
    /// After this, no scripted event is left (for `stop_when_covered`).
    pub script_ends_us: u64,
}

impl Sim {
    pub fn new(scenario: &Scenario, seed: u64) -> Result<Sim, ScenarioError> {
        let cfg = scenario.core_config()?;
        let mut sim = Sim {
            nodes: Vec::new(),
            by_peer: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            events: 0,
            rng: StdRng::seed_from_u64(seed),
            net: NetModel::new(&scenario.network, seed),
            cfg,
            scenario: scenario.clone(),
            files: Vec::new(),
            file_of: HashMap::new(),
            announced: Vec::new(),
            partitioned: false,
            alive: Vec::new(),
            alive_pos: HashMap::new(),
            sybil_pool: Vec::new(),
            next_gen: 0,
            record: Record::new(),
            fork_epoch: 0,
            next_block_file: 0,
            fork_point: 0,
            fork_agreed_us: u64::MAX,
            script_ends_us: 0,
        };
        sim.setup();
        Ok(sim)
    }

    pub fn now_s(&self) -> f64 {
        self.now as f64 / 1e6
    }

    pub fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        }));
    }

    pub fn run(&mut self, progress: bool) {
        let end = (self.scenario.duration_s * 1e6) as u64;
        let wall = std::time::Instant::now();
        let mut last_report = wall;
        while let Some(Reverse(q)) = self.queue.pop() {
            if q.at > end {
                self.now = end;
                break;
            }
            self.now = q.at;
            self.events += 1;
            self.dispatch(q.ev);
            if self.scenario.stop_when_covered
                && self.now >= self.script_ends_us
                && self.record.fully_covered()
            {
                break;
            }
            if progress && self.events.is_multiple_of(4096) && last_report.elapsed().as_secs() >= 2
            {
                last_report = std::time::Instant::now();
                eprintln!(
                    "[{}] sim {:>8.1} s  wall {:>6.1} s  events {:>11}  live {:>6}  coverage {:.4}",
                    self.scenario.name,
                    self.now_s(),
                    wall.elapsed().as_secs_f64(),
                    self.events,
                    self.record.live,
                    self.record.coverage()
                );
            }
        }
        self.finish();
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Timer(n) => {
                let node = &mut self.nodes[n as usize];
                if !node.alive || node.timer != Some(Instant::from_micros(self.now)) {
                    return;
                }
                node.timer = None;
                node.on_timer(Instant::from_micros(self.now));
                self.drain(n);
            }
            Ev::Deliver { to, from, msg } => self.deliver(to, from, msg),
            Ev::Failed { to, id } => {
                let now = Instant::from_micros(self.now);
                if self.nodes[to as usize].alive
                    && self.nodes[to as usize].on_failed(now, id, Failure::Unreachable)
                {
                    self.record.count("requests_failed_dial");
                    self.drain(to);
                }
            }
            Ev::Connected {
                dialer,
                listener,
                epoch,
            } => self.connected(dialer, listener, epoch),
            Ev::Closed { to, from, epoch } => self.closed(to, from, epoch),
            Ev::Start(n) => {
                if self.nodes[n as usize].left_us.is_none() {
                    self.start_node(n);
                }
            }
            Ev::Whitelist { node, upto } => self.deliver_whitelist(node, upto),
            Ev::Upload { node, file } => self.upload(node, file),
            Ev::Block => self.block(),
            Ev::Churn => self.churn(),
            Ev::PartitionStart => self.partition_start(),
            Ev::PartitionHeal => self.partitioned = false,
            Ev::DataLoss => self.data_loss(),
            Ev::Fork => self.fork(),
            Ev::ForkCheck { label } => self.count_misattributed(label),
            Ev::Sample => self.sample(),
            Ev::IdleSweep => self.idle_sweep(),
        }
    }

    /// Carries out a core's actions until it has none, then re-arms its timer.
    pub fn drain(&mut self, n: NodeId) {
        loop {
            let Some(action) = self.nodes[n as usize].driver.poll_action() else {
                break;
            };
            self.execute(n, action);
        }
        for obs in self.nodes[n as usize].driver.core.drain_observations() {
            if let Observation::WalkSample(p) = obs {
                // Consecutive samples of one walk are correlated (a rejected
                // move samples the same node again); every 25th is close to
                // independent, which is what a uniformity test assumes.
                let walker = &mut self.nodes[n as usize];
                walker.walk_steps_seen += 1;
                if walker.walk_steps_seen.is_multiple_of(25)
                    && let Some(&at) = self.by_peer.get(&p)
                {
                    self.nodes[at as usize].walk_visits += 1;
                }
            }
        }
        // A deadline already past fires now; the stored time is the one queued.
        let now = self.now;
        let next = self.nodes[n as usize]
            .driver
            .core
            .poll_timeout()
            .map(|t| t.max(Instant::from_micros(now)));
        let node = &mut self.nodes[n as usize];
        if next != node.timer {
            node.timer = next;
            if let Some(t) = next {
                self.schedule(t.as_micros(), Ev::Timer(n));
            }
        }
    }

    fn execute(&mut self, n: NodeId, action: Action) {
        let now = Instant::from_micros(self.now);
        let action = match self.nodes[n as usize].apply_local(now, action) {
            Local::Done => return,
            Local::Stored(hash) => {
                if let Some(&f) = self.file_of.get(&hash) {
                    self.store(n, f);
                }
                return;
            }
            Local::Penalized(reason) => {
                // A "not found" is an honest peer asked for what it never
                // had: a request wasted on a misread inventory.
                if reason == atlas_core::Penalty::NotFound {
                    let label = if self.now >= self.fork_agreed_us {
                        "not_found_after_views_agree"
                    } else {
                        "not_found"
                    };
                    self.record.count(label);
                }
                return;
            }
            Local::Remote(action) => action,
        };
        match action {
            Action::Send {
                peer, id, request, ..
            } => self.send(n, peer, id, request),
            Action::Respond { id, response, .. } => self.respond(n, id, response),
            Action::ServeZonefiles {
                id, hashes, budget, ..
            } => {
                if self.nodes[n as usize].role == Role::Withholder {
                    // Silence: the asker's request times out.
                    self.record.count("requests_withheld");
                    self.nodes[n as usize].take_inbound(id);
                    return;
                }
                let node = &self.nodes[n as usize];
                let read = |h: &Hash160| -> Result<Option<Bytes>, std::convert::Infallible> {
                    Ok(self
                        .file_of
                        .get(h)
                        .filter(|&&f| node.holds(f))
                        .map(|&f| self.files[f as usize].1.clone()))
                };
                let Ok((zonefiles, missing)) = serve_within_budget(&hashes, budget, read);
                let response = Response::Zonefiles { zonefiles, missing };
                self.respond(n, id, response);
            }
            Action::Dial { peer, .. } => {
                // The simulator has no bare seeds; a dial to a node that is
                // down or cut off fails quietly, as a libp2p dial does.
                if let Some(&b) = peer.and_then(|p| self.by_peer.get(&p))
                    && self.nodes[b as usize].alive
                    && !self.cut(n, b)
                {
                    self.ensure_connection(n, b);
                }
            }
            Action::Disconnect { peer } => {
                if let Some(&b) = self.by_peer.get(&peer) {
                    self.close(n, b);
                }
            }
            Action::Store { .. } | Action::Stash { .. } | Action::Penalize { .. } => {
                unreachable!("carried out by the node's adapter")
            }
        }
    }

    /// A zone file reaches a node's disk.
    pub fn store(&mut self, n: NodeId, file: u32) {
        let counts = self.nodes[n as usize].counts();
        if self.nodes[n as usize].hold(file) && counts {
            let now = self.now;
            self.record.stored(file, now);
        }
    }

    fn send(&mut self, a: NodeId, peer: PeerId, id: RequestId, request: Request) {
        let kind = Kind::of(&request);
        let target = self.by_peer.get(&peer).copied();
        self.nodes[a as usize].sent(id, target, kind);
        let Some(b) = target.filter(|b| self.nodes[*b as usize].alive) else {
            // Nobody there: a fake identity, or a node that left. The dial
            // fails after the timeout (nothing answers) or a round trip
            // (the host refuses).
            let delay = match target {
                Some(b) => 2 * self.net.latency_us(a, b),
                None => self.net.dial_timeout_us,
            };
            self.schedule(self.now + delay, Ev::Failed { to: a, id });
            return;
        };
        if self.cut(a, b) {
            let delay = self.net.dial_timeout_us;
            if !self.nodes[a as usize].conns.contains_key(&b) {
                self.schedule(self.now + delay, Ev::Failed { to: a, id });
            }
            // On an existing connection the message is lost; the close
            // that the partition caused fails the request.
            return;
        }
        let ready = self.ensure_connection(a, b);
        let size = wire::request_len(&request);
        self.record.sent(kind, size);
        let at = self.transmit(a, b, ready, size);
        self.schedule(
            at,
            Ev::Deliver {
                to: b,
                from: a,
                msg: Msg::Request {
                    id,
                    request,
                    deadline: self.now + self.cfg.request_timeout_ms * 1000,
                },
            },
        );
    }

    fn respond(&mut self, b: NodeId, id: InboundId, mut response: Response) {
        let Some((a, rid, kind, deadline)) = self.nodes[b as usize].take_inbound(id) else {
            return;
        };
        if !self.nodes[b as usize].conns.contains_key(&a) || self.cut(a, b) {
            self.record.count("responses_lost");
            return;
        }
        if self.nodes[b as usize].role == Role::Sybil
            && let Response::Peers { peers, degree, .. } = &mut response
        {
            *peers = self.sybil_records();
            *degree = peers.len() as u32;
        }
        let size = wire::response_len(&response);
        // An answer that would arrive after the asker gave up is not sent:
        // the asker resets the stream (Yamux), and the server drops what it
        // had queued for it instead of clogging its uplink.
        let queued = self.now.max(self.nodes[b as usize].up_free);
        if queued + self.net.serialize_us(size) + self.net.latency_us(a, b) >= deadline {
            self.record.count("responses_dropped_after_timeout");
            return;
        }
        self.record.sent(kind, size);
        let at = self.transmit(b, a, self.now, size);
        self.schedule(
            at,
            Ev::Deliver {
                to: a,
                from: b,
                msg: Msg::Response { id: rid, response },
            },
        );
    }

    fn sybil_records(&mut self) -> Vec<PeerRecord> {
        use rand::Rng;
        let pool = self.sybil_pool.len();
        (0..SYBIL_RECORDS.min(pool))
            .map(|_| self.sybil_pool[self.rng.random_range(0..pool)].clone())
            .collect()
    }

    fn deliver(&mut self, to: NodeId, from: NodeId, msg: Msg) {
        if !self.nodes[to as usize].alive || !self.nodes[to as usize].conns.contains_key(&from) {
            return;
        }
        let now = self.now;
        let from_peer = self.nodes[from as usize].peer;
        if let Some(c) = self.nodes[to as usize].conns.get_mut(&from) {
            c.last_active = now;
        }
        match msg {
            Msg::Request {
                id,
                request,
                deadline,
            } => {
                self.nodes[to as usize].on_request(
                    Instant::from_micros(now),
                    (from, from_peer),
                    id,
                    request,
                    deadline,
                );
                self.drain(to);
            }
            Msg::Response { id, response } => {
                if self.nodes[to as usize].on_response(Instant::from_micros(now), id, response) {
                    self.drain(to);
                }
            }
        }
    }
}
