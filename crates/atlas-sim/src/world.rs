//! The scenario's script: who exists, what is announced when, and the
//! disturbances (churn, partition, data loss) at their times.

use bytes::Bytes;
use rand::Rng;
use rand::seq::SliceRandom;

use super::engine::{Ev, Sim};
use super::network;
use super::node::{NodeId, Role, SimNode};
use super::scenario::Start;
use super::sizes;
use atlas_core::zonefile::Hash160;
use atlas_core::{Core, Instant, PeerRecord, Upload};

pub(super) fn secs(s: f64) -> u64 {
    (s * 1e6) as u64
}

/// A zone file of `size` bytes, unique by its number, shaped like the real ones.
fn zonefile(i: usize, size: usize) -> Bytes {
    let mut text = format!(
        "$ORIGIN sim{i}.id\n$TTL 3600\n_http._tcp\tIN\tURI\t10\t1\t\"https://example.org/{i}.json\"\n"
    );
    while text.len() < size {
        text.push_str("; padding to the size drawn from the corpus\n");
    }
    text.truncate(size.max(40));
    Bytes::from(text)
}

impl Sim {
    pub(super) fn setup(&mut self) {
        let sc = self.scenario.clone();
        // Every file of the run, made up front so sizes do not depend on timing.
        let blocks = if sc.publish.files_per_block == 0 {
            0
        } else {
            let until = if sc.publish.until_s > 0.0 {
                sc.publish.until_s.min(sc.duration_s)
            } else {
                sc.duration_s
            };
            ((until - sc.publish.first_block_s).max(0.0) / sc.publish.block_interval_s).floor()
                as usize
                + 1
        };
        // The reorganisation's replacement files come last.
        let total = sc.files + blocks * sc.publish.files_per_block + sc.fork.depth;
        for i in 0..total {
            let b = zonefile(i, sizes::draw(&mut self.rng));
            let h = Hash160::of(&b);
            self.file_of.insert(h, i as u32);
            self.files.push((h, b));
        }
        self.announced = self.files[..sc.files].iter().map(|(h, _)| *h).collect();
        self.next_block_file = sc.files;
        self.record.set_files(total, sc.files);
        for (i, _) in self.files[..sc.files].iter().enumerate() {
            self.record.announce(i as u32, 0);
        }

        self.sybil_pool = (0..sc.adversary.sybil_identities)
            .map(|_| PeerRecord {
                peer: network::peer_id(&mut self.rng),
                addrs: vec![network::address(&mut self.rng)],
            })
            .collect();

        // Roles: seeds first, then Sybil nodes and withholders among the rest.
        let mut roles = vec![Role::Honest; sc.nodes];
        for r in roles.iter_mut().take(sc.seeds) {
            *r = Role::Seed;
        }
        let mut others: Vec<usize> = (sc.seeds..sc.nodes).collect();
        others.shuffle(&mut self.rng);
        let withholders = (sc.adversary.withholding * (sc.nodes - sc.seeds) as f64) as usize;
        for (k, &i) in others.iter().enumerate() {
            if k < sc.adversary.sybil_nodes {
                roles[i] = Role::Sybil;
            } else if k < sc.adversary.sybil_nodes + withholders {
                roles[i] = Role::Withholder;
            }
        }
        for (i, role) in roles.into_iter().enumerate() {
            let join = match (sc.start, role) {
                (_, Role::Seed) | (Start::Converged, _) => 0,
                (Start::Fresh, _) => self.rng.random_range(0..=secs(sc.join_spread_s)),
            };
            let n = self.create_node(role, join);
            debug_assert_eq!(n as usize, i);
        }
        for i in 0..sc.nodes as NodeId {
            self.add_seeds(i);
            let role = self.nodes[i as usize].role;
            // Withholders start with every file: they look like the best
            // sources there are, and serve nothing.
            if role == Role::Seed || role == Role::Withholder || sc.start == Start::Converged {
                self.hold_all_initial(i);
            }
            if sc.start == Start::Converged {
                for _ in 0..sc.known_peers {
                    let j = self.rng.random_range(0..sc.nodes) as NodeId;
                    if j != i {
                        let (p, a) = (
                            self.nodes[j as usize].peer,
                            self.nodes[j as usize].addr.clone(),
                        );
                        self.nodes[i as usize].driver.core.add_known_peer(
                            p,
                            vec![a],
                            Instant::ZERO,
                        );
                    }
                }
            }
        }
        // Nodes start in join order (the node number breaks ties).
        let mut starts: Vec<(u64, NodeId)> = (0..sc.nodes as NodeId)
            .map(|i| (self.nodes[i as usize].joined_us, i))
            .collect();
        starts.sort_unstable();
        let starts_end = starts.last().map_or(0, |s| s.0);
        for (at, i) in starts {
            self.schedule(at, Ev::Start(i));
        }

        let end = secs(sc.duration_s);
        // Until every first-generation node has joined, full coverage says little.
        let mut script_end = starts_end;
        if blocks > 0 {
            self.schedule(secs(sc.publish.first_block_s), Ev::Block);
            script_end = script_end.max(
                secs(sc.publish.first_block_s + (blocks - 1) as f64 * sc.publish.block_interval_s)
                    + secs(sc.publish.follower_lag_s + 1.0),
            );
        }
        if sc.churn.rate_per_hour > 0.0 && sc.churn.until_s > sc.churn.from_s {
            self.schedule(secs(sc.churn.from_s), Ev::Churn);
            script_end = script_end.max(secs(sc.churn.until_s));
        }
        if sc.partition.groups >= 2 {
            for i in 0..self.nodes.len() {
                self.nodes[i].group = self.rng.random_range(0..sc.partition.groups) as u16;
            }
            self.schedule(secs(sc.partition.at_s), Ev::PartitionStart);
            self.schedule(secs(sc.partition.heal_s), Ev::PartitionHeal);
            script_end = script_end.max(secs(sc.partition.heal_s));
        }
        if sc.fork.depth > 0 {
            self.schedule(secs(sc.fork.at_s), Ev::Fork);
            script_end = script_end.max(secs(
                sc.fork.at_s + sc.fork.late_s + sc.publish.follower_lag_s + 1.0,
            ));
        }
        if sc.data_loss.fraction > 0.0 {
            self.schedule(secs(sc.data_loss.at_s), Ev::DataLoss);
            script_end = script_end.max(secs(sc.data_loss.at_s));
        }
        self.script_ends_us = script_end.min(end);
        self.schedule(0, Ev::Sample);
        self.schedule(self.net.idle_timeout_us / 4, Ev::IdleSweep);
    }

    fn hold_all_initial(&mut self, n: NodeId) {
        let initial = self.scenario.files;
        for f in 0..initial as u32 {
            self.store(n, f);
        }
    }

    /// Makes a node that starts (gets its whitelist, then its first timer) at `join_us`.
    fn create_node(&mut self, role: Role, join_us: u64) -> NodeId {
        let n = self.nodes.len() as NodeId;
        let peer = network::peer_id(&mut self.rng);
        let addr = network::address(&mut self.rng);
        let core = Core::new(
            self.cfg.clone(),
            peer,
            vec![addr.clone()],
            self.rng.random(),
        );
        let mut node = SimNode::new(core, peer, addr, role, 0, join_us);
        node.alive = false;
        self.by_peer.insert(peer, n);
        self.nodes.push(node);
        n
    }

    /// Every node knows the seeds (but a seed not itself).
    fn add_seeds(&mut self, n: NodeId) {
        let at = Instant::from_micros(self.nodes[n as usize].joined_us);
        for s in 0..self.scenario.seeds.min(self.nodes.len()) {
            if s as NodeId != n {
                let (p, a) = (self.nodes[s].peer, self.nodes[s].addr.clone());
                self.nodes[n as usize].driver.core.add_seed(p, vec![a], at);
            }
        }
    }

    /// A node comes up: it counts from now, and its follower delivers the
    /// whole whitelist at once (it reads the chain before joining).
    pub(super) fn start_node(&mut self, n: NodeId) {
        if self.nodes[n as usize].alive {
            return;
        }
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        node.alive = true;
        node.joined_us = now;
        node.up_free = now;
        self.alive_pos.insert(n, self.alive.len());
        self.alive.push(n);
        if self.nodes[n as usize].role != Role::Sybil {
            let held = self.nodes[n as usize].held_files();
            self.record.node_up(&held, now);
        }
        let hashes = self.announced.clone();
        self.nodes[n as usize].whitelist_len = hashes.len();
        self.nodes[n as usize].chain_epoch = self.fork_epoch;
        self.grow_whitelist(n, 0, hashes);
    }

    /// A node stops: its peers see its connections close.
    pub(super) fn stop_node(&mut self, n: NodeId) {
        if !self.nodes[n as usize].alive {
            return;
        }
        let conns: Vec<(NodeId, u64)> = self.nodes[n as usize]
            .conns
            .iter()
            .map(|(b, c)| (*b, c.epoch))
            .collect();
        for (b, epoch) in conns {
            let delay = self.net.latency_us(n, b);
            self.schedule(
                self.now + delay,
                Ev::Closed {
                    to: b,
                    from: n,
                    epoch,
                },
            );
        }
        let node = &mut self.nodes[n as usize];
        node.alive = false;
        node.conns.clear();
        node.left_us = Some(self.now);
        node.timer = None;
        if let Some(pos) = self.alive_pos.remove(&n) {
            self.alive.swap_remove(pos);
            if let Some(&moved) = self.alive.get(pos) {
                self.alive_pos.insert(moved, pos);
            }
        }
        if self.nodes[n as usize].role != Role::Sybil {
            let held = self.nodes[n as usize].held_files();
            let now = self.now;
            self.record.node_down(&held, now);
        }
    }

    pub(super) fn deliver_whitelist(&mut self, n: NodeId, upto: usize) {
        let node = &self.nodes[n as usize];
        // A follower that has not seen the last reorganisation rolls back
        // to the fork and reads the chain from there.
        let stale = node.chain_epoch < self.fork_epoch;
        if !node.alive || (!stale && node.whitelist_len >= upto) {
            return;
        }
        let from = if stale {
            node.whitelist_len.min(self.fork_point)
        } else {
            node.whitelist_len
        };
        let upto = upto.min(self.announced.len()).max(from);
        let hashes = self.announced[from..upto].to_vec();
        self.nodes[n as usize].whitelist_len = upto;
        self.nodes[n as usize].chain_epoch = self.fork_epoch;
        self.grow_whitelist(n, from, hashes);
    }

    /// Hands a node's core new announcements with what its disk and inbox
    /// hold of them, as `atlas_node::net::adapter` does.
    fn grow_whitelist(&mut self, n: NodeId, from: usize, hashes: Vec<Hash160>) {
        let node = &mut self.nodes[n as usize];
        if !node.alive {
            return;
        }
        let held: Vec<Hash160> = hashes
            .iter()
            .filter(|h| node.holds(self.file_of[*h]))
            .copied()
            .collect();
        let now = Instant::from_micros(self.now);
        node.whitelist_grew(now, from as u64, hashes, held);
        self.drain(n);
    }

    /// A user publishes a zone file at a node's API.
    pub(super) fn upload(&mut self, n: NodeId, file: u32) {
        if !self.nodes[n as usize].alive {
            return;
        }
        let (hash, bytes) = self.files[file as usize].clone();
        let now = self.now;
        self.record.publish(file, now);
        let at = Instant::from_micros(now);
        if self.nodes[n as usize].upload(at, hash, bytes) == Upload::Store {
            self.store(n, file);
        }
        self.drain(n);
    }

    /// A block: new announcements; each file is uploaded to a random live node.
    pub(super) fn block(&mut self) {
        let p = self.scenario.publish.clone();
        // Block files are numbered after the initial ones; a reorganisation's
        // replacements come after them all.
        let last = self.files.len() - self.scenario.fork.depth;
        let from = self.next_block_file;
        let upto_file = (from + p.files_per_block).min(last);
        self.next_block_file = upto_file;
        for f in from..upto_file {
            self.announced.push(self.files[f].0);
            self.record.announce(f as u32, self.now);
        }
        let upto = self.announced.len();
        let lag = secs(p.follower_lag_s);
        for k in 0..self.alive.len() {
            let n = self.alive[k];
            let at = self.now + self.rng.random_range(0..=lag);
            self.schedule(at, Ev::Whitelist { node: n, upto });
        }
        self.publish_at_random_nodes(from as u32..upto_file as u32, lag);
        let next = self.now + secs(p.block_interval_s);
        let until = if p.until_s > 0.0 {
            secs(p.until_s)
        } else {
            u64::MAX
        };
        if upto_file < last && next <= until {
            self.schedule(next, Ev::Block);
        }
    }

    /// Each file is uploaded to a random live honest node within `lag` and
    /// a second of now (a user publishing it once it is on the chain).
    pub(super) fn publish_at_random_nodes(&mut self, files: std::ops::Range<u32>, lag: u64) {
        let honest: Vec<NodeId> = self
            .alive
            .iter()
            .copied()
            .filter(|n| self.nodes[*n as usize].role != Role::Sybil)
            .collect();
        for file in files {
            if let Some(&n) = honest.get(self.rng.random_range(0..honest.len().max(1))) {
                let at = self.now + self.rng.random_range(0..=lag + secs(1.0));
                self.schedule(at, Ev::Upload { node: n, file });
            }
        }
    }

    /// One departure and one arrival; the next pair after an exponential gap.
    pub(super) fn churn(&mut self) {
        let c = self.scenario.churn.clone();
        if self.now > secs(c.until_s) {
            return;
        }
        let candidates: Vec<NodeId> = self
            .alive
            .iter()
            .copied()
            .filter(|n| self.nodes[*n as usize].role == Role::Honest)
            .collect();
        if !candidates.is_empty() {
            let gone = candidates[self.rng.random_range(0..candidates.len())];
            self.stop_node(gone);
            let n = self.create_node(Role::Honest, self.now);
            self.add_seeds(n);
            if self.partitioned || self.scenario.partition.groups >= 2 {
                self.nodes[n as usize].group = self
                    .rng
                    .random_range(0..self.scenario.partition.groups.max(1))
                    as u16;
            }
            self.start_node(n);
        }
        let rate_per_us = c.rate_per_hour * self.alive.len() as f64 / 3600e6;
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let gap = (-u.ln() / rate_per_us) as u64;
        self.schedule(self.now + gap.max(1), Ev::Churn);
    }

    /// The overlay splits: connections across the cut die, noticed when
    /// pings time out (about 20 s).
    pub(super) fn partition_start(&mut self) {
        self.partitioned = true;
        let mut cross = Vec::new();
        for &a in &self.alive {
            for (&b, c) in &self.nodes[a as usize].conns {
                if a < b && self.cut(a, b) {
                    cross.push((a, b, c.epoch));
                }
            }
        }
        cross.sort_unstable();
        for (a, b, epoch) in cross {
            let at = self.now + secs(20.0);
            self.schedule(
                at,
                Ev::Closed {
                    to: a,
                    from: b,
                    epoch,
                },
            );
            self.schedule(
                at,
                Ev::Closed {
                    to: b,
                    from: a,
                    epoch,
                },
            );
        }
    }

    /// Some nodes lose their disks and restart: same identity, nothing else.
    pub(super) fn data_loss(&mut self) {
        let mut victims: Vec<NodeId> = self
            .alive
            .iter()
            .copied()
            .filter(|n| self.nodes[*n as usize].role == Role::Honest)
            .collect();
        victims.sort_unstable();
        victims.shuffle(&mut self.rng);
        let count = (self.scenario.data_loss.fraction * victims.len() as f64).round() as usize;
        for &v in victims.iter().take(count) {
            self.stop_node(v);
            let (peer, group) = (self.nodes[v as usize].peer, self.nodes[v as usize].group);
            let n = self.create_node(Role::Honest, self.now);
            // Same identity as before: the new slot answers for it.
            let fresh_peer = self.nodes[n as usize].peer;
            self.by_peer.remove(&fresh_peer);
            self.by_peer.insert(peer, n);
            let addr = self.nodes[n as usize].addr.clone();
            let core = Core::new(self.cfg.clone(), peer, vec![addr], self.rng.random());
            let node = &mut self.nodes[n as usize];
            node.driver = atlas_core::driver::Driver::new(core);
            node.peer = peer;
            node.group = group;
            self.add_seeds(n);
            self.record.data_lost(n, self.now);
            self.start_node(n);
        }
    }

    pub(super) fn sample(&mut self) {
        let degrees = self.record.wants_degrees().then(|| self.degrees());
        let partitioned = self.partitioned;
        self.check_recovery();
        self.record.sample(self.now, partitioned, degrees);
        let next = self.now + secs(self.scenario.sample_s);
        self.schedule(next, Ev::Sample);
    }

    /// Neighbour counts of the live nodes that count.
    fn degrees(&self) -> Vec<usize> {
        self.alive
            .iter()
            .filter(|n| self.nodes[**n as usize].counts())
            .map(|n| self.nodes[*n as usize].driver.core.status().neighbors)
            .collect()
    }

    /// Nodes that lost their data and now hold every announced file again.
    fn check_recovery(&mut self) {
        let announced = self.announced.len() as u32;
        let now = self.now;
        for (n, _, back) in self.record.losses.iter_mut() {
            let node = &self.nodes[*n as usize];
            if back.is_none() && node.alive && node.held_count >= announced {
                *back = Some(now);
            }
        }
    }

    /// End-of-run measurements that need the nodes.
    pub(super) fn finish(&mut self) {
        self.check_recovery();
        let degrees = self.degrees();
        self.record
            .sample(self.now, self.partitioned, Some(degrees));
        // Honest nodes' neighbour slots held by honest nodes.
        let (mut honest, mut total) = (0u64, 0u64);
        for &n in &self.alive {
            if !self.nodes[n as usize].counts() {
                continue;
            }
            for (p, _, _) in self.nodes[n as usize].driver.core.neighbor_list() {
                total += 1;
                if let Some(&b) = self.by_peer.get(&p)
                    && self.nodes[b as usize].role != Role::Sybil
                {
                    honest += 1;
                }
            }
        }
        self.record.honest_neighbor_fraction = (total > 0).then(|| honest as f64 / total as f64);
        // Where the walk went: visits per node per second alive, non-seeds.
        let mut visits = Vec::new();
        for node in &self.nodes {
            if node.role == Role::Seed || node.role == Role::Sybil {
                continue;
            }
            let alive_s = (node
                .left_us
                .unwrap_or(self.now)
                .saturating_sub(node.joined_us)) as f64
                / 1e6;
            if alive_s > 0.0 {
                visits.push((node.walk_visits, alive_s));
            }
        }
        self.record.walk_visits = visits;
        let mut totals = atlas_core::Stats::default();
        for node in &self.nodes {
            totals.add(&node.driver.core.stats);
        }
        self.record.core_stats = totals
            .counted()
            .into_iter()
            .map(|c| (c.key.to_string(), c.value))
            .collect();
    }
}
