//! The fetch scheduler: which missing zone files to ask which neighbour for.
//!
//! Rarest first (fewest neighbours advertising it), ties broken newest first.
//! Failed fetches back off exponentially up to a cap and are retried forever:
//! giving up is how stacks-core lost attachments (stacks-core#3270). A file no
//! neighbour advertises waits, without timers, until one does.
//!
//! An entry is keyed by the whitelist position that stands for its hash (the
//! lowest one), not by the hash: while a node bootstraps it has an entry per
//! announced file, and the simulator runs thousands of such nodes, so an
//! entry is twelve bytes and the rare backoff deadline lives beside it.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use super::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchState {
    Idle,
    InFlight,
    /// Waiting for the deadline kept in `Scheduler::backoff_until`.
    Backoff,
}

#[derive(Debug, Clone, Copy)]
pub struct Missing {
    /// The newest position announcing this hash (ties in rarity go newest first).
    newest: u32,
    pub holders: u32,
    pub attempts: u16,
    pub state: FetchState,
}

impl Missing {
    /// The newest position announcing this hash.
    pub fn newest(&self) -> u64 {
        u64::from(self.newest)
    }
}

/// Positions are small sequential integers: a multiplicative mix is enough
/// to spread them over hashbrown's buckets (it needs the high bits to vary).
#[derive(Default)]
pub struct PositionHasher(u64);

impl Hasher for PositionHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }

    fn finish(&self) -> u64 {
        let z = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z ^ (z >> 29)
    }
}

type PositionMap<V> = HashMap<u32, V, BuildHasherDefault<PositionHasher>>;

/// Ready order: fewest holders, then newest, then position.
type ReadyKey = (u32, Reverse<u32>, u32);

/// Holder counts above this rank alike. Rarity matters where copies are few;
/// counting further would re-sort an entry on every neighbour's inventory
/// delta, which at bootstrap is once per (file, neighbour) pair.
pub const RARITY_CAP: u32 = 4;

fn narrow(position: u64) -> u32 {
    u32::try_from(position).expect("whitelist positions fit in u32 (Announced caps them)")
}

#[derive(Debug)]
pub struct Scheduler {
    missing: PositionMap<Missing>,
    /// Idle entries that some neighbour advertises, in fetch order.
    ready: BTreeSet<ReadyKey>,
    backoff: BTreeSet<(Instant, u32)>,
    backoff_until: PositionMap<Instant>,
    backoff_base: Duration,
    backoff_cap: Duration,
}

impl Scheduler {
    pub fn new(backoff_base: Duration, backoff_cap: Duration) -> Self {
        Scheduler {
            missing: PositionMap::default(),
            ready: BTreeSet::new(),
            backoff: BTreeSet::new(),
            backoff_until: PositionMap::default(),
            backoff_base,
            backoff_cap,
        }
    }

    pub fn len(&self) -> usize {
        self.missing.len()
    }

    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
    }

    pub fn get(&self, position: u64) -> Option<&Missing> {
        self.missing.get(&u32::try_from(position).ok()?)
    }

    /// Every entry as (position, newest position announcing the same hash).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.missing
            .iter()
            .map(|(p, m)| (u64::from(*p), u64::from(m.newest)))
    }

    pub fn newest(&self, position: u64) -> Option<u64> {
        self.get(position).map(Missing::newest)
    }

    /// Entries that are waiting and fetchable now, in the order they will be asked for.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    fn key(position: u32, m: &Missing) -> Option<ReadyKey> {
        (m.state == FetchState::Idle && m.holders > 0).then_some((
            m.holders.min(RARITY_CAP),
            Reverse(m.newest),
            position,
        ))
    }

    /// Applies `f` to an entry while keeping the ready and backoff sets in
    /// step; `f` returns a new backoff deadline, or `None` to keep the old one.
    fn update(&mut self, position: u32, f: impl FnOnce(&mut Missing) -> Option<Instant>) {
        let Some(m) = self.missing.get_mut(&position) else {
            return;
        };
        let old_key = Self::key(position, m);
        let was_backing_off = m.state == FetchState::Backoff;
        let deadline = f(m);
        let new_key = Self::key(position, m);
        if old_key != new_key {
            if let Some(k) = old_key {
                self.ready.remove(&k);
            }
            if let Some(k) = new_key {
                self.ready.insert(k);
            }
        }
        let backing_off = m.state == FetchState::Backoff;
        if was_backing_off
            && (!backing_off || deadline.is_some())
            && let Some(t) = self.backoff_until.remove(&position)
        {
            self.backoff.remove(&(t, position));
        }
        if backing_off && let Some(t) = deadline {
            self.backoff_until.insert(position, t);
            self.backoff.insert((t, position));
        }
        debug_assert!(!backing_off || self.backoff_until.contains_key(&position));
    }

    /// Records that the hash standing at `position`, which we lack, is also
    /// announced at `newest` (the same position for a first announcement).
    pub fn add(&mut self, position: u64, newest: u64, holders: u32) {
        let (position, newest) = (narrow(position), narrow(newest));
        self.missing.entry(position).or_insert(Missing {
            newest,
            holders: 0,
            state: FetchState::Idle,
            attempts: 0,
        });
        self.update(position, |m| {
            m.newest = m.newest.max(newest);
            m.holders = holders;
            None
        });
    }

    pub fn remove(&mut self, position: u64) -> Option<Missing> {
        let position = u32::try_from(position).ok()?;
        let m = self.missing.remove(&position)?;
        if let Some(k) = Self::key(position, &m) {
            self.ready.remove(&k);
        }
        if let Some(t) = self.backoff_until.remove(&position) {
            self.backoff.remove(&(t, position));
        }
        Some(m)
    }

    /// Forgets positions `>= len` after the whitelist rolled back; an entry
    /// that stays gets its newest position from `newest_below(position)`.
    pub fn truncate(&mut self, len: u64, newest_below: impl Fn(u64) -> u64) {
        let affected: Vec<u32> = self
            .missing
            .iter()
            .filter(|(p, m)| u64::from(**p) >= len || u64::from(m.newest) >= len)
            .map(|(p, _)| *p)
            .collect();
        for p in affected {
            if u64::from(p) >= len {
                self.remove(u64::from(p));
            } else {
                let newest = narrow(newest_below(u64::from(p)));
                self.update(p, |m| {
                    m.newest = newest;
                    None
                });
            }
        }
    }

    pub fn adjust_holders(&mut self, position: u64, delta: i32) {
        let Ok(position) = u32::try_from(position) else {
            return;
        };
        self.update(position, |m| {
            m.holders = m.holders.saturating_add_signed(delta);
            None
        });
    }

    /// Takes up to `max` ready positions, rarest first, that `holds` says the
    /// peer can serve, and marks them in flight. Scans at most `scan_limit`
    /// ready entries so a peer that holds little cannot make this quadratic.
    pub fn take_batch(
        &mut self,
        holds: impl Fn(u64, u64) -> bool,
        max: usize,
        scan_limit: usize,
    ) -> Vec<u64> {
        let mut picked = Vec::new();
        for key in self.ready.iter().take(scan_limit) {
            if picked.len() >= max {
                break;
            }
            if holds(u64::from(key.2), u64::from(key.1.0)) {
                picked.push(key.2);
            }
        }
        for p in &picked {
            self.update(*p, |m| {
                m.state = FetchState::InFlight;
                None
            });
        }
        picked.into_iter().map(u64::from).collect()
    }

    /// Marks one position in flight if it is ready (idle, and someone holds it).
    pub fn take(&mut self, position: u64) -> bool {
        let Ok(position) = u32::try_from(position) else {
            return false;
        };
        if self
            .missing
            .get(&position)
            .is_none_or(|m| Self::key(position, m).is_none())
        {
            return false;
        }
        self.update(position, |m| {
            m.state = FetchState::InFlight;
            None
        });
        true
    }

    /// A fetch failed: retry after a capped exponential backoff.
    pub fn failed(&mut self, position: u64, now: Instant) {
        let Ok(position) = u32::try_from(position) else {
            return;
        };
        let (base, cap) = (self.backoff_base, self.backoff_cap);
        self.update(position, |m| {
            m.attempts = m.attempts.saturating_add(1);
            let exp = u32::from(m.attempts.saturating_sub(1)).min(20);
            m.state = FetchState::Backoff;
            Some(now + base.saturating_mul(1u32 << exp).min(cap))
        });
    }

    /// The file is on its way to the store (it came in a push or a reply):
    /// fetching it again meanwhile would only bring a duplicate.
    pub fn storing(&mut self, position: u64) {
        self.set_state(position, FetchState::InFlight);
    }

    /// Holds an idle entry back until `until` without counting an attempt:
    /// a file just announced by a neighbour is given time to arrive by push.
    pub fn defer(&mut self, position: u64, until: Instant) {
        let Ok(position) = u32::try_from(position) else {
            return;
        };
        if self
            .missing
            .get(&position)
            .is_none_or(|m| m.state != FetchState::Idle)
        {
            return;
        }
        self.update(position, |m| {
            m.state = FetchState::Backoff;
            Some(until)
        });
    }

    /// A fetch ended without fault (e.g. the reply was trimmed): ask again at once.
    pub fn release(&mut self, position: u64) {
        self.set_state(position, FetchState::Idle);
    }

    /// Moves an entry to `Idle` or `InFlight` (leaving any backoff).
    fn set_state(&mut self, position: u64, state: FetchState) {
        debug_assert_ne!(state, FetchState::Backoff, "a backoff needs a deadline");
        let Ok(position) = u32::try_from(position) else {
            return;
        };
        self.update(position, |m| {
            m.state = state;
            None
        });
    }

    /// Returns entries whose backoff expired to the ready set.
    pub fn on_timer(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .backoff
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, p)| *p)
            .collect();
        for p in due {
            self.update(p, |m| {
                m.state = FetchState::Idle;
                None
            });
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.backoff.first().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rarest_first_then_newest() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(1, 1, 3);
        s.add(2, 2, 1);
        s.add(3, 3, 1);
        s.add(4, 4, 0); // nobody has it: not schedulable
        s.add(5, 5, 2);
        let batch = s.take_batch(|_, _| true, 10, 100);
        assert_eq!(batch, vec![3, 2, 5, 1]);
        assert!(s.take_batch(|_, _| true, 10, 100).is_empty(), "in flight");
    }

    #[test]
    fn a_later_announcement_of_the_same_hash_makes_it_newer() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(1, 1, 1);
        s.add(2, 2, 1);
        s.add(1, 9, 1);
        assert_eq!(s.take_batch(|_, _| true, 10, 100), vec![1, 2]);
    }

    #[test]
    fn a_rollback_keeps_a_surviving_entrys_backoff() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(1, 1, 1);
        s.add(1, 8, 1); // the same hash announced again at position 8
        assert_eq!(s.take_batch(|_, _| true, 1, 10), vec![1]);
        s.failed(1, Instant::ZERO);
        let due = s.next_deadline().unwrap();
        s.truncate(5, |_| 1);
        assert_eq!(s.newest(1), Some(1));
        assert_eq!(
            s.next_deadline(),
            Some(due),
            "still backing off, same deadline"
        );
        assert!(s.take_batch(|_, _| true, 1, 10).is_empty());
        s.on_timer(due);
        assert_eq!(s.take_batch(|_, _| true, 1, 10), vec![1]);
    }

    #[test]
    fn holder_counts_above_the_cap_rank_alike() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(1, 1, RARITY_CAP + 5);
        s.add(2, 2, RARITY_CAP);
        s.add(3, 3, RARITY_CAP - 1);
        assert_eq!(s.take_batch(|_, _| true, 10, 100), vec![3, 2, 1]);
        assert_eq!(
            s.get(1).unwrap().holders,
            RARITY_CAP + 5,
            "the count itself is exact"
        );
    }

    #[test]
    fn batch_respects_what_the_peer_holds_and_the_size_cap() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        for i in 0..10 {
            s.add(i, i, 1);
        }
        let even = s.take_batch(|p, _| p % 2 == 0, 3, 100);
        assert_eq!(even, vec![8, 6, 4]);
    }

    #[test]
    fn backoff_is_exponential_capped_and_never_gives_up() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(1, 1, 1);
        let mut now = Instant::ZERO;
        let mut waits = Vec::new();
        for _ in 0..12 {
            assert_eq!(s.take_batch(|_, _| true, 1, 10), vec![1]);
            s.failed(1, now);
            let due = s.next_deadline().unwrap();
            waits.push((due - now).as_secs());
            s.on_timer(due - Duration::from_millis(1));
            assert!(
                s.take_batch(|_, _| true, 1, 10).is_empty(),
                "still backing off"
            );
            s.on_timer(due);
            now = due;
        }
        assert_eq!(&waits[..7], &[1, 2, 4, 8, 16, 32, 60]);
        assert!(waits[7..].iter().all(|w| *w == 60));
        assert_eq!(s.get(1).unwrap().attempts, 12);
        assert!(s.backoff.is_empty() && s.backoff_until.is_empty());
    }

    #[test]
    fn holder_changes_reorder_and_rollback_truncates() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(1, 1, 2);
        s.add(2, 2, 1);
        s.adjust_holders(1, -1);
        s.adjust_holders(2, 2);
        assert_eq!(s.take_batch(|_, _| true, 1, 10), vec![1]);
        s.add(3, 7, 1);
        s.add(2, 6, 3);
        s.truncate(5, |p| p);
        assert!(
            s.get(3).is_some(),
            "position 3 stays; only its newer duplicate went"
        );
        assert!(s.get(2).is_some());
        s.truncate(3, |p| p);
        assert!(s.get(3).is_none());
        assert_eq!(s.len(), 2);
    }
}
