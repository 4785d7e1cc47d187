//! Replication: inventories, the rarest-first fetch pipeline, push, and the
//! whitelist that decides what may be stored at all.

use bytes::Bytes;
use libp2p_identity::PeerId;
use rand::Rng;
use rand::seq::SliceRandom;

use super::announced::Announced;
use super::inventory::RangeSet;
use super::messages::Request;
use super::time::Instant;
use super::{Action, Core, CoreConfig, Observation, Origin, Penalty, Pending};
use crate::zonefile::{Hash160, Hash160Set, MAX_ZONEFILE_BYTES};

/// How far down the ready queue (rarest first) one peer's batch may look.
const RAREST_SCAN: usize = 256;
/// How many of a peer's holdings that we lack a batch may then look at.
const HOLDINGS_SCAN: usize = 4096;

/// Whether `inv` holds the hash that stands at `position` and was announced
/// up to `newest`. Only a hash announced more than once needs the index.
fn holds(inv: &RangeSet, whitelist: &Announced, position: u64, newest: u64) -> bool {
    inv.contains(position)
        || (newest != position
            && whitelist
                .get(position)
                .is_some_and(|h| whitelist.positions(&h).any(|i| inv.contains(i))))
}

impl Core {
    /// How many neighbours advertise any position of the hash at `position`.
    pub(super) fn holders_of(&self, position: u64, newest: u64) -> u32 {
        self.neighbors
            .values()
            .filter_map(|n| n.inventory.as_ref())
            .filter(|inv| holds(inv, &self.whitelist, position, newest))
            .count() as u32
    }

    /// The scheduler position of the hash at `idx`, if we lack it. Most
    /// indices are either held or the position itself; only a repeated
    /// announcement needs the index.
    fn missing_position(&self, idx: u64) -> Option<u64> {
        if self.present.contains(idx) {
            return None;
        }
        if self.sched.get(idx).is_some() {
            return Some(idx);
        }
        self.whitelist
            .get(idx)
            .and_then(|h| self.whitelist.first(&h))
    }

    /// A fetch of `hash` failed: its entry backs off.
    pub(super) fn fetch_failed(&mut self, hash: Hash160, now: Instant) {
        if let Some(p) = self.whitelist.first(&hash) {
            self.sched.failed(p, now);
        }
    }

    /// A fetch of `hash` ended without the file and through no fault of the
    /// file's: others may hold it, so ask them now; nobody else, wait and retry.
    pub(super) fn fetch_elsewhere(&mut self, hash: Hash160, now: Instant) {
        let Some(p) = self.whitelist.first(&hash) else {
            return;
        };
        match self.sched.get(p) {
            Some(m) if m.holders > 0 => self.sched.release(p),
            Some(_) => self.sched.failed(p, now),
            None => {}
        }
    }

    /// Re-counts holders of every missing hash after one neighbour's inventory
    /// changed from `old` to `new` (`None` = not counted).
    pub(super) fn shift_holders(&mut self, old: Option<&RangeSet>, new: Option<&RangeSet>) {
        let wl = &self.whitelist;
        let changes: Vec<(u64, i32)> = self
            .sched
            .iter()
            .filter_map(|(p, newest)| {
                let was = old.is_some_and(|inv| holds(inv, wl, p, newest)) as i32;
                let is = new.is_some_and(|inv| holds(inv, wl, p, newest)) as i32;
                (was != is).then_some((p, is - was))
            })
            .collect();
        for (p, d) in changes {
            self.sched.adjust_holders(p, d);
        }
        self.sched_dirty = true;
    }

    pub(super) fn set_inventory(&mut self, peer: PeerId, inventory: RangeSet) {
        let Some(n) = self.neighbors.get_mut(&peer) else {
            return; // No longer a neighbour.
        };
        let old = n.inventory.replace(inventory.clone());
        self.shift_holders(old.as_ref(), Some(&inventory));
    }

    /// A neighbour gained `added`; small deltas are applied index by index.
    /// `announced` is set when the neighbour told us so itself (a live
    /// announcement): a file we lack and nobody else offered is then first
    /// awaited from the push tree for `graft_delay_ms`.
    pub(super) fn apply_delta(
        &mut self,
        peer: PeerId,
        added: &RangeSet,
        announced: Option<Instant>,
    ) {
        let Some(mut inv) = self
            .neighbors
            .get_mut(&peer)
            .and_then(|n| n.inventory.take())
        else {
            return;
        };
        if added.count() > 1024 {
            let old = inv.clone();
            inv.union_with(added);
            self.shift_holders(Some(&old), Some(&inv));
        } else {
            for idx in added.iter() {
                if inv.contains(idx) {
                    continue; // Already counted.
                }
                // A hash announced more than once counts once per neighbour.
                if let Some(p) = self.missing_position(idx)
                    && let Some(m) = self.sched.get(p).copied()
                    && !holds(&inv, &self.whitelist, p, m.newest())
                {
                    self.sched.adjust_holders(p, 1);
                    self.sched_dirty = true;
                    // The first neighbour to announce a file nobody offered
                    // before is asked for it at once: pass the news on.
                    if let Some(now) = announced
                        && m.holders == 0
                        && m.attempts == 0
                        && !self.cfg.push_tree
                    {
                        self.promise(now, p);
                    }
                    if let Some(now) = announced
                        && self.cfg.push
                        && self.cfg.push_tree
                        && self.cfg.graft_delay_ms > 0
                        && m.holders == 0
                        && m.attempts == 0
                    {
                        self.sched
                            .defer(p, now + CoreConfig::ms(self.cfg.graft_delay_ms));
                        self.grafts.insert(p);
                    }
                }
                inv.insert(idx);
            }
        }
        if let Some(n) = self.neighbors.get_mut(&peer) {
            n.inventory = Some(inv);
        }
    }

    /// The neighbour said it lacks `hash` after all.
    fn forget_holding(&mut self, peer: PeerId, hash: Hash160) {
        let Some(inv) = self
            .neighbors
            .get_mut(&peer)
            .and_then(|n| n.inventory.as_mut())
        else {
            return;
        };
        let mut held = false;
        for i in self.whitelist.positions(&hash) {
            held |= inv.remove(i);
        }
        if held && let Some(p) = self.whitelist.first(&hash) {
            self.sched.adjust_holders(p, -1);
        }
    }

    /// Starts as many fetches as neighbours have free slots, round-robin so
    /// the rarest files are spread over peers.
    pub(super) fn fill_pipelines(&mut self, now: Instant) {
        if !self.sched_dirty || self.sched.ready_len() == 0 {
            return;
        }
        self.sched_dirty = false;
        let mut order: Vec<(PeerId, u64)> = self
            .neighbors
            .iter()
            .filter(|(_, n)| n.inventory.is_some())
            .map(|(p, _)| {
                let health = self.peers.get(p).map_or(1.0, |e| e.health());
                (*p, (health * 1000.0) as u64)
            })
            .collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        loop {
            let mut progress = false;
            for (peer, _) in &order {
                let Some(n) = self.neighbors.get(peer) else {
                    continue;
                };
                if n.inflight_fetches >= n.window {
                    continue;
                }
                if n.inventory.is_none() {
                    continue;
                }
                let batch = self.pick_batch(peer);
                if batch.is_empty() {
                    continue;
                }
                // Nothing awaits the tree unless `push_tree` is on: skip the lookups.
                let graft = !self.grafts.is_empty()
                    && batch.iter().any(|h| {
                        self.whitelist
                            .first(h)
                            .is_some_and(|p| self.grafts.contains(&p))
                    });
                if let Some(n) = self.neighbors.get_mut(peer) {
                    n.inflight_fetches += 1;
                    if graft && !n.eager {
                        n.eager = true;
                        self.stats.grafts += 1;
                    }
                }
                self.stats.fetch_requests += 1;
                let request = Request::GetZonefiles {
                    hashes: batch.clone(),
                    graft,
                };
                let id = self.send(now, *peer, request, Pending::Fetch(batch));
                self.arm_hedge(now, id);
                progress = true;
            }
            if !progress || self.sched.ready_len() == 0 {
                break;
            }
        }
    }

    /// Up to a batch of files to ask `peer` for: the rarest ready ones it
    /// holds, then, if the rarest are all elsewhere, others it holds from a
    /// random point down. Without the second pass a peer holding only common
    /// files got nothing while one holding rare files was asked for all of
    /// them: at 10,000 files a bootstrap crawled through a few full nodes.
    fn pick_batch(&mut self, peer: &PeerId) -> Vec<Hash160> {
        let Some(inv) = self.neighbors.get(peer).and_then(|n| n.inventory.as_ref()) else {
            return Vec::new();
        };
        let max = self.cfg.batch_max_hashes;
        let wl = &self.whitelist;
        let mut picked =
            self.sched
                .take_batch(|p, newest| holds(inv, wl, p, newest), max, RAREST_SCAN);
        let first_pass_saw_all = self.sched.ready_len() + picked.len() <= RAREST_SCAN;
        if picked.len() < max {
            let len = wl.len();
            // Drawn even when the scan is skipped, so the random stream (and
            // with it every simulation result) does not depend on the shortcut.
            let start = self.rng.random_range(0..=len);
            // A first pass that saw every ready entry left nothing to find.
            let budget = if first_pass_saw_all { 0 } else { HOLDINGS_SCAN };
            let present = &self.present;
            let below_start = inv.difference_rev(present, start);
            let wrapped = inv
                .difference_rev(present, len)
                .take_while(move |i| *i >= start);
            for idx in below_start.chain(wrapped).take(budget) {
                if let Some(p) = self.missing_position(idx)
                    && self.sched.take(p)
                {
                    picked.push(p);
                    if picked.len() >= max {
                        break;
                    }
                }
            }
        }
        picked.into_iter().filter_map(|p| wl.get(p)).collect()
    }

    pub(super) fn on_fetched(
        &mut self,
        now: Instant,
        peer: PeerId,
        requested: Vec<Hash160>,
        zonefiles: Vec<Bytes>,
        missing: Vec<Hash160>,
        latency: std::time::Duration,
    ) {
        if let Some(n) = self.neighbors.get_mut(&peer) {
            n.inflight_fetches = n.inflight_fetches.saturating_sub(1);
            n.window = (n.window + 1).min(self.cfg.max_inflight_per_peer);
        }
        self.observations.push(Observation::FetchLatency(latency));
        self.sched_dirty = true;
        let wanted: Hash160Set = requested.iter().copied().collect();
        let mut delivered = Hash160Set::default();
        for bytes in zonefiles {
            let hash = Hash160::of(&bytes);
            if bytes.len() > MAX_ZONEFILE_BYTES
                || !wanted.contains(&hash)
                || !delivered.insert(hash)
            {
                // Bytes that are not what we asked for: this peer lies. Everything
                // else in the reply is suspect too; fetch it elsewhere.
                self.penalize(now, peer, Penalty::WrongHash);
                for h in &requested {
                    if !self.storing.contains(h) {
                        self.fetch_failed(*h, now);
                    }
                }
                return;
            }
            self.stats.files_fetched += 1;
            if self.has(&hash) || !self.storing.insert(hash) {
                self.stats.duplicates_received += 1;
                continue;
            }
            self.actions.push_back(Action::Store {
                hash,
                bytes,
                origin: Origin::Fetched(peer),
            });
        }
        let mut lacking = false;
        for h in &missing {
            if wanted.contains(h) && !delivered.contains(h) {
                lacking = true;
                self.forget_holding(peer, *h);
            }
        }
        if lacking {
            self.penalize(now, peer, Penalty::NotFound);
        }
        for h in requested {
            if delivered.contains(&h) {
                continue;
            }
            self.fetch_elsewhere(h, now);
        }
    }

    /// Zone files a neighbour pushed to us. Returns how many were new to us
    /// and how many we already had.
    pub(super) fn on_push(&mut self, now: Instant, peer: PeerId, files: Vec<Bytes>) -> (u32, u32) {
        let (mut accepted, mut duplicates) = (0, 0);
        for bytes in files {
            if bytes.is_empty() || bytes.len() > MAX_ZONEFILE_BYTES {
                self.penalize(now, peer, Penalty::Malformed);
                continue;
            }
            self.stats.pushes_received += 1;
            let hash = Hash160::of(&bytes);
            let gained: RangeSet = self.whitelist.positions(&hash).collect();
            if gained.is_empty() {
                self.actions.push_back(Action::Stash {
                    hash,
                    bytes,
                    from: peer,
                });
                continue;
            }
            self.apply_delta(peer, &gained, None);
            if self.has(&hash) || !self.storing.insert(hash) {
                self.stats.duplicates_received += 1;
                duplicates += 1;
                continue;
            }
            accepted += 1;
            if let Some(p) = self.whitelist.first(&hash) {
                self.sched.storing(p);
                self.promise(now, p);
            }
            self.actions.push_back(Action::Store {
                hash,
                bytes,
                origin: Origin::Pushed(peer),
            });
        }
        (accepted, duplicates)
    }

    pub(super) fn on_stored(&mut self, now: Instant, hash: Hash160, bytes: Bytes, origin: Origin) {
        self.storing.remove(&hash);
        let gained: RangeSet = self.whitelist.positions(&hash).collect();
        let Some(first) = gained.iter().next() else {
            return; // Rolled back while it was being written.
        };
        let grafted = self.grafts.remove(&first) && matches!(origin, Origin::Fetched(_));
        let already = self.present.contains(first);
        self.sched.remove(first);
        if already {
            self.settle_promise(now, first);
            return;
        }
        // Neighbours told of it while it was on its way know of it already.
        let announced = self.promised(first);
        for i in gained.iter() {
            self.present.insert(i);
            if self.cfg.deltas && !announced {
                self.delta.insert(i);
            }
        }
        self.settle_promise(now, first);
        if self.cfg.deltas && self.delta_due.is_none() {
            self.delta_due = Some(now + CoreConfig::ms(self.cfg.delta_flush_ms));
        }
        // New files travel down the push tree; files pulled while catching
        // up do not (their neighbours are catching up on the same files),
        // except a graft's, which stands in for the push that did not come.
        let fresh = grafted || matches!(origin, Origin::Local | Origin::Inbox | Origin::Pushed(_));
        if !(self.cfg.push && fresh) {
            return;
        }
        // With the push tree, a file goes to tree (eager) links only; without
        // it, an upload goes to every neighbour and a pushed file to
        // `push_fanout` random ones.
        let tree = self.cfg.push_tree;
        // A neighbour whose whitelist is behind ours still gets the push: it
        // keeps the file in its pending inbox until the announcement reaches it.
        let mut targets: Vec<PeerId> = self
            .neighbors
            .iter()
            .filter(|(p, n)| {
                (n.eager || !tree)
                    && (!n.chain.diverged || first < n.chain.common)
                    && Some(**p) != origin.peer()
                    && n.inventory
                        .as_ref()
                        .is_some_and(|inv| !gained.iter().any(|i| inv.contains(i)))
            })
            .map(|(p, _)| *p)
            .collect();
        targets.sort();
        if !tree && matches!(origin, Origin::Pushed(_)) {
            targets.shuffle(&mut self.rng);
            targets.truncate(self.cfg.push_fanout);
        }
        for &peer in &targets {
            self.apply_delta(peer, &gained, None);
            let request = Request::Push {
                view: self.view(),
                zonefiles: vec![bytes.clone()],
            };
            self.send(now, peer, request, Pending::Other);
            self.stats.files_pushed += 1;
        }
        self.observations
            .push(Observation::PushFanout(targets.len() as u32));
    }

    pub(super) fn flush_delta(&mut self, now: Instant) {
        self.delta_due = None;
        if self.delta.is_empty() {
            return;
        }
        let added = std::mem::take(&mut self.delta);
        let mut targets: Vec<(PeerId, RangeSet)> = self
            .neighbors
            .iter()
            .filter_map(|(p, n)| {
                // What the neighbour pushed us, announced to us, or got
                // pushed by us, it has: announcing it back is waste.
                let news = self.shareable(p, &added).difference(n.inventory.as_ref()?);
                (!news.is_empty()).then_some((*p, news))
            })
            .collect();
        targets.sort_by_key(|(p, _)| *p);
        for (peer, news) in targets {
            let request = Request::InventoryDelta {
                view: self.delta_view(&peer),
                added: news,
            };
            self.send(now, peer, request, Pending::Other);
        }
    }

    pub(super) fn on_zonefile_lost(&mut self, hash: Hash160) {
        let mut positions: Vec<u64> = self.whitelist.positions(&hash).collect();
        positions.sort_unstable();
        let (Some(&first), Some(&newest)) = (positions.first(), positions.last()) else {
            return;
        };
        if !self.present.contains(first) {
            return;
        }
        for i in &positions {
            self.present.remove(*i);
        }
        let holders = self.holders_of(first, newest);
        self.sched.add(first, newest, holders);
        self.sched_dirty = true;
    }
}
