//! The whitelist as the core holds it: announced hashes in chain order, a
//! hash-to-position index, and a running digest of the list.
//!
//! Every node keeps one entry per announcement, so this is the core's largest
//! structure and the simulator keeps thousands of them. The index stores bare
//! `u32` positions (five bytes a slot with hashbrown's control byte) and finds
//! a hash by comparing against `hashes[position]`, instead of a map from
//! 20-byte keys to heap vectors; a hash announced twice simply has two slots.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use sha2::{Digest, Sha256};

use crate::zonefile::{BuildHash160, Hash160};

/// Positions are `u32`: four billion announcements is far beyond any chain.
pub const MAX_ANNOUNCEMENTS: u64 = u32::MAX as u64;

#[derive(Default)]
pub struct Announced {
    hashes: Vec<Hash160>,
    positions: HashTable<u32>,
    /// SHA-256 over the concatenated hashes so far: one compression per
    /// three entries, where a hash chain would cost two hashes per entry on
    /// every node (a tenth of a 10,000-node simulation's time).
    digest: Sha256,
    /// The digest's state after every `CHECKPOINT` entries, so the digest of
    /// any prefix (another node's view of the list) costs at most
    /// `CHECKPOINT - 1` more entries: `checkpoints[k]` is after `k * CHECKPOINT`.
    checkpoints: Vec<Sha256>,
}

const CHECKPOINT: u64 = 256;

fn finish(state: Sha256) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(&state.finalize()[..20]);
    out
}

fn key(hash: &Hash160) -> u64 {
    BuildHash160.hash_one(hash)
}

impl Announced {
    pub fn len(&self) -> u64 {
        self.hashes.len() as u64
    }

    pub fn hashes(&self) -> &[Hash160] {
        &self.hashes
    }

    pub fn get(&self, index: u64) -> Option<Hash160> {
        self.hashes.get(usize::try_from(index).ok()?).copied()
    }

    /// A digest of the whole list (the first 20 bytes of its SHA-256), so two
    /// nodes can tell whether they agree on it.
    pub fn tip(&self) -> [u8; 20] {
        finish(self.digest.clone())
    }

    /// The tip the list had when it was `len` long (`None` beyond its end):
    /// a peer whose view is (`len`, this) holds a prefix of our list.
    pub fn digest_at(&self, len: u64) -> Option<[u8; 20]> {
        if len > self.len() {
            return None;
        }
        if len == self.len() {
            return Some(self.tip());
        }
        let k = len / CHECKPOINT;
        let mut state = match self.checkpoints.get(k as usize) {
            Some(s) => s.clone(),
            None => Sha256::new(),
        };
        for h in &self.hashes[(k * CHECKPOINT) as usize..len as usize] {
            state.update(h.0);
        }
        Some(finish(state))
    }

    /// Room for `more` entries, exactly: a bootstrap announces thousands at
    /// once and doubling would leave up to half the vector unused.
    pub fn reserve(&mut self, more: usize) {
        self.hashes.reserve_exact(more);
        let hashes = &self.hashes;
        self.positions.reserve(more, |p| key(&hashes[*p as usize]));
    }

    /// Appends `hash`; returns its position, or `None` once positions run out.
    pub fn push(&mut self, hash: Hash160) -> Option<u64> {
        let index = self.len();
        if index >= MAX_ANNOUNCEMENTS {
            return None;
        }
        if index.is_multiple_of(CHECKPOINT) {
            self.checkpoints.push(self.digest.clone());
        }
        self.digest.update(hash.0);
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.positions
            .insert_unique(key(&hash), index as u32, |p| key(&hashes[*p as usize]));
        Some(index)
    }

    /// Every position announcing `hash`, in no particular order.
    pub fn positions<'a>(&'a self, hash: &'a Hash160) -> impl Iterator<Item = u64> + 'a {
        self.positions
            .iter_hash(key(hash))
            .filter(move |p| self.hashes[**p as usize] == *hash)
            .map(|p| u64::from(*p))
    }

    /// The lowest position announcing `hash`: the one that stands for it.
    pub fn first(&self, hash: &Hash160) -> Option<u64> {
        self.positions(hash).min()
    }

    pub fn newest(&self, hash: &Hash160) -> Option<u64> {
        self.positions(hash).max()
    }

    pub fn contains(&self, hash: &Hash160) -> bool {
        self.positions(hash).next().is_some()
    }

    /// Forgets positions `>= len` (a chain reorganisation) and recomputes the tip.
    pub fn truncate(&mut self, len: u64) {
        if len >= self.len() {
            return;
        }
        self.hashes.truncate(len as usize);
        self.positions.retain(|p| u64::from(*p) < len);
        // Checkpoint k (the state after k * CHECKPOINT entries) was taken
        // when entry k * CHECKPOINT was pushed: keep those of kept entries.
        self.checkpoints.truncate(len.div_ceil(CHECKPOINT) as usize);
        let mut state = self.checkpoints.last().cloned().unwrap_or_default();
        let from = self.checkpoints.len().saturating_sub(1) * CHECKPOINT as usize;
        for h in &self.hashes[from..] {
            state.update(h.0);
        }
        self.digest = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash160 {
        Hash160([i; 20])
    }

    #[test]
    fn positions_duplicates_and_truncation() {
        let mut a = Announced::default();
        a.reserve(4);
        for x in [1, 2, 1, 3] {
            a.push(h(x));
        }
        let mut ones: Vec<u64> = a.positions(&h(1)).collect();
        ones.sort();
        assert_eq!(ones, vec![0, 2]);
        assert_eq!((a.first(&h(1)), a.newest(&h(1))), (Some(0), Some(2)));
        assert!(!a.contains(&h(9)));
        let tip_after_two = {
            let mut b = Announced::default();
            b.push(h(1));
            b.push(h(2));
            b.tip()
        };
        let mut both = [1u8; 40];
        both[20..].fill(2);
        assert_eq!(tip_after_two[..], Sha256::digest(both)[..20]);
        a.truncate(2);
        assert_eq!(a.positions(&h(1)).collect::<Vec<_>>(), vec![0]);
        assert!(!a.contains(&h(3)));
        assert_eq!(
            a.tip(),
            tip_after_two,
            "tip recomputed for the shorter list"
        );
        assert_eq!(a.get(1), Some(h(2)));
        assert_eq!(a.get(2), None);
    }

    #[test]
    fn the_digest_of_every_prefix_matches_the_tip_it_had() {
        let mut a = Announced::default();
        let mut tips = vec![a.tip()];
        for i in 0..700u32 {
            let mut b = [0u8; 20];
            b[..4].copy_from_slice(&i.to_be_bytes());
            a.push(Hash160(b));
            tips.push(a.tip());
        }
        for (len, tip) in tips.iter().enumerate() {
            assert_eq!(a.digest_at(len as u64), Some(*tip), "prefix {len}");
        }
        assert_eq!(a.digest_at(701), None);
        for cut in [600, 512, 300, 256, 1, 0] {
            a.truncate(cut);
            assert_eq!(a.tip(), tips[cut as usize], "tip after truncating to {cut}");
            for len in (0..=cut).step_by(7) {
                assert_eq!(a.digest_at(len), Some(tips[len as usize]));
            }
        }
        // And it grows again from the cut as it first did.
        for i in 0..300u32 {
            let mut b = [0u8; 20];
            b[..4].copy_from_slice(&i.to_be_bytes());
            a.push(Hash160(b));
        }
        assert_eq!(a.tip(), tips[300]);
        assert_eq!(a.digest_at(256), Some(tips[256]));
    }
}
