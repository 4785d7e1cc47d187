//! Where the whitelist comes from. A source streams [`WhitelistUpdate`]s to
//! the node; the node persists them and feeds them to the core. Besides the
//! chain follower (`atlas_chain`), a node can read a file of hashes or keep a
//! list in memory (a node with no source, the devnet, tests).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use atlas_chain::ChainStore;
use atlas_core::zonefile::Hash160;

pub use atlas_chain::whitelist::{
    ChainState, ChainStatus, WhitelistSource, WhitelistUpdate, common_prefix, unix_now,
};

/// Something that can put hashes on the whitelist: the devnet's chain (it
/// mines BNS transactions) or an in-memory list. Behind `POST /v1/devnet/announce`.
pub trait Announcer: Send + Sync {
    /// Announces `hashes` and returns the whitelist length once they count.
    fn announce(&self, hashes: &[Hash160]) -> u64;
}

impl Announcer for MemoryWhitelist {
    fn announce(&self, hashes: &[Hash160]) -> u64 {
        MemoryWhitelist::announce(self, hashes)
    }
}

/// A whitelist in memory, shared by every node of a devnet.
#[derive(Clone)]
pub struct MemoryWhitelist {
    entries: Arc<Mutex<Vec<Hash160>>>,
    version: Arc<watch::Sender<u64>>,
}

impl Default for MemoryWhitelist {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryWhitelist {
    pub fn new() -> Self {
        MemoryWhitelist {
            entries: Arc::default(),
            version: Arc::new(watch::channel(0).0),
        }
    }

    /// Appends hashes and returns the new length.
    pub fn announce(&self, hashes: &[Hash160]) -> u64 {
        let len = {
            let mut e = self.entries.lock().expect("whitelist lock");
            e.extend_from_slice(hashes);
            e.len() as u64
        };
        self.version.send_replace(len);
        len
    }

    pub fn len(&self) -> u64 {
        self.entries.lock().expect("whitelist lock").len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Vec<Hash160> {
        self.entries.lock().expect("whitelist lock").clone()
    }
}

fn status(backend: &str, len: u64) -> ChainStatus {
    ChainStatus {
        state: ChainState::Following,
        last_error: None,
        network: "devnet".into(),
        backend: backend.into(),
        height: len,
        tip: String::new(),
        confirmed_height: len,
        consensus_hash: String::new(),
        halted: None,
        last_success_unix: unix_now(),
        failovers: 0,
        servers_dropped: 0,
    }
}

impl WhitelistSource for MemoryWhitelist {
    fn start(
        self: Box<Self>,
        _store: Arc<dyn ChainStore>,
        known: Vec<Hash160>,
        tx: mpsc::Sender<WhitelistUpdate>,
    ) {
        let mut rx = self.version.subscribe();
        tokio::spawn(async move {
            let truth = self.snapshot();
            let mut sent = common_prefix(&known, &truth);
            if sent < known.len()
                && tx
                    .send(WhitelistUpdate::RolledBack {
                        to_index: sent as u64,
                    })
                    .await
                    .is_err()
            {
                return;
            }
            loop {
                let all = self.snapshot();
                if all.len() > sent {
                    let update = WhitelistUpdate::Grew {
                        from_index: sent as u64,
                        hashes: all[sent..].to_vec(),
                    };
                    sent = all.len();
                    if tx.send(update).await.is_err()
                        || tx
                            .send(WhitelistUpdate::Chain(status("memory", sent as u64)))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A text file of hashes, one per line, in announcement order (`#` starts a
/// comment). Re-read when it changes, so an external indexer can append to it.
pub struct FileWhitelist {
    pub path: PathBuf,
    pub poll: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FileWhitelistError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {source}")]
    Parse {
        path: PathBuf,
        line: usize,
        source: atlas_core::zonefile::ParseHashError,
    },
}

impl FileWhitelist {
    pub fn read(&self) -> Result<Vec<Hash160>, FileWhitelistError> {
        let text =
            std::fs::read_to_string(&self.path).map_err(|source| FileWhitelistError::Io {
                path: self.path.clone(),
                source,
            })?;
        text.lines()
            .enumerate()
            .map(|(i, l)| (i, l.split('#').next().unwrap_or("").trim()))
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| {
                l.parse().map_err(|source| FileWhitelistError::Parse {
                    path: self.path.clone(),
                    line: i + 1,
                    source,
                })
            })
            .collect()
    }
}

impl WhitelistSource for FileWhitelist {
    fn start(
        self: Box<Self>,
        _store: Arc<dyn ChainStore>,
        known: Vec<Hash160>,
        tx: mpsc::Sender<WhitelistUpdate>,
    ) {
        tokio::spawn(async move {
            let mut have = known;
            // Read again only when the file changed: a million hashes are
            // 41 MB of text, and reading them every poll cost a worker
            // thread 0.1 s and ~60 MB of transient memory each time.
            let mut seen: Option<(std::time::SystemTime, u64)> = None;
            loop {
                let stamp = std::fs::metadata(&self.path)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                if stamp.is_none() || stamp != seen {
                    let source = FileWhitelist {
                        path: self.path.clone(),
                        poll: self.poll,
                    };
                    match tokio::task::spawn_blocking(move || source.read()).await {
                        Ok(Ok(truth)) => {
                            seen = stamp;
                            if truth != have {
                                let keep = common_prefix(&have, &truth);
                                let update = WhitelistUpdate::Grew {
                                    from_index: keep as u64,
                                    hashes: truth[keep..].to_vec(),
                                };
                                let len = truth.len() as u64;
                                have = truth;
                                if tx.send(update).await.is_err()
                                    || tx
                                        .send(WhitelistUpdate::Chain(status("file", len)))
                                        .await
                                        .is_err()
                                {
                                    return;
                                }
                            }
                        }
                        Ok(Err(e)) => tracing::warn!("whitelist file: {e}"),
                        Err(e) => tracing::warn!("whitelist file: reading it failed: {e}"),
                    }
                }
                tokio::time::sleep(self.poll).await;
                if tx.is_closed() {
                    return;
                }
            }
        });
    }
}
