//! Inventories: which whitelist indices a node holds, as a sorted list of
//! disjoint half-open ranges. A node holding everything encodes as a single
//! range, a few bytes on the wire, instead of the original's n/8-byte bit vector.

use std::fmt;

/// Refuse absurd indices: no chain will announce 2^40 zone files, and the cap
/// keeps arithmetic on decoded input far from overflow.
pub const MAX_INDEX: u64 = 1 << 40;
/// Refuse inventories so fragmented that decoding them would be a memory attack.
pub const MAX_RANGES: usize = 1 << 20;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// Sorted, disjoint, non-adjacent `[start, end)` pairs.
    ranges: Vec<(u64, u64)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InventoryError {
    #[error("inventory encoding is truncated")]
    Truncated,
    #[error("inventory varint is too long")]
    VarintOverflow,
    #[error("inventory has {0} ranges, more than the {MAX_RANGES} allowed")]
    TooManyRanges(u64),
    #[error("inventory range is empty or reaches past index {MAX_INDEX}")]
    BadRange,
    #[error("inventory has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ranges.iter().map(|(a, b)| a..b))
            .finish()
    }
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The set `0..n`.
    pub fn full(n: u64) -> Self {
        let mut s = Self::new();
        s.insert_range(0, n);
        s
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of indices in the set.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    pub fn contains(&self, i: u64) -> bool {
        // First range whose end is beyond i.
        let pos = self.ranges.partition_point(|&(_, end)| end <= i);
        self.ranges.get(pos).is_some_and(|&(start, _)| start <= i)
    }

    pub fn insert(&mut self, i: u64) -> bool {
        if self.contains(i) {
            return false;
        }
        self.insert_range(i, i + 1);
        true
    }

    pub fn insert_range(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Ranges that touch or overlap [start, end) are merged into one.
        let lo = self.ranges.partition_point(|&(_, e)| e < start);
        let hi = self.ranges.partition_point(|&(s, _)| s <= end);
        if lo == hi {
            self.ranges.insert(lo, (start, end));
            return;
        }
        let new_start = start.min(self.ranges[lo].0);
        let new_end = end.max(self.ranges[hi - 1].1);
        self.ranges
            .splice(lo..hi, std::iter::once((new_start, new_end)));
    }

    pub fn remove(&mut self, i: u64) -> bool {
        let pos = self.ranges.partition_point(|&(_, end)| end <= i);
        let Some(&(start, end)) = self.ranges.get(pos) else {
            return false;
        };
        if start > i {
            return false;
        }
        match (start == i, end == i + 1) {
            (true, true) => {
                self.ranges.remove(pos);
            }
            (true, false) => self.ranges[pos].0 = i + 1,
            (false, true) => self.ranges[pos].1 = i,
            (false, false) => {
                self.ranges[pos].1 = i;
                self.ranges.insert(pos + 1, (i + 1, end));
            }
        }
        true
    }

    /// Drops every index `>= n`.
    pub fn truncate(&mut self, n: u64) {
        self.ranges.retain(|&(s, _)| s < n);
        if let Some(last) = self.ranges.last_mut() {
            last.1 = last.1.min(n);
        }
    }

    pub fn union_with(&mut self, other: &RangeSet) {
        for &(a, b) in &other.ranges {
            self.insert_range(a, b);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..b)
    }

    /// `self` minus `other`, range by range (one pass over both lists).
    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        let mut j = 0;
        for &(start, end) in &self.ranges {
            let mut from = start;
            while j < other.ranges.len() && other.ranges[j].1 <= from {
                j += 1;
            }
            let mut k = j;
            while from < end {
                match other.ranges.get(k) {
                    Some(&(os, oe)) if os < end => {
                        if os > from {
                            out.push((from, os));
                        }
                        from = from.max(oe);
                        k += 1;
                    }
                    _ => {
                        out.push((from, end));
                        break;
                    }
                }
            }
        }
        RangeSet { ranges: out }
    }

    /// Indices in `self` and not in `other` that are below `below`, highest
    /// first. Walks both range lists once, so a peer that holds much of what
    /// we already have costs a few steps, not one per index.
    pub fn difference_rev<'a>(
        &'a self,
        other: &'a RangeSet,
        below: u64,
    ) -> impl Iterator<Item = u64> + 'a {
        let mut i = self.ranges.partition_point(|&(s, _)| s < below);
        let mut hi = below;
        let mut j = other.ranges.len();
        std::iter::from_fn(move || {
            loop {
                let &(start, end) = self.ranges.get(i.checked_sub(1)?)?;
                hi = hi.min(end);
                if hi <= start {
                    i -= 1;
                    hi = u64::MAX;
                    continue;
                }
                let x = hi - 1;
                while j > 0 && other.ranges[j - 1].0 > x {
                    j -= 1;
                }
                if j > 0 && other.ranges[j - 1].1 > x {
                    hi = other.ranges[j - 1].0;
                    continue;
                }
                hi = x;
                return Some(x);
            }
        })
    }

    /// Varint encoding: range count, then per range the gap after the previous
    /// range's end and the range's length.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.ranges.len() * 4);
        put_varint(&mut out, self.ranges.len() as u64);
        let mut prev_end = 0;
        for &(a, b) in &self.ranges {
            put_varint(&mut out, a - prev_end);
            put_varint(&mut out, b - a);
            prev_end = b;
        }
        out
    }

    pub fn decode(mut bytes: &[u8]) -> Result<Self, InventoryError> {
        let n = get_varint(&mut bytes)?;
        if n > MAX_RANGES as u64 {
            return Err(InventoryError::TooManyRanges(n));
        }
        // Each range takes at least two bytes, so a short buffer cannot claim many.
        if n > bytes.len() as u64 / 2 {
            return Err(InventoryError::Truncated);
        }
        let mut ranges = Vec::with_capacity(n as usize);
        let mut prev_end = 0u64;
        for i in 0..n {
            let gap = get_varint(&mut bytes)?;
            let len = get_varint(&mut bytes)?;
            // Non-first ranges need a gap, or they would have been merged.
            if len == 0 || (i > 0 && gap == 0) {
                return Err(InventoryError::BadRange);
            }
            let start = prev_end
                .checked_add(gap)
                .filter(|s| *s < MAX_INDEX)
                .ok_or(InventoryError::BadRange)?;
            let end = start
                .checked_add(len)
                .filter(|e| *e <= MAX_INDEX)
                .ok_or(InventoryError::BadRange)?;
            ranges.push((start, end));
            prev_end = end;
        }
        if !bytes.is_empty() {
            return Err(InventoryError::TrailingBytes(bytes.len()));
        }
        Ok(RangeSet { ranges })
    }
}

impl FromIterator<u64> for RangeSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut s = RangeSet::new();
        for i in iter {
            s.insert(i);
        }
        s
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Result<u64, InventoryError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(InventoryError::Truncated)?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(InventoryError::VarintOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn full_inventory_is_a_few_bytes() {
        let s = RangeSet::full(1_000_000);
        assert_eq!(s.count(), 1_000_000);
        assert!(s.encode().len() <= 5, "{:?}", s.encode());
    }

    #[test]
    fn remove_splits_ranges() {
        let mut s = RangeSet::full(10);
        assert!(s.remove(5));
        assert!(!s.contains(5));
        assert_eq!(s.ranges(), &[(0, 5), (6, 10)]);
        assert!(s.remove(0));
        assert!(s.remove(9));
        assert_eq!(s.ranges(), &[(1, 5), (6, 9)]);
        s.truncate(3);
        assert_eq!(s.ranges(), &[(1, 3)]);
    }

    #[test]
    fn decode_rejects_garbage() {
        assert_eq!(RangeSet::decode(&[]), Err(InventoryError::Truncated));
        assert_eq!(RangeSet::decode(&[1, 0, 0]), Err(InventoryError::BadRange));
        assert_eq!(
            RangeSet::decode(&[0, 7]),
            Err(InventoryError::TrailingBytes(1))
        );
        assert_eq!(
            RangeSet::decode(&[0xff; 11]),
            Err(InventoryError::VarintOverflow)
        );
        // A claim of a million ranges in four bytes is refused before allocating.
        assert_eq!(
            RangeSet::decode(&[0x80, 0x80, 0x40, 1]),
            Err(InventoryError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn matches_a_btreeset_model(ops in proptest::collection::vec((0u8..3, 0u64..300), 0..200)) {
            let mut model = BTreeSet::new();
            let mut set = RangeSet::new();
            for (op, i) in ops {
                match op {
                    0 => { prop_assert_eq!(set.insert(i), model.insert(i)); }
                    1 => { prop_assert_eq!(set.remove(i), model.remove(&i)); }
                    _ => { set.insert_range(i, i + 7); model.extend(i..i + 7); }
                }
            }
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(set.count(), model.len() as u64);
            for w in set.ranges().windows(2) {
                prop_assert!(w[0].1 < w[1].0, "ranges must be disjoint and non-adjacent");
            }
        }

        #[test]
        fn difference_matches_a_model(
            a in proptest::collection::btree_set(0u64..200, 0..120),
            b in proptest::collection::btree_set(0u64..200, 0..120),
            below in 0u64..220,
        ) {
            let sa: RangeSet = a.iter().copied().collect();
            let sb: RangeSet = b.iter().copied().collect();
            let mut want: Vec<u64> = a.difference(&b).copied().filter(|x| *x < below).collect();
            want.reverse();
            prop_assert_eq!(sa.difference_rev(&sb, below).collect::<Vec<_>>(), want);
            let whole = sa.difference(&sb);
            prop_assert_eq!(whole.iter().collect::<Vec<_>>(), a.difference(&b).copied().collect::<Vec<_>>());
            for w in whole.ranges().windows(2) {
                prop_assert!(w[0].1 < w[1].0, "ranges must be disjoint and non-adjacent");
            }
        }

        #[test]
        fn encoding_round_trips(idx in proptest::collection::btree_set(0u64..100_000, 0..500)) {
            let set: RangeSet = idx.iter().copied().collect();
            let decoded = RangeSet::decode(&set.encode()).unwrap();
            prop_assert_eq!(decoded, set);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = RangeSet::decode(&bytes);
        }
    }
}
