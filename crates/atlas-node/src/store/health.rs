//! The store's health: whether its writes go through, the last error, and
//! when to try writing again after a failure.
//!
//! After an I/O error redb refuses every later transaction, reads included
//! ("Previous I/O error occurred"), until the database is closed and opened
//! again; a full disk that was then cleared kept the node from writing until
//! a restart, and from serving what it held. So the store reopens the
//! database right after a failure (reads go on), refuses writes up front for
//! a while (1 s, doubling to 10 s) rather than failing each one on the disk,
//! then tries again, and logs once per change of state.

use std::time::{Duration, Instant};

use serde::Serialize;

const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(10);

/// The store's state, as `/v1/status` spells it.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreState {
    #[default]
    Ok,
    /// From a failed operation until a write succeeds.
    Degraded,
}

/// What `/v1/status` shows of the store.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct StoreHealth {
    pub state: StoreState,
    pub last_error: Option<String>,
    /// Failed operations since start (writes refused while degraded not counted).
    pub errors: u64,
    /// Zone files found corrupt on disk (and dropped to be fetched again) since start.
    pub corrupt_files: u64,
}

#[derive(Debug)]
pub(super) struct Health {
    degraded: bool,
    last_error: Option<String>,
    out_of_space: bool,
    errors: u64,
    corrupt_files: u64,
    next_write: Instant,
    retry_wait: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            degraded: false,
            last_error: None,
            out_of_space: false,
            errors: 0,
            corrupt_files: 0,
            next_write: Instant::now(),
            retry_wait: RETRY_FIRST,
        }
    }
}

/// Why a write was not tried: the store failed a moment ago.
pub(super) struct Refusal {
    pub last_error: String,
    pub out_of_space: bool,
    pub retry_in: Duration,
}

impl Health {
    pub(super) fn snapshot(&self) -> StoreHealth {
        StoreHealth {
            state: if self.degraded {
                StoreState::Degraded
            } else {
                StoreState::Ok
            },
            last_error: self.last_error.clone(),
            errors: self.errors,
            corrupt_files: self.corrupt_files,
        }
    }

    pub(super) fn found_corrupt(&mut self) {
        self.corrupt_files += 1;
    }

    /// `Err` while writes are held back after a failure.
    pub(super) fn may_write(&self) -> Result<(), Refusal> {
        let now = Instant::now();
        if !self.degraded || now >= self.next_write {
            return Ok(());
        }
        Err(Refusal {
            last_error: self.last_error.clone().unwrap_or_default(),
            out_of_space: self.out_of_space,
            retry_in: self.next_write - now,
        })
    }

    pub(super) fn failed(&mut self, path: &str, error: &str, out_of_space: bool) {
        self.errors += 1;
        self.last_error = Some(error.to_string());
        self.out_of_space = out_of_space;
        if self.degraded {
            self.retry_wait = (self.retry_wait * 2).min(RETRY_CAP);
        } else {
            self.degraded = true;
            self.retry_wait = RETRY_FIRST;
            tracing::error!(
                "store {path} degraded: {error}; writes are refused until it recovers, which it \
                 does by itself (check free disk space and the disk's health)"
            );
        }
        self.next_write = Instant::now() + self.retry_wait;
    }

    /// A write went through: the store is healthy again.
    pub(super) fn wrote(&mut self, path: &str) {
        if self.degraded {
            self.degraded = false;
            tracing::info!(
                "store {path} recovered ({} failed operations since start)",
                self.errors
            );
        }
    }
}
