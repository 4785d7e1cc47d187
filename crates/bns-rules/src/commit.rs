//! What an accepted operation changes, decided by its check and applied by
//! the engine: rows written, the preorder consumed, tokens moved, and the
//! consensus record the original hashes for it.

use super::py2::PyValue;
use super::state::{Db, HistoryEntry, NameRec, NamespaceRec, PreorderRec};

/// The effects of one accepted operation.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub preorder_insert: Option<PreorderRec>,
    pub preorder_remove: Option<String>,
    pub name: Option<NameRec>,
    /// Appended to the name's history (a registration adds its preorder too).
    pub history: Vec<HistoryEntry>,
    pub namespace: Option<NamespaceRec>,
    /// (address, token type, amount)
    pub debit: Option<(String, String, i128)>,
    pub credit: Option<(String, String, i128)>,
    /// The consensus record: the opcode's fields, in order.
    pub record: Vec<PyValue>,
    /// The zone-file hash this operation puts in the Atlas inventory.
    pub announces: Option<String>,
    /// For the per-block quota count: a registration's new owner.
    pub registers_to: Option<String>,
    /// The original accepts the operation but then fails to write it and
    /// aborts (`engine::Halt`).
    pub aborts: Option<&'static str>,
}

impl Commit {
    pub fn apply(self, db: &mut Db) {
        if let Some(p) = self.preorder_insert {
            // The original keys preorder rows by (hash, block, txid): a hash
            // preordered again while a name carrying it is unexpired gets a
            // row of its own, every lookup by hash reads the oldest
            // (`namedb_get_name_preorder`'s fetchone, db.py:3277-3283), and
            // a registration deletes them all. Keeping the first is the same.
            db.preorders.entry(p.preorder_hash.clone()).or_insert(p);
        }
        if let Some(h) = self.preorder_remove {
            db.preorders.remove(&h);
        }
        if let Some(n) = self.name {
            db.history
                .entry(n.name.clone())
                .or_default()
                .extend(self.history);
            db.put_name(n);
        }
        if let Some(ns) = self.namespace {
            db.namespaces.insert(ns.namespace_id.clone(), ns);
        }
        if let Some((addr, ty, amount)) = self.debit {
            db.debit(&addr, &ty, amount);
        }
        if let Some((addr, ty, amount)) = self.credit {
            db.credit(&addr, &ty, amount);
        }
    }
}

/// Why the original refused an operation (its log line, shortened).
pub type Reject = &'static str;
