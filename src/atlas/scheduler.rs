//! The fetch scheduler: which missing zone files to ask which neighbour for.
//!
//! Rarest first (fewest neighbours advertising it), ties broken newest first.
//! Failed fetches back off exponentially up to a cap and are retried forever:
//! giving up is how stacks-core lost attachments (stacks-core#3270). A file no
//! neighbour advertises waits, without timers, until one does.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::Duration;

use super::time::Instant;
use crate::zonefile::{Hash160, Hash160Map};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchState {
    Idle,
    InFlight,
    Backoff(Instant),
}

#[derive(Debug, Clone)]
pub struct Missing {
    /// Whitelist indices announcing this hash (one hash can be announced many times).
    pub indices: Vec<u64>,
    pub holders: u32,
    pub state: FetchState,
    pub attempts: u32,
}

impl Missing {
    fn newest(&self) -> u64 {
        self.indices.iter().copied().max().unwrap_or(0)
    }
}

type ReadyKey = (u32, Reverse<u64>, Hash160);

#[derive(Debug)]
pub struct Scheduler {
    missing: Hash160Map<Missing>,
    /// Idle entries that some neighbour advertises, in fetch order.
    ready: BTreeSet<ReadyKey>,
    backoff: BTreeSet<(Instant, Hash160)>,
    backoff_base: Duration,
    backoff_cap: Duration,
}

impl Scheduler {
    pub fn new(backoff_base: Duration, backoff_cap: Duration) -> Self {
        Scheduler {
            missing: Hash160Map::default(),
            ready: BTreeSet::new(),
            backoff: BTreeSet::new(),
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

    pub fn get(&self, hash: &Hash160) -> Option<&Missing> {
        self.missing.get(hash)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Hash160, &Missing)> {
        self.missing.iter()
    }

    /// Entries that are waiting and fetchable now, in the order they will be asked for.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    fn key(hash: Hash160, m: &Missing) -> Option<ReadyKey> {
        (m.state == FetchState::Idle && m.holders > 0)
            .then(|| (m.holders, Reverse(m.newest()), hash))
    }

    /// Applies `f` to an entry while keeping the ready and backoff sets in step.
    fn update(&mut self, hash: Hash160, f: impl FnOnce(&mut Missing)) {
        let Some(m) = self.missing.get_mut(&hash) else {
            return;
        };
        if let Some(k) = Self::key(hash, m) {
            self.ready.remove(&k);
        }
        if let FetchState::Backoff(t) = m.state {
            self.backoff.remove(&(t, hash));
        }
        f(m);
        if let Some(k) = Self::key(hash, m) {
            self.ready.insert(k);
        }
        if let FetchState::Backoff(t) = m.state {
            self.backoff.insert((t, hash));
        }
    }

    /// Records that `index` announces `hash`, which we lack.
    pub fn add(&mut self, hash: Hash160, index: u64, holders: u32) {
        if self.missing.contains_key(&hash) {
            self.update(hash, |m| {
                if !m.indices.contains(&index) {
                    m.indices.push(index);
                }
                m.holders = holders;
            });
            return;
        }
        self.missing.insert(
            hash,
            Missing {
                indices: vec![index],
                holders: 0,
                state: FetchState::Idle,
                attempts: 0,
            },
        );
        self.update(hash, |m| m.holders = holders);
    }

    pub fn remove(&mut self, hash: &Hash160) -> Option<Missing> {
        self.update(*hash, |m| m.state = FetchState::InFlight);
        self.missing.remove(hash)
    }

    /// Forgets indices `>= len` after the whitelist rolled back.
    pub fn truncate(&mut self, len: u64) {
        let affected: Vec<Hash160> = self
            .missing
            .iter()
            .filter(|(_, m)| m.indices.iter().any(|i| *i >= len))
            .map(|(h, _)| *h)
            .collect();
        for h in affected {
            self.update(h, |m| m.indices.retain(|i| *i < len));
            if self.missing[&h].indices.is_empty() {
                self.remove(&h);
            }
        }
    }

    pub fn set_holders(&mut self, hash: Hash160, holders: u32) {
        self.update(hash, |m| m.holders = holders);
    }

    pub fn adjust_holders(&mut self, hash: Hash160, delta: i32) {
        self.update(hash, |m| m.holders = m.holders.saturating_add_signed(delta));
    }

    /// Takes up to `max` ready hashes, rarest first, that `holds` says the
    /// peer can serve, and marks them in flight. Scans at most `scan_limit`
    /// ready entries so a peer that holds little cannot make this quadratic.
    pub fn take_batch(
        &mut self,
        holds: impl Fn(&[u64]) -> bool,
        max: usize,
        scan_limit: usize,
    ) -> Vec<Hash160> {
        let mut picked = Vec::new();
        for key in self.ready.iter().take(scan_limit) {
            if picked.len() >= max {
                break;
            }
            if holds(&self.missing[&key.2].indices) {
                picked.push(key.2);
            }
        }
        for h in &picked {
            self.update(*h, |m| m.state = FetchState::InFlight);
        }
        picked
    }

    /// A fetch failed: retry after a capped exponential backoff.
    pub fn failed(&mut self, hash: Hash160, now: Instant) {
        let (base, cap) = (self.backoff_base, self.backoff_cap);
        self.update(hash, |m| {
            m.attempts = m.attempts.saturating_add(1);
            let exp = m.attempts.saturating_sub(1).min(20);
            let wait = base.saturating_mul(1u32 << exp).min(cap);
            m.state = FetchState::Backoff(now + wait);
        });
    }

    /// A fetch ended without fault (e.g. the reply was trimmed): ask again at once.
    pub fn release(&mut self, hash: Hash160) {
        self.update(hash, |m| m.state = FetchState::Idle);
    }

    /// Returns entries whose backoff expired to the ready set.
    pub fn on_timer(&mut self, now: Instant) {
        let due: Vec<Hash160> = self
            .backoff
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, h)| *h)
            .collect();
        for h in due {
            self.update(h, |m| m.state = FetchState::Idle);
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.backoff.first().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash160 {
        Hash160([i; 20])
    }

    #[test]
    fn rarest_first_then_newest() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(h(1), 1, 3);
        s.add(h(2), 2, 1);
        s.add(h(3), 3, 1);
        s.add(h(4), 4, 0); // nobody has it: not schedulable
        s.add(h(5), 5, 2);
        let batch = s.take_batch(|_| true, 10, 100);
        assert_eq!(batch, vec![h(3), h(2), h(5), h(1)]);
        assert!(s.take_batch(|_| true, 10, 100).is_empty(), "in flight");
    }

    #[test]
    fn batch_respects_what_the_peer_holds_and_the_size_cap() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        for i in 0..10u8 {
            s.add(h(i), u64::from(i), 1);
        }
        let even = s.take_batch(|idx| idx[0] % 2 == 0, 3, 100);
        assert_eq!(even, vec![h(8), h(6), h(4)]);
    }

    #[test]
    fn backoff_is_exponential_capped_and_never_gives_up() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(h(1), 0, 1);
        let mut now = Instant::ZERO;
        let mut waits = Vec::new();
        for _ in 0..12 {
            assert_eq!(s.take_batch(|_| true, 1, 10), vec![h(1)]);
            s.failed(h(1), now);
            let due = s.next_deadline().unwrap();
            waits.push((due - now).as_secs());
            s.on_timer(due - Duration::from_millis(1));
            assert!(
                s.take_batch(|_| true, 1, 10).is_empty(),
                "still backing off"
            );
            s.on_timer(due);
            now = due;
        }
        assert_eq!(&waits[..7], &[1, 2, 4, 8, 16, 32, 60]);
        assert!(waits[7..].iter().all(|w| *w == 60));
        assert_eq!(s.get(&h(1)).unwrap().attempts, 12);
    }

    #[test]
    fn holder_changes_reorder_and_rollback_truncates() {
        let mut s = Scheduler::new(Duration::from_secs(1), Duration::from_secs(60));
        s.add(h(1), 1, 2);
        s.add(h(2), 2, 1);
        s.adjust_holders(h(1), -1);
        s.adjust_holders(h(2), 2);
        assert_eq!(s.take_batch(|_| true, 1, 10), vec![h(1)]);
        s.add(h(3), 7, 1);
        s.truncate(5);
        assert!(s.get(&h(3)).is_none());
        assert_eq!(s.len(), 2);
    }
}
