//! The chain follower's progress in redb (`atlas_chain::ChainStore`). The
//! name state is not stored: it is a pure function of these rows and is
//! rebuilt in memory on load. Rows are opaque bytes here; `atlas_chain`
//! owns their meaning.

use redb::{ReadableTable, TableDefinition};

use atlas_chain::{ChainDelta, ChainStore, ChainStoreError, SavedChain};

use super::{Result, Store, StoreError};

/// "identity" -> what the rows below were made under.
const CHAIN_META: TableDefinition<&str, &[u8]> = TableDefinition::new("chain_meta");
/// Height -> 80-byte header, from the checkpoint up.
const CHAIN_HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("chain_headers");
/// (height, position in block) -> (sender script, raw transaction).
type OpsTable = TableDefinition<'static, (u64, u64), (&'static [u8], &'static [u8])>;
const CHAIN_OPS: OpsTable = TableDefinition::new("chain_ops");
/// Txid -> height: transactions already examined (BNS or not).
const CHAIN_SEEN: TableDefinition<&[u8], u64> = TableDefinition::new("chain_seen");
/// Scripts whose histories are walked.
const CHAIN_WATCHED: TableDefinition<&[u8], ()> = TableDefinition::new("chain_watched");

impl Store {
    /// The saved progress, if it was made under `identity`.
    pub fn load_chain(&self, identity: &[u8]) -> Result<Option<SavedChain>> {
        self.read(|txn| Self::load_chain_in(txn, identity))
    }

    fn load_chain_in(txn: &redb::ReadTransaction, identity: &[u8]) -> Result<Option<SavedChain>> {
        let meta = match txn.open_table(CHAIN_META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if meta.get("identity")?.map(|v| v.value().to_vec()) != Some(identity.to_vec()) {
            return Ok(None);
        }
        let mut saved = SavedChain::default();
        let headers = txn.open_table(CHAIN_HEADERS)?;
        for (i, row) in headers.iter()?.enumerate() {
            let (k, v) = row?;
            if i == 0 {
                saved.first_header_height = k.value();
            } else if k.value() != saved.first_header_height + i as u64 {
                return Err(StoreError::Corrupt(format!(
                    "chain header at height {} breaks the sequence",
                    k.value()
                )));
            }
            saved.headers.push(v.value().to_vec());
        }
        for row in txn.open_table(CHAIN_OPS)?.iter()? {
            let (k, v) = row?;
            let (h, pos) = k.value();
            let (sender, raw) = v.value();
            saved.ops.push((h, pos, sender.to_vec(), raw.to_vec()));
        }
        for row in txn.open_table(CHAIN_SEEN)?.iter()? {
            let (k, v) = row?;
            saved.seen.push((k.value().to_vec(), v.value()));
        }
        for row in txn.open_table(CHAIN_WATCHED)?.iter()? {
            saved.watched.push(row?.0.value().to_vec());
        }
        Ok(Some(saved))
    }

    /// Applies a delta in one commit. A different `identity` from the saved
    /// one wipes the old progress first.
    pub fn save_chain(&self, identity: &[u8], delta: &ChainDelta) -> Result<()> {
        self.write(|txn| {
            let mut meta = txn.open_table(CHAIN_META)?;
            let mut headers = txn.open_table(CHAIN_HEADERS)?;
            let mut ops = txn.open_table(CHAIN_OPS)?;
            let mut seen = txn.open_table(CHAIN_SEEN)?;
            let mut watched = txn.open_table(CHAIN_WATCHED)?;
            if meta.get("identity")?.map(|v| v.value().to_vec()) != Some(identity.to_vec()) {
                headers.retain(|_, _| false)?;
                ops.retain(|_, _| false)?;
                seen.retain(|_, _| false)?;
                watched.retain(|_, _| false)?;
                meta.insert("identity", identity)?;
            }
            if let Some(h) = delta.truncate_above {
                headers.retain(|k, _| k <= h)?;
                ops.retain(|(k, _), _| k <= h)?;
                seen.retain(|_, v| v <= h)?;
            }
            for (h, bytes) in &delta.headers {
                headers.insert(*h, bytes.as_slice())?;
            }
            for (h, pos, sender, raw) in &delta.ops {
                ops.insert((*h, *pos), (sender.as_slice(), raw.as_slice()))?;
            }
            for (txid, h) in &delta.seen {
                seen.insert(txid.as_slice(), *h)?;
            }
            for script in &delta.watched {
                watched.insert(script.as_slice(), ())?;
            }
            Ok(())
        })
    }

    /// Forgets the follower's progress (`atlas reindex`).
    pub fn clear_chain(&self) -> Result<()> {
        self.write(|txn| {
            txn.open_table(CHAIN_META)?.retain(|_, _| false)?;
            txn.open_table(CHAIN_HEADERS)?.retain(|_, _| false)?;
            txn.open_table(CHAIN_OPS)?.retain(|_, _| false)?;
            txn.open_table(CHAIN_SEEN)?.retain(|_, _| false)?;
            txn.open_table(CHAIN_WATCHED)?.retain(|_, _| false)?;
            Ok(())
        })
    }
}

impl ChainStore for Store {
    fn load_chain(
        &self,
        identity: &[u8],
    ) -> std::result::Result<Option<SavedChain>, ChainStoreError> {
        Store::load_chain(self, identity).map_err(|e| ChainStoreError(Box::new(e)))
    }

    fn save_chain(
        &self,
        identity: &[u8],
        delta: &ChainDelta,
    ) -> std::result::Result<(), ChainStoreError> {
        Store::save_chain(self, identity, delta).map_err(|e| ChainStoreError(Box::new(e)))
    }

    fn clear_chain(&self) -> std::result::Result<(), ChainStoreError> {
        Store::clear_chain(self).map_err(|e| ChainStoreError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_accumulate_truncate_and_respect_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atlas.redb");
        let store = Store::open(&path, 1).unwrap();
        assert_eq!(store.load_chain(b"a").unwrap(), None);
        let delta = ChainDelta {
            truncate_above: None,
            headers: (0..5).map(|h| (h, vec![h as u8; 80])).collect(),
            ops: vec![(2, 1, b"s".to_vec(), b"tx2".to_vec())],
            seen: vec![(vec![1; 32], 2), (vec![2; 32], 4)],
            watched: vec![b"s".to_vec()],
        };
        store.save_chain(b"a", &delta).unwrap();
        let rewind = ChainDelta {
            truncate_above: Some(1),
            headers: vec![(2, vec![9; 80])],
            ..Default::default()
        };
        store.save_chain(b"a", &rewind).unwrap();
        drop(store);
        let store = Store::open(&path, 1).unwrap();
        let saved = store.load_chain(b"a").unwrap().unwrap();
        assert_eq!(saved.first_header_height, 0);
        assert_eq!(saved.headers, vec![vec![0; 80], vec![1; 80], vec![9; 80]]);
        assert!(saved.ops.is_empty(), "the op above the fork went");
        assert!(saved.seen.is_empty());
        assert_eq!(saved.watched, vec![b"s".to_vec()], "scripts stay watched");
        assert_eq!(store.load_chain(b"b").unwrap(), None, "other identity");
        store.save_chain(b"b", &ChainDelta::default()).unwrap();
        assert_eq!(store.load_chain(b"b").unwrap(), Some(SavedChain::default()));
        store.clear_chain().unwrap();
        assert_eq!(store.load_chain(b"b").unwrap(), None);
    }
}
