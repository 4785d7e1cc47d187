//! The pending inbox's storage: uploads (and pushes) whose hash is not
//! announced yet, kept in redb until it is. What to evict when it is full is
//! the core's policy ([`atlas_core::inbox`]); this file only persists it.

use bytes::Bytes;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Result, Store, StoreError, verify};
use atlas_core::inbox::{InboxLedger, Refusal};
use atlas_core::zonefile::Hash160;

/// Hash -> (arrival sequence, source, bytes).
pub(super) const PENDING: TableDefinition<&[u8], (u64, &str, &[u8])> =
    TableDefinition::new("pending_v2");
/// Arrival sequence -> hash.
pub(super) const PENDING_ORDER: TableDefinition<u64, &[u8]> = TableDefinition::new("pending_order");
/// The inbox before sources were recorded: hash -> (sequence, bytes).
pub(super) const PENDING_V1: TableDefinition<&[u8], (u64, &[u8])> = TableDefinition::new("pending");

/// What happened to an upload offered to the pending inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stashed {
    Added,
    AlreadyThere,
}

impl Store {
    /// Moves an inbox from before sources were recorded into today's table.
    pub(super) fn migrate_inbox(txn: &redb::WriteTransaction) -> Result<()> {
        let old: Vec<(Vec<u8>, u64, Vec<u8>)> = match txn.open_table(PENDING_V1) {
            Ok(t) => t
                .iter()?
                .map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().0, v.value().1.to_vec())))
                .collect::<std::result::Result<_, _>>()?,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        {
            let mut pending = txn.open_table(PENDING)?;
            for (hash, seq, bytes) in &old {
                pending.insert(hash.as_slice(), (*seq, "unknown", bytes.as_slice()))?;
            }
        }
        txn.delete_table(PENDING_V1)?;
        Ok(())
    }

    pub(super) fn load_ledger(&self) -> Result<InboxLedger> {
        self.read(|txn| {
            let mut ledger = InboxLedger::new(self.inbox_limits);
            let t = txn.open_table(PENDING)?;
            let mut rows = Vec::with_capacity(t.len()? as usize);
            for r in t.iter()? {
                let (k, v) = r?;
                let (seq, source, bytes) = v.value();
                rows.push((
                    seq,
                    super::hash_from(k.value())?,
                    source.to_string(),
                    bytes.len(),
                ));
            }
            rows.sort();
            for (seq, hash, source, size) in rows {
                ledger.add(&source, seq, hash, size as u64);
            }
            Ok(ledger)
        })
    }

    /// Keeps an upload whose hash is not announced yet, making room as the
    /// module doc says. `source` names who sent it ("ip:…", "peer:…").
    pub fn stash_pending(&self, hash: &Hash160, bytes: &[u8], source: &str) -> Result<Stashed> {
        verify(hash, bytes)?;
        let size = bytes.len() as u64;
        let mut ledger = self.ledger.lock().expect("inbox lock");
        // The evictions are planned first; the ledger follows only once they are committed.
        let evict = match ledger.plan(hash, source, size) {
            Ok(evict) => evict,
            Err(Refusal::AlreadyThere) => return Ok(Stashed::AlreadyThere),
            Err(Refusal::TooLarge) => return Err(StoreError::TooLarge(bytes.len())),
        };
        let seq = ledger.next_seq();
        self.write(|txn| {
            let mut pending = txn.open_table(PENDING)?;
            let mut order = txn.open_table(PENDING_ORDER)?;
            for e in &evict {
                pending.remove(e.hash.0.as_slice())?;
                order.remove(e.seq)?;
            }
            pending.insert(hash.0.as_slice(), (seq, source, bytes))?;
            order.insert(seq, hash.0.as_slice())?;
            Ok(())
        })?;
        ledger.admit(&evict, source, seq, *hash, size);
        Ok(Stashed::Added)
    }

    /// The pending uploads among `hashes`, left in the inbox.
    pub fn pending_among(&self, hashes: &[Hash160]) -> Result<Vec<(Hash160, Bytes)>> {
        let wanted: Vec<Hash160> = {
            let ledger = self.ledger.lock().expect("inbox lock");
            hashes
                .iter()
                .filter(|h| ledger.contains(h))
                .copied()
                .collect()
        };
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|txn| {
            let pending = txn.open_table(PENDING)?;
            let mut out = Vec::new();
            for h in wanted {
                if let Some(v) = pending.get(h.0.as_slice())? {
                    out.push((h, Bytes::copy_from_slice(v.value().2)));
                }
            }
            Ok(out)
        })
    }

    /// Removes and returns the pending uploads among `hashes`.
    pub fn take_pending(&self, hashes: &[Hash160]) -> Result<Vec<(Hash160, Bytes)>> {
        let mut ledger = self.ledger.lock().expect("inbox lock");
        // Most announcements have no pending upload: they cost a lookup, not a commit.
        let wanted: Vec<&Hash160> = hashes.iter().filter(|h| ledger.contains(h)).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.write(|txn| {
            let mut out = Vec::new();
            let mut pending = txn.open_table(PENDING)?;
            let mut order = txn.open_table(PENDING_ORDER)?;
            for h in &wanted {
                let removed = pending.remove(h.0.as_slice())?.map(|v| {
                    let (seq, _, b) = v.value();
                    (seq, Bytes::copy_from_slice(b))
                });
                if let Some((seq, b)) = removed {
                    order.remove(seq)?;
                    out.push((**h, b));
                }
            }
            Ok(out)
        })?;
        for (h, _) in &out {
            ledger.remove(h);
        }
        Ok(out)
    }

    pub fn pending_count(&self) -> u64 {
        self.ledger.lock().expect("inbox lock").count() as u64
    }

    pub fn pending_bytes(&self) -> u64 {
        self.ledger.lock().expect("inbox lock").bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlas_core::inbox::InboxLimits;

    fn file(i: usize, size: usize) -> (Hash160, Vec<u8>) {
        let mut b = format!("$ORIGIN f{i}.id\n").into_bytes();
        b.resize(size.max(b.len()), b';');
        (Hash160::of(&b), b)
    }

    #[test]
    fn a_flood_evicts_its_own_uploads_not_others() {
        let dir = tempfile::tempdir().unwrap();
        let limits = InboxLimits {
            count: 10,
            bytes: 1 << 20,
        };
        let store = Store::open_with(&dir.path().join("a.redb"), limits).unwrap();
        let legit: Vec<_> = (0..3).map(|i| file(i, 500)).collect();
        for (h, b) in &legit {
            store.stash_pending(h, b, "ip:10.0.0.1").unwrap();
        }
        for i in 100..300 {
            let (h, b) = file(i, 300);
            assert_eq!(
                store.stash_pending(&h, &b, "ip:10.6.6.6").unwrap(),
                Stashed::Added
            );
        }
        assert_eq!(store.pending_count(), 10);
        let hashes: Vec<Hash160> = legit.iter().map(|(h, _)| *h).collect();
        assert_eq!(store.take_pending(&hashes).unwrap().len(), 3, "all kept");
        // Reopened, the inbox's accounting is rebuilt from the table.
        drop(store);
        let store = Store::open_with(&dir.path().join("a.redb"), limits).unwrap();
        assert_eq!(store.pending_count(), 7);
        assert_eq!(store.pending_bytes(), 7 * 300);
    }

    #[test]
    fn bytes_are_bounded_as_well_as_count() {
        let dir = tempfile::tempdir().unwrap();
        let limits = InboxLimits {
            count: 1_000,
            bytes: 10_000,
        };
        let store = Store::open_with(&dir.path().join("a.redb"), limits).unwrap();
        for i in 0..100 {
            let (h, b) = file(i, 1_000 + i);
            store
                .stash_pending(&h, &b, &format!("peer:{}", i % 3))
                .unwrap();
            assert!(store.pending_bytes() <= 10_000);
        }
        assert!(store.pending_count() >= 8);
        // The newest upload is kept.
        let (h, _) = file(99, 1_099);
        assert_eq!(store.take_pending(&[h]).unwrap().len(), 1);
    }

    #[test]
    fn an_inbox_from_before_sources_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.redb");
        let (h, b) = file(1, 200);
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(PENDING_V1)
                .unwrap()
                .insert(h.0.as_slice(), (7u64, b.as_slice()))
                .unwrap();
            txn.open_table(PENDING_ORDER)
                .unwrap()
                .insert(7u64, h.0.as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path, 10).unwrap();
        assert_eq!(store.pending_count(), 1);
        let taken = store.take_pending(&[h]).unwrap();
        assert_eq!(taken, vec![(h, Bytes::from(b))]);
    }
}
