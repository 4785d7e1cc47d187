//! What the generator meant by each transaction, and how our rules decided
//! it: an operation meant valid that the rules refuse (or the reverse) is
//! either a generator bug or a rule bug, which the comparison with the
//! original indexer then tells apart.

use std::collections::BTreeMap;
use std::fmt;

/// The verdict a transaction was built to get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Accept,
    /// Parsed as an operation and refused by its check.
    Reject,
    /// Not an operation at all for the original (parse or sender checks).
    Drop,
    /// Depends on state the generator does not model closely.
    Any,
}

/// How the rules decided a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Accepted,
    Rejected,
    Dropped,
}

/// One generated operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub block: u64,
    pub txid: String,
    /// The operation it is built as (`NAME_PREORDER`).
    pub op: &'static str,
    /// Which variant: `valid`, or the rule it breaks (`stale-consensus-hash`).
    pub variant: &'static str,
    pub expect: Expect,
    /// Filled in once its block is processed.
    pub verdict: Option<Verdict>,
    /// Our rules' reason for a rejection.
    pub reason: Option<&'static str>,
}

impl Intent {
    pub fn surprising(&self) -> bool {
        matches!(
            (self.expect, self.verdict),
            (Expect::Accept, Some(Verdict::Rejected | Verdict::Dropped))
                | (Expect::Reject, Some(Verdict::Accepted | Verdict::Dropped))
                | (Expect::Drop, Some(Verdict::Accepted | Verdict::Rejected))
        )
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "block {} tx {} {}/{}: meant {:?}, our rules {:?}{}",
            self.block,
            self.txid,
            self.op,
            self.variant,
            self.expect,
            self.verdict,
            self.reason.map(|r| format!(" ({r})")).unwrap_or_default()
        )
    }
}

/// Counts per (operation, variant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub accepted: usize,
    pub rejected: usize,
    pub dropped: usize,
    pub surprising: usize,
}

/// Everything generated, by operation and variant.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub intents: Vec<Intent>,
    /// Operations the wallet could not pay for (not emitted).
    pub skipped: BTreeMap<(&'static str, &'static str), usize>,
}

impl Stats {
    pub fn tally(&self) -> BTreeMap<(&'static str, &'static str), Tally> {
        let mut out: BTreeMap<_, Tally> = BTreeMap::new();
        for i in &self.intents {
            let t = out.entry((i.op, i.variant)).or_default();
            match i.verdict {
                Some(Verdict::Accepted) => t.accepted += 1,
                Some(Verdict::Rejected) => t.rejected += 1,
                _ => t.dropped += 1,
            }
            t.surprising += usize::from(i.surprising());
        }
        out
    }

    pub fn surprises(&self) -> Vec<&Intent> {
        self.intents.iter().filter(|i| i.surprising()).collect()
    }

    /// The intent behind a transaction.
    pub fn intent(&self, txid: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.txid == txid)
    }
}
