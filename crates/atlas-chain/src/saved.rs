//! The follower's progress as it is saved and loaded, so a restart resumes
//! where it stopped instead of re-reading history: verified headers, the BNS
//! transactions it found (raw bytes, re-parsed on load), every transaction it
//! has already looked at, and the scripts it watches. Rows are opaque bytes
//! to the store; the follower owns their meaning. An identity (network,
//! start height, checkpoint) guards against loading progress made under
//! another configuration.

use std::collections::{BTreeMap, BTreeSet};

/// Where the follower's progress is kept: the node's redb store, or memory.
pub trait ChainStore: Send + Sync {
    /// The saved progress, if it was made under `identity`.
    fn load_chain(&self, identity: &[u8]) -> Result<Option<SavedChain>, ChainStoreError>;
    /// Applies `delta` (its truncation first) and records `identity`, at once.
    fn save_chain(&self, identity: &[u8], delta: &ChainDelta) -> Result<(), ChainStoreError>;
    /// Forgets all saved progress.
    fn clear_chain(&self) -> Result<(), ChainStoreError>;
}

/// A store's failure, as the follower reports it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChainStoreError(pub Box<dyn std::error::Error + Send + Sync>);

/// What the follower saved, in the store's terms.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SavedChain {
    /// Headers in height order, the first at `first_header_height`.
    pub first_header_height: u64,
    pub headers: Vec<Vec<u8>>,
    /// (height, position, sender script, raw transaction).
    pub ops: Vec<(u64, u64, Vec<u8>, Vec<u8>)>,
    pub seen: Vec<(Vec<u8>, u64)>,
    pub watched: Vec<Vec<u8>>,
}

/// Changes since the last save. `truncate_above` is applied first.
#[derive(Debug, Default, Clone)]
pub struct ChainDelta {
    pub truncate_above: Option<u64>,
    pub headers: Vec<(u64, Vec<u8>)>,
    pub ops: Vec<(u64, u64, Vec<u8>, Vec<u8>)>,
    pub seen: Vec<(Vec<u8>, u64)>,
    pub watched: Vec<Vec<u8>>,
}

impl ChainDelta {
    /// This delta followed by `later`, as one (to retry a failed save).
    pub fn merge(mut self, later: ChainDelta) -> ChainDelta {
        if let Some(t) = later.truncate_above {
            self.truncate_above = Some(self.truncate_above.map_or(t, |s| s.min(t)));
            self.headers.retain(|(h, _)| *h <= t);
            self.ops.retain(|(h, ..)| *h <= t);
            self.seen.retain(|(_, h)| *h <= t);
        }
        self.headers.extend(later.headers);
        self.ops.extend(later.ops);
        self.seen.extend(later.seen);
        self.watched.extend(later.watched);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.truncate_above.is_none()
            && self.headers.is_empty()
            && self.ops.is_empty()
            && self.seen.is_empty()
            && self.watched.is_empty()
    }
}

/// Progress kept in memory only (tests; a node that need not resume), with
/// the redb store's semantics: rows keyed as there, another identity's rows
/// dropped at the first save.
#[derive(Debug, Default)]
pub struct MemoryChainStore {
    rows: std::sync::Mutex<Option<Rows>>,
}

#[derive(Debug, Default)]
struct Rows {
    identity: Vec<u8>,
    headers: BTreeMap<u64, Vec<u8>>,
    ops: BTreeMap<(u64, u64), (Vec<u8>, Vec<u8>)>,
    seen: BTreeMap<Vec<u8>, u64>,
    watched: BTreeSet<Vec<u8>>,
}

impl ChainStore for MemoryChainStore {
    fn load_chain(&self, identity: &[u8]) -> Result<Option<SavedChain>, ChainStoreError> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = rows.as_ref().filter(|r| r.identity == identity) else {
            return Ok(None);
        };
        Ok(Some(SavedChain {
            first_header_height: r.headers.keys().next().copied().unwrap_or(0),
            headers: r.headers.values().cloned().collect(),
            ops: r
                .ops
                .iter()
                .map(|((h, p), (s, raw))| (*h, *p, s.clone(), raw.clone()))
                .collect(),
            seen: r.seen.iter().map(|(t, h)| (t.clone(), *h)).collect(),
            watched: r.watched.iter().cloned().collect(),
        }))
    }

    fn save_chain(&self, identity: &[u8], delta: &ChainDelta) -> Result<(), ChainStoreError> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rows.as_ref().is_none_or(|r| r.identity != identity) {
            *rows = Some(Rows {
                identity: identity.to_vec(),
                ..Rows::default()
            });
        }
        let r = rows.as_mut().expect("set above");
        if let Some(t) = delta.truncate_above {
            r.headers.retain(|h, _| *h <= t);
            r.ops.retain(|(h, _), _| *h <= t);
            r.seen.retain(|_, h| *h <= t);
        }
        r.headers.extend(delta.headers.iter().cloned());
        for (h, pos, sender, raw) in &delta.ops {
            r.ops.insert((*h, *pos), (sender.clone(), raw.clone()));
        }
        r.seen.extend(delta.seen.iter().cloned());
        r.watched.extend(delta.watched.iter().cloned());
        Ok(())
    }

    fn clear_chain(&self) -> Result<(), ChainStoreError> {
        *self.rows.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
}
