//! Persistent state in one redb file: the whitelist, zone files, the pending
//! inbox and the peer table. Every zone file is hash-checked before it is
//! written; batches of files share one durable commit.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

use atlas_core::zonefile::{Hash160, MAX_ZONEFILE_BYTES};

mod chain;
mod health;
mod inbox;
pub use atlas_chain::{ChainDelta, SavedChain};
use atlas_core::inbox::InboxLedger;
pub use atlas_core::inbox::InboxLimits;
pub use health::{StoreHealth, StoreState};
pub use inbox::Stashed;
use inbox::{PENDING, PENDING_ORDER};

/// Whitelist index -> zone-file hash, in chain order.
const ANNOUNCEMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("announcements");
/// Zone-file hash -> every whitelist index that announces it.
const HASH_INDICES: MultimapTableDefinition<&[u8], u64> =
    MultimapTableDefinition::new("hash_indices");
/// Zone-file hash -> the exact bytes.
const ZONEFILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("zonefiles");
/// Zone-file hash -> nothing: the keys of `ZONEFILES` alone, written in the
/// same transactions. Listing what is held at start-up reads these ~30 MB of
/// pages instead of every file's page (6 s from a cold page cache at a
/// million files).
const HELD: TableDefinition<&[u8], ()> = TableDefinition::new("held");
/// Peer id -> newline-separated multiaddrs.
const PEERS: TableDefinition<&[u8], &str> = TableDefinition::new("peers");

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] redb::DatabaseError),
    #[error("transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("table: {0}")]
    Table(#[from] redb::TableError),
    #[error("storage: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("commit: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("zone file bytes hash to {actual}, not {expected}")]
    HashMismatch { expected: Hash160, actual: Hash160 },
    #[error("zone file is {0} bytes, over the {MAX_ZONEFILE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "cannot open {path}: {reason}. If the file is damaged, stop the node, move it aside \
         (mv {path} {path}.damaged) and start again: the whitelist is rebuilt from the chain \
         (or `atlas reindex` first) or the whitelist file, and zone files are fetched again from peers"
    )]
    Damaged { path: String, reason: String },
    #[error(
        "cannot open {path}: it is in use by another process (another atlas node with the same \
         data_dir?)"
    )]
    InUse { path: String },
    #[error("the database is closed after an error and could not be reopened yet: {0}")]
    Unavailable(String),
    #[error("the store is degraded ({last_error}); next write attempt in {retry_in:.1?}")]
    Degraded {
        last_error: String,
        out_of_space: bool,
        retry_in: std::time::Duration,
    },
}

impl StoreError {
    /// Whether the error is the store's (disk, database) rather than the input's.
    fn is_fault(&self) -> bool {
        !matches!(
            self,
            StoreError::HashMismatch { .. } | StoreError::TooLarge(_) | StoreError::Degraded { .. }
        )
    }

    /// Whether the disk is full (or the file may not grow): the API answers 507.
    pub fn is_out_of_space(&self) -> bool {
        let io = match self {
            StoreError::Degraded { out_of_space, .. } => return *out_of_space,
            StoreError::Storage(redb::StorageError::Io(e))
            | StoreError::Commit(redb::CommitError::Storage(redb::StorageError::Io(e)))
            | StoreError::Transaction(redb::TransactionError::Storage(redb::StorageError::Io(e)))
            | StoreError::Table(redb::TableError::Storage(redb::StorageError::Io(e))) => e,
            StoreError::Database(redb::DatabaseError::Storage(redb::StorageError::Io(e))) => e,
            _ => return false,
        };
        matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::FileTooLarge
                | std::io::ErrorKind::QuotaExceeded
        )
    }
}

/// Start-up's whole-table reads run in this many ranges at once, within one
/// read transaction: from a cold page cache (after a reboot) the disk then
/// has several page reads outstanding instead of one.
const READ_SPLIT: usize = 4;

/// `read` applied to every item on its own thread; the results in order.
fn in_parallel<I, T>(items: I, read: impl Fn(I::Item) -> Result<T> + Sync) -> Result<Vec<T>>
where
    I: IntoIterator,
    I::Item: Send,
    T: Send,
{
    std::thread::scope(|s| {
        let read = &read;
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| s.spawn(move || read(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// redb's page cache.
const STORE_CACHE_BYTES: usize = 64 << 20;

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    path: PathBuf,
    /// `None` only between a failed reopen and the next one. Every operation
    /// holds the read lock for its whole transaction, so a reopen (write lock)
    /// never closes the file under one.
    db: RwLock<Option<Database>>,
    health: Mutex<health::Health>,
    /// Zone files whose bytes on disk no longer match their hash, waiting to
    /// be dropped by `drop_corrupt` (reads only report them).
    corrupt: Mutex<Vec<Hash160>>,
    inbox_limits: InboxLimits,
    ledger: Mutex<InboxLedger>,
}

fn verify(hash: &Hash160, bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_ZONEFILE_BYTES {
        return Err(StoreError::TooLarge(bytes.len()));
    }
    let actual = Hash160::of(bytes);
    if actual != *hash {
        return Err(StoreError::HashMismatch {
            expected: *hash,
            actual,
        });
    }
    Ok(())
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

fn hash_from(bytes: &[u8]) -> Result<Hash160> {
    Hash160::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Opens (or creates) the database, creating missing tables so that reads
    /// never fail on a fresh file.
    pub fn open(path: &Path, pending_capacity: usize) -> Result<Self> {
        Self::open_with(
            path,
            InboxLimits {
                count: pending_capacity,
                ..InboxLimits::default()
            },
        )
    }

    /// Opens (or creates) the database with the pending inbox's bounds.
    pub fn open_with(path: &Path, inbox_limits: InboxLimits) -> Result<Self> {
        let shown = path.display().to_string();
        // redb can panic on a damaged file (a slice out of bounds on a bad
        // page); the operator needs the file's name and the way out instead.
        let db = match std::panic::catch_unwind(|| Self::open_db(path)) {
            Ok(Ok(db)) => db,
            Ok(Err(StoreError::Database(redb::DatabaseError::DatabaseAlreadyOpen))) => {
                return Err(StoreError::InUse { path: shown });
            }
            Ok(Err(
                e @ (StoreError::Database(_) | StoreError::Storage(_) | StoreError::Corrupt(_)),
            )) if !e.is_out_of_space() => {
                return Err(StoreError::Damaged {
                    path: shown,
                    reason: e.to_string(),
                });
            }
            Ok(Err(e)) => return Err(e),
            Err(panic) => {
                return Err(StoreError::Damaged {
                    path: shown,
                    reason: format!("redb failed reading it ({})", panic_text(&*panic)),
                });
            }
        };
        let store = Store {
            path: path.to_path_buf(),
            db: RwLock::new(Some(db)),
            health: Mutex::new(health::Health::default()),
            corrupt: Mutex::new(Vec::new()),
            inbox_limits,
            ledger: Mutex::new(InboxLedger::new(inbox_limits)),
        };
        *store.ledger.lock().expect("inbox lock") = store.load_ledger()?;
        Ok(store)
    }

    fn open_db(path: &Path) -> Result<Database> {
        // redb's default page cache is 1 GiB; the OS caches the file anyway,
        // and a node's memory should stay flat however much it stores.
        let db = Database::builder()
            .set_cache_size(STORE_CACHE_BYTES)
            .create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(ANNOUNCEMENTS)?;
        txn.open_multimap_table(HASH_INDICES)?;
        txn.open_table(ZONEFILES)?;
        Self::index_held(&txn)?;
        txn.open_table(PENDING)?;
        txn.open_table(PENDING_ORDER)?;
        txn.open_table(PEERS)?;
        Self::migrate_inbox(&txn)?;
        txn.commit()?;
        Ok(db)
    }

    /// Rebuilds `HELD` from `ZONEFILES` when their sizes differ: the first
    /// start after the upgrade that added it, or after an older version wrote
    /// files without listing them. Both lengths are kept in the tables'
    /// headers, so the check costs nothing.
    fn index_held(txn: &redb::WriteTransaction) -> Result<()> {
        let files = txn.open_table(ZONEFILES)?;
        let mut held = txn.open_table(HELD)?;
        let (count, listed) = (files.len()?, held.len()?);
        if count == listed {
            return Ok(());
        }
        let started = std::time::Instant::now();
        held.retain(|_, _| false)?;
        for row in files.iter()? {
            let (k, _) = row?;
            held.insert(k.value(), ())?;
        }
        tracing::info!(
            files = count,
            listed_before = listed,
            elapsed = ?started.elapsed(),
            "indexed the zone files held (once, after an upgrade)"
        );
        Ok(())
    }

    pub fn health(&self) -> StoreHealth {
        self.health.lock().expect("store health lock").snapshot()
    }

    /// Runs one operation on the database and records how it went. After a
    /// failure the database is reopened at once, so reads go on; writes are
    /// refused until the retry time, then tried again.
    fn run<T>(&self, writes: bool, op: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let path = self.path.display().to_string();
        if writes && let Err(r) = self.health.lock().expect("store health lock").may_write() {
            return Err(StoreError::Degraded {
                last_error: r.last_error,
                out_of_space: r.out_of_space,
                retry_in: r.retry_in,
            });
        }
        let result = {
            let slot = self.db.read().expect("store lock");
            match slot.as_ref() {
                // A panic inside redb (a damaged page) fails this operation,
                // not the node; the database is reopened like after an I/O error.
                Some(db) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(db)))
                    .unwrap_or_else(|panic| {
                        Err(StoreError::Corrupt(format!(
                            "redb failed on a damaged page ({})",
                            panic_text(&*panic)
                        )))
                    }),
                None => Err(StoreError::Unavailable(
                    self.health().last_error.unwrap_or_default(),
                )),
            }
        };
        match &result {
            Err(e) if e.is_fault() => {
                if !matches!(e, StoreError::Unavailable(_)) {
                    self.health.lock().expect("store health lock").failed(
                        &path,
                        &e.to_string(),
                        e.is_out_of_space(),
                    );
                }
                self.reopen(&path);
            }
            Ok(_) if writes => self.health.lock().expect("store health lock").wrote(&path),
            _ => {}
        }
        result
    }

    /// Closes and opens the database again: redb refuses everything after an
    /// I/O error until then.
    fn reopen(&self, path: &str) {
        let mut slot = self.db.write().expect("store lock");
        // The old handle must be closed before the file can be opened again.
        slot.take();
        match Self::open_db(&self.path) {
            Ok(db) => *slot = Some(db),
            Err(e) => tracing::debug!("reopening store {path}: {e}"),
        }
    }

    fn read<T>(&self, op: impl FnOnce(&redb::ReadTransaction) -> Result<T>) -> Result<T> {
        self.run(false, |db| op(&db.begin_read()?))
    }

    fn write<T>(&self, op: impl FnOnce(&redb::WriteTransaction) -> Result<T>) -> Result<T> {
        self.run(true, |db| {
            let txn = db.begin_write()?;
            let out = op(&txn)?;
            txn.commit()?;
            Ok(out)
        })
    }

    /// The whole whitelist, in order.
    pub fn announcements(&self) -> Result<Vec<Hash160>> {
        self.read(|txn| {
            let t = txn.open_table(ANNOUNCEMENTS)?;
            let len = t.len()?;
            // Allocated here and filled in place: memory a reading thread
            // allocated would stay in its malloc arena after the thread ends
            // (40 MB more resident at a million entries).
            let mut out = vec![Hash160([0; 20]); len as usize];
            let per_part = (len as usize).div_ceil(READ_SPLIT).max(1);
            in_parallel(out.chunks_mut(per_part).enumerate(), |(i, part)| {
                let from = (i * per_part) as u64;
                let to = from + part.len() as u64;
                let mut filled = 0;
                for ((expected, row), slot) in (from..).zip(t.range(from..to)?).zip(part.iter_mut())
                {
                    let (k, v) = row?;
                    if k.value() != expected {
                        return Err(StoreError::Corrupt(format!(
                            "announcement index {} where {expected} was expected",
                            k.value()
                        )));
                    }
                    *slot = hash_from(v.value())?;
                    filled += 1;
                }
                if filled != part.len() {
                    return Err(StoreError::Corrupt(format!(
                        "{filled} announcements in {from}..{to}"
                    )));
                }
                Ok(())
            })?;
            Ok(out)
        })
    }

    /// Writes whitelist entries `from..`, first dropping any at or past `from`.
    pub fn set_announcements(&self, from: u64, hashes: &[Hash160]) -> Result<()> {
        self.write(|txn| {
            let mut ann = txn.open_table(ANNOUNCEMENTS)?;
            let mut idx = txn.open_multimap_table(HASH_INDICES)?;
            let stale: Vec<(u64, Vec<u8>)> = ann
                .range(from..)?
                .map(|r| r.map(|(k, v)| (k.value(), v.value().to_vec())))
                .collect::<std::result::Result<_, _>>()?;
            for (i, h) in stale {
                ann.remove(i)?;
                idx.remove(h.as_slice(), i)?;
            }
            for (off, h) in hashes.iter().enumerate() {
                let i = from + off as u64;
                ann.insert(i, h.0.as_slice())?;
                idx.insert(h.0.as_slice(), i)?;
            }
            Ok(())
        })
    }

    /// Stores verified zone files in one commit. Fails whole if any file's
    /// bytes do not hash to its key, so nothing unverified is ever written.
    pub fn put_zonefiles(&self, files: &[(Hash160, Bytes)]) -> Result<()> {
        for (h, b) in files {
            verify(h, b)?;
        }
        self.write(|txn| {
            let mut t = txn.open_table(ZONEFILES)?;
            let mut held = txn.open_table(HELD)?;
            for (h, b) in files {
                t.insert(h.0.as_slice(), b.as_ref())?;
                held.insert(h.0.as_slice(), ())?;
            }
            Ok(())
        })
    }

    /// The file's bytes, checked against its hash: bytes that fail (a flipped
    /// bit on disk) are never returned; the file is reported for `drop_corrupt`.
    pub fn get_zonefile(&self, hash: &Hash160) -> Result<Option<Bytes>> {
        let bytes = self.read(|txn| {
            let t = txn.open_table(ZONEFILES)?;
            Ok(t.get(hash.0.as_slice())?
                .map(|v| Bytes::copy_from_slice(v.value())))
        })?;
        Ok(bytes.filter(|b| self.intact(hash, b)))
    }

    /// Whether `bytes` still hash to `hash`; reports them if not.
    fn intact(&self, hash: &Hash160, bytes: &[u8]) -> bool {
        let actual = Hash160::of(bytes);
        if actual == *hash {
            return true;
        }
        let mut corrupt = self.corrupt.lock().expect("store corrupt lock");
        if !corrupt.contains(hash) {
            corrupt.push(*hash);
            self.health
                .lock()
                .expect("store health lock")
                .found_corrupt();
            tracing::error!(
                "zone file {hash} in {} is corrupt on disk (its bytes hash to {actual}); it is \
                 dropped and fetched again from peers",
                self.path.display()
            );
        }
        false
    }

    /// Deletes the files found corrupt since the last call; returns those
    /// deleted, for the node to fetch again.
    pub fn drop_corrupt(&self) -> Result<Vec<Hash160>> {
        let found = std::mem::take(&mut *self.corrupt.lock().expect("store corrupt lock"));
        if found.is_empty() {
            return Ok(found);
        }
        let dropped = self.write(|txn| {
            let mut t = txn.open_table(ZONEFILES)?;
            let mut held = txn.open_table(HELD)?;
            let mut dropped = Vec::new();
            for h in &found {
                // Only if still corrupt: a good copy may have been written since.
                let bad = t
                    .get(h.0.as_slice())?
                    .is_some_and(|v| Hash160::of(v.value()) != *h);
                if bad {
                    t.remove(h.0.as_slice())?;
                    held.remove(h.0.as_slice())?;
                    dropped.push(*h);
                }
            }
            Ok(dropped)
        });
        if dropped.is_err() {
            // Try again next time.
            self.corrupt
                .lock()
                .expect("store corrupt lock")
                .extend(found);
        }
        dropped
    }

    pub fn has_zonefile(&self, hash: &Hash160) -> Result<bool> {
        self.read(|txn| {
            let t = txn.open_table(HELD)?;
            Ok(t.get(hash.0.as_slice())?.is_some())
        })
    }

    /// Those of `hashes` the store holds, in one read.
    pub fn held_among(&self, hashes: &[Hash160]) -> Result<Vec<Hash160>> {
        self.read(|txn| {
            let t = txn.open_table(HELD)?;
            let mut held = Vec::new();
            for h in hashes {
                if t.get(h.0.as_slice())?.is_some() {
                    held.push(*h);
                }
            }
            Ok(held)
        })
    }

    /// Reads files for a peer, stopping before `budget` bytes: the caller
    /// learns which hashes we lack (`missing`) and which were left out.
    pub fn get_zonefiles(
        &self,
        hashes: &[Hash160],
        budget: usize,
    ) -> Result<(Vec<Bytes>, Vec<Hash160>)> {
        self.read(|txn| {
            let t = txn.open_table(ZONEFILES)?;
            atlas_core::serve_within_budget(hashes, budget, |h| {
                Ok(match t.get(h.0.as_slice())? {
                    Some(v) if self.intact(h, v.value()) => Some(Bytes::copy_from_slice(v.value())),
                    _ => None,
                })
            })
        })
    }

    /// Every zone file held, in hash order.
    pub fn held_hashes(&self) -> Result<Vec<Hash160>> {
        self.read(|txn| {
            let t = txn.open_table(HELD)?;
            let len = t.len()? as usize;
            // Split by the hash's first byte: hashes are uniform. Each part
            // is allocated here (see `announcements`); untouched capacity
            // is never resident.
            let firsts: Vec<u8> = (0..READ_SPLIT)
                .map(|i| (i * 256 / READ_SPLIT) as u8)
                .collect();
            let parts: Vec<Vec<Hash160>> =
                (0..READ_SPLIT).map(|_| Vec::with_capacity(len)).collect();
            let parts = in_parallel(parts.into_iter().enumerate(), |(i, mut part)| {
                let from = [firsts[i]];
                let rows = match firsts.get(i + 1) {
                    Some(to) => t.range::<&[u8]>(from.as_slice()..[*to].as_slice())?,
                    None => t.range::<&[u8]>(from.as_slice()..)?,
                };
                for row in rows {
                    part.push(hash_from(row?.0.value())?);
                }
                Ok(part)
            })?;
            let mut out = Vec::with_capacity(len);
            for part in parts {
                out.extend_from_slice(&part);
            }
            Ok(out)
        })
    }

    pub fn zonefile_count(&self) -> Result<u64> {
        self.read(|txn| Ok(txn.open_table(HELD)?.len()?))
    }

    pub fn save_peers(&self, peers: &[(PeerId, Vec<Multiaddr>)]) -> Result<()> {
        self.write(|txn| {
            let mut t = txn.open_table(PEERS)?;
            t.retain(|_, _| false)?;
            for (p, addrs) in peers {
                let joined = addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                t.insert(p.to_bytes().as_slice(), joined.as_str())?;
            }
            Ok(())
        })
    }

    /// Remembered peers; unreadable rows are skipped (they are only hints).
    pub fn load_peers(&self) -> Result<Vec<(PeerId, Vec<Multiaddr>)>> {
        self.read(|txn| {
            let t = txn.open_table(PEERS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                let Ok(peer) = PeerId::from_bytes(k.value()) else {
                    continue;
                };
                let addrs = v.value().lines().filter_map(|l| l.parse().ok()).collect();
                out.push((peer, addrs));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests;
