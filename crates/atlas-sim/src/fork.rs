//! A chain reorganisation that some followers see late: the announcements
//! after the fork point are replaced, and for a while neighbours disagree on
//! what a whitelist position means.

use rand::Rng;

use super::engine::{Ev, Sim};
use super::world::secs;

impl Sim {
    pub(super) fn fork(&mut self) {
        let f = self.scenario.fork.clone();
        let len = self.announced.len();
        let depth = f.depth.min(len);
        let fork_point = len - depth;
        for h in self.announced.split_off(fork_point) {
            let file = self.file_of[&h];
            self.record.unannounce(file, self.now);
        }
        let first_new = self.files.len() - f.depth;
        for file in first_new as u32..(first_new + depth) as u32 {
            self.announced.push(self.files[file as usize].0);
            self.record.announce(file, self.now);
        }
        self.fork_epoch += 1;
        self.fork_point = fork_point;
        let lag = secs(self.scenario.publish.follower_lag_s);
        let late = secs(f.late_s);
        let upto = self.announced.len();
        for k in 0..self.alive.len() {
            let n = self.alive[k];
            let at = if self.rng.random_bool(f.late_fraction) {
                self.now + late
            } else {
                self.now + self.rng.random_range(0..=lag)
            };
            self.schedule(at, Ev::Whitelist { node: n, upto });
        }
        self.fork_agreed_us = self.now + late.max(lag) + 1;
        // The new chain's files are published as a block's are.
        self.publish_at_random_nodes(first_new as u32..(first_new + depth) as u32, lag);
        let mid = self.now + late / 2;
        self.schedule(
            mid,
            Ev::ForkCheck {
                label: "misattributed_holdings_while_forked",
            },
        );
        self.schedule(
            self.fork_agreed_us + secs(30.0),
            Ev::ForkCheck {
                label: "misattributed_holdings_after_views_agree",
            },
        );
    }

    /// Holdings a node credits to a neighbour at a position whose file (by
    /// the node's own whitelist) that neighbour does not hold. Each is a
    /// request that would come back "not found".
    pub(super) fn count_misattributed(&mut self, label: &'static str) {
        let mut wrong = 0u64;
        for &n in &self.alive {
            let node = &self.nodes[n as usize];
            if !node.counts() {
                continue;
            }
            let ours = node.driver.core.whitelist();
            for (peer, _, _) in node.driver.core.neighbor_list() {
                let (Some(inv), Some(&b)) = (
                    node.driver.core.neighbor_inventory(&peer),
                    self.by_peer.get(&peer),
                ) else {
                    continue;
                };
                let holder = &self.nodes[b as usize];
                for idx in inv.iter() {
                    let Some(h) = ours.get(idx as usize) else {
                        continue;
                    };
                    if !holder.holds(self.file_of[h]) {
                        wrong += 1;
                    }
                }
            }
        }
        // Recorded even when zero: the summary shows the check ran.
        *self.record.driver_stats.entry(label).or_default() += wrong;
    }
}
