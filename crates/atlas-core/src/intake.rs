//! How zone files enter a node other than from peers: uploads to its API,
//! the pending inbox once their announcement arrives, and files the store
//! already holds when the whitelist (re)learns their hashes. Both drivers
//! carry these decisions out; neither makes them.

use bytes::Bytes;

use super::time::Instant;
use super::{Action, Core, CoreConfig, Origin};
use crate::zonefile::{Hash160, Hash160Set};

/// What to do with a zone file a client uploads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// Announced and new: store it (origin `Local`); it is then pushed.
    Store,
    /// Announced, and held or being stored already.
    AlreadyHeld,
    /// Not announced (yet): it waits in the pending inbox.
    Stash,
}

impl Core {
    pub fn upload_decision(&self, hash: &Hash160) -> Upload {
        if !self.is_whitelisted(hash) {
            Upload::Stash
        } else if self.has(hash) || self.storing.contains(hash) {
            Upload::AlreadyHeld
        } else {
            Upload::Store
        }
    }

    /// Marks hashes the store already holds, without pushing or announcing
    /// them: neighbours learn them from our full inventory.
    fn restore_present(&mut self, held: &[Hash160]) {
        // In ascending order the range set grows at its end; in the store's
        // (hash) order every insert shifted the ranges after it, and a node
        // holding a million files took 19 s to start.
        let mut positions: Vec<u64> = held
            .iter()
            .flat_map(|h| self.whitelist.positions(h))
            .collect();
        positions.sort_unstable();
        positions.dedup();
        for i in positions {
            self.present.insert(i);
            self.sched.remove(i);
        }
    }

    /// New announcements. `held` are the ones the store already has (from
    /// an earlier run, or from before a rollback); `pending` are the files
    /// that waited in the inbox for them, which the driver has taken out.
    pub(super) fn on_whitelist_grew(
        &mut self,
        now: Instant,
        from: u64,
        hashes: Vec<Hash160>,
        held: &[Hash160],
        pending: Vec<(Hash160, Bytes)>,
    ) {
        let len = self.whitelist.len();
        let rolled_back = from < len;
        if rolled_back {
            self.on_rollback(now, from);
        } else if from > len {
            tracing::warn!(from, len, "whitelist update leaves a gap; ignored");
            return;
        }
        // A file from the inbox is stored, not fetched. The inbox verified
        // its hash on the way in; checking again costs one hash per file.
        let pending: Vec<(Hash160, Bytes)> = pending
            .into_iter()
            .filter(|(h, b)| Hash160::of(b) == *h)
            .collect();
        let promoted: Hash160Set = pending.iter().map(|(h, _)| *h).collect();
        // Files on disk are marked present below, not scheduled and unscheduled.
        let on_disk: Hash160Set = held.iter().copied().collect();
        self.whitelist.reserve(hashes.len());
        for hash in hashes {
            let first = self.whitelist.first(&hash);
            let Some(idx) = self.whitelist.push(hash) else {
                tracing::error!("whitelist has no room for more positions; announcement ignored");
                break;
            };
            let first = first.unwrap_or(idx);
            if self.present.contains(first) {
                self.present.insert(idx);
                if self.cfg.deltas {
                    self.delta.insert(idx);
                }
            } else if !self.storing.contains(&hash)
                && !promoted.contains(&hash)
                && !on_disk.contains(&hash)
            {
                let holders = self.holders_of(first, idx);
                self.sched.add(first, idx, holders);
            }
        }
        self.restore_present(held);
        for (hash, bytes) in pending {
            let Some(first) = self.whitelist.first(&hash) else {
                continue;
            };
            if self.present.contains(first) || !self.storing.insert(hash) {
                continue;
            }
            self.actions.push_back(Action::Store {
                hash,
                bytes,
                origin: Origin::Inbox,
            });
        }
        if self.cfg.deltas && !self.delta.is_empty() && self.delta_due.is_none() {
            self.delta_due = Some(now + CoreConfig::ms(self.cfg.delta_flush_ms));
        }
        // Views of neighbours that were ahead of us may be checkable now.
        self.recheck_views(now);
        if rolled_back {
            self.announce_rollback(now);
        }
        self.sched_dirty = true;
    }

    /// A store write failed: the file is fetched (again) from peers.
    pub(super) fn on_store_failed(&mut self, hash: Hash160, now: Instant) {
        self.storing.remove(&hash);
        let mut positions: Vec<u64> = self.whitelist.positions(&hash).collect();
        positions.sort_unstable();
        let (Some(&first), Some(&newest)) = (positions.first(), positions.last()) else {
            return;
        };
        if self.present.contains(first) {
            return;
        }
        if self.sched.get(first).is_some() {
            self.fetch_failed(hash, now);
        } else {
            // An upload or a promoted inbox file: never scheduled before.
            let holders = self.holders_of(first, newest);
            self.sched.add(first, newest, holders);
            self.sched_dirty = true;
        }
    }

    pub(super) fn on_rollback(&mut self, now: Instant, to: u64) {
        if to >= self.whitelist.len() {
            return;
        }
        self.whitelist.truncate(to);
        self.present.truncate(to);
        self.grafts.retain(|p| *p < to);
        self.delta.truncate(to);
        self.truncate_promises(now, to);
        let wl = &self.whitelist;
        self.sched
            .truncate(to, |p| wl.get(p).and_then(|h| wl.newest(&h)).unwrap_or(p));
        self.recheck_views(now);
    }
}
