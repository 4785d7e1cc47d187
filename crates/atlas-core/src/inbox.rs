//! The pending inbox's policy: uploads (and pushes) whose hash is not
//! announced yet wait here until it is, bounded by count and by bytes.
//!
//! Every entry records its source (an API client's address, or the peer that
//! pushed it). When the inbox is full the oldest entry of the largest source
//! (by bytes) goes: a flood evicts its own entries first, and no source can
//! evict the uploads of one holding less than it does. 20,000 junk uploads
//! from one address used to evict every legitimate pending file.
//!
//! This is bookkeeping only: the node's store keeps the bytes in redb and the
//! simulator in memory, and both ask this ledger what to evict, so the two
//! drivers keep the same inbox.

use std::collections::{HashMap, VecDeque};

use crate::zonefile::Hash160;

/// The inbox's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxLimits {
    pub count: usize,
    pub bytes: u64,
}

impl Default for InboxLimits {
    fn default() -> Self {
        InboxLimits {
            count: 10_000,
            bytes: 64 << 20,
        }
    }
}

/// An entry the ledger chose to evict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eviction {
    pub seq: u64,
    pub hash: Hash160,
    pub size: u64,
}

/// Why an upload cannot wait in the inbox at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    AlreadyThere,
    /// Larger than the whole inbox.
    TooLarge,
}

#[derive(Default, Debug)]
struct Source {
    /// (sequence, hash, size), oldest first.
    entries: VecDeque<(u64, Hash160, u64)>,
    bytes: u64,
}

/// The inbox's contents by source, kept in memory so that choosing what to
/// evict costs no scan of the stored entries.
#[derive(Debug)]
pub struct InboxLedger {
    limits: InboxLimits,
    sources: HashMap<String, Source>,
    where_is: HashMap<Hash160, String>,
    count: usize,
    bytes: u64,
    next_seq: u64,
}

impl InboxLedger {
    pub fn new(limits: InboxLimits) -> Self {
        InboxLedger {
            limits,
            sources: HashMap::new(),
            where_is: HashMap::new(),
            count: 0,
            bytes: 0,
            next_seq: 0,
        }
    }

    pub fn contains(&self, hash: &Hash160) -> bool {
        self.where_is.contains_key(hash)
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The sequence number the next admitted entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// What must go for `size` bytes from `source` to fit. Nothing changes
    /// until the caller has made the evictions durable and calls `admit`.
    pub fn plan(&self, hash: &Hash160, source: &str, size: u64) -> Result<Vec<Eviction>, Refusal> {
        if self.contains(hash) {
            return Err(Refusal::AlreadyThere);
        }
        if size > self.limits.bytes {
            return Err(Refusal::TooLarge);
        }
        let mut evict: Vec<Eviction> = Vec::new();
        let (mut count, mut held) = (self.count, self.bytes);
        while count + 1 > self.limits.count || held + size > self.limits.bytes {
            let Some(victim) = self.next_victim(&evict, source, size) else {
                break;
            };
            count -= 1;
            held -= victim.size;
            evict.push(victim);
        }
        Ok(evict)
    }

    /// Records a planned admission once it is durable.
    pub fn admit(
        &mut self,
        evicted: &[Eviction],
        source: &str,
        seq: u64,
        hash: Hash160,
        size: u64,
    ) {
        for e in evicted {
            self.remove(&e.hash);
        }
        self.add(source, seq, hash, size);
    }

    /// Records an entry found on disk at start-up (in sequence order).
    pub fn add(&mut self, source: &str, seq: u64, hash: Hash160, size: u64) {
        let s = self.sources.entry(source.to_string()).or_default();
        s.entries.push_back((seq, hash, size));
        s.bytes += size;
        self.where_is.insert(hash, source.to_string());
        self.count += 1;
        self.bytes += size;
        self.next_seq = self.next_seq.max(seq + 1);
    }

    /// Forgets an entry; its sequence number if it was there.
    pub fn remove(&mut self, hash: &Hash160) -> Option<u64> {
        let source = self.where_is.remove(hash)?;
        let s = self.sources.get_mut(&source)?;
        let at = s.entries.iter().position(|(_, h, _)| h == hash)?;
        let (seq, _, size) = s.entries.remove(at)?;
        s.bytes -= size;
        if s.entries.is_empty() {
            self.sources.remove(&source);
        }
        self.count -= 1;
        self.bytes -= size;
        Some(seq)
    }

    /// The next entry to evict: the oldest left of the source that holds the
    /// most bytes once `chosen` are gone, counting `incoming` for `source`.
    fn next_victim(&self, chosen: &[Eviction], source: &str, incoming: u64) -> Option<Eviction> {
        // Per source: bytes left and entries already chosen (always its oldest).
        let mut left: HashMap<&str, (u64, usize)> = self
            .sources
            .iter()
            .map(|(name, s)| (name.as_str(), (s.bytes, 0)))
            .collect();
        for e in chosen {
            let l = left
                .get_mut(self.where_is[&e.hash].as_str())
                .expect("chosen from a known source");
            l.0 -= e.size;
            l.1 += 1;
        }
        let held = |name: &str, bytes: u64| bytes + if name == source { incoming } else { 0 };
        let (name, (_, gone)) = left
            .into_iter()
            .filter(|(name, (_, gone))| self.sources[*name].entries.len() > *gone)
            .max_by(|(a, (ab, _)), (b, (bb, _))| {
                held(a, *ab)
                    .cmp(&held(b, *bb))
                    // Ties go to the newcomer's own entries, then by name, for determinism.
                    .then((*a == source).cmp(&(*b == source)))
                    .then(b.cmp(a))
            })?;
        let (seq, hash, size) = *self.sources[name].entries.get(gone)?;
        Some(Eviction { seq, hash, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u32) -> Hash160 {
        Hash160::of(&i.to_be_bytes())
    }

    /// Admits `hash` as a driver would: plan, then record.
    fn stash(l: &mut InboxLedger, i: u32, source: &str, size: u64) -> Vec<Eviction> {
        let evict = l.plan(&h(i), source, size).unwrap();
        let seq = l.next_seq();
        l.admit(&evict, source, seq, h(i), size);
        evict
    }

    #[test]
    fn the_largest_source_loses_its_oldest_entry_first() {
        let mut l = InboxLedger::new(InboxLimits {
            count: 4,
            bytes: 1 << 20,
        });
        stash(&mut l, 0, "ip:a", 100);
        for i in 1..4 {
            stash(&mut l, i, "ip:flood", 100);
        }
        let gone = stash(&mut l, 4, "ip:flood", 100);
        assert_eq!(gone.iter().map(|e| e.hash).collect::<Vec<_>>(), vec![h(1)]);
        assert!(l.contains(&h(0)), "the small source keeps its upload");
        assert_eq!((l.count(), l.bytes()), (4, 400));
        assert_eq!(l.plan(&h(4), "ip:a", 1), Err(Refusal::AlreadyThere));
        assert_eq!(l.plan(&h(9), "ip:a", 2 << 20), Err(Refusal::TooLarge));
    }

    #[test]
    fn bytes_bound_the_inbox_as_well_as_count() {
        let mut l = InboxLedger::new(InboxLimits {
            count: 100,
            bytes: 1_000,
        });
        for i in 0..20 {
            stash(&mut l, i, &format!("peer:{}", i % 3), 300);
            assert!(l.bytes() <= 1_000);
        }
        assert!(l.contains(&h(19)), "the newest entry is kept");
        assert_eq!(l.remove(&h(19)), Some(19));
        assert_eq!(l.remove(&h(19)), None);
    }
}
