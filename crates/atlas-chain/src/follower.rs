//! The virtualchain follower: discovers BNS transactions by walking script
//! histories (Electrum servers do not index OP_RETURN outputs), believes
//! each only with a merkle proof against verified headers, applies the
//! original indexer's rules (`bns_rules`) block by block up to the confirmation
//! depth, and yields the ordered announcements. A reorg below the confirmed
//! height rolls them back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Network, ScriptBuf, Transaction, Txid};

use super::backend::{BackendError, ChainBackend, VerifiedChain};
use super::verify::VerifyError;
use crate::{ChainDelta, SavedChain};
use atlas_core::zonefile::Hash160;
use bns_rules::engine::{Allocation, BlockOutcome, Engine, Halt};
use bns_rules::extract::parse_tx;
use bns_rules::params::RuleSet;

mod scripts;

pub use scripts::burn_script;
use scripts::{decode_scripts, encode_scripts, looks_like_bns};

const EXAMINE_SLICE: usize = 1000;

/// Bumped whenever what is saved changes meaning, so older progress is
/// re-read from the chain instead of misread.
const SAVE_FORMAT: &str = "ops2";

/// One whitelist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub zonefile_hash: Hash160,
    pub name: String,
    pub height: u64,
    pub txid: Txid,
    pub vtxindex: usize,
}

/// A transaction that may carry a BNS operation, where it sits, and the
/// script each of its inputs spends (the rules check every input).
#[derive(Debug, Clone)]
pub struct PlacedOp {
    pub height: u64,
    pub vtxindex: usize,
    pub tx: Transaction,
    pub prevouts: Vec<ScriptBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStatus {
    pub tip: u64,
    pub confirmed: u64,
    /// At `confirmed`, or at the last block before a halt.
    pub consensus_hash: [u8; 16],
    /// Where the original indexer would have stopped for good, if it would.
    pub halted: Option<Halt>,
}

pub struct Follower {
    network: Network,
    rules: RuleSet,
    genesis: Vec<Allocation>,
    confirmations: u64,
    start_height: u64,
    verified: VerifiedChain,
    watched: BTreeSet<ScriptBuf>,
    /// Every transaction already examined, with its height.
    seen: HashMap<Txid, u64>,
    ops: BTreeMap<(u64, usize), PlacedOp>,
    /// The rules' state up to `applied_to` (for consensus hashes and tests).
    pub state: Engine,
    announcements: Vec<Announcement>,
    /// Operations the rules refused, with the reason (for logs and tests).
    pub rejected: Vec<(Txid, &'static str)>,
    /// Every block's outcome, when asked for (tests compare them with the
    /// original indexer's); off by default, as it grows with the chain.
    outcomes: Option<Vec<(u64, BlockOutcome)>>,
    /// Whether the token genesis's accounts are watched yet.
    watching_genesis: bool,
    /// The last block `state` has applied; `start_height - 1` before any.
    applied_to: u64,
    /// The lowest height whose operations changed since `state` was built.
    dirty_from: Option<u64>,
    unsaved: Unsaved,
}

/// What changed since the last `take_delta`.
#[derive(Default)]
struct Unsaved {
    truncate_above: Option<u64>,
    headers_from: u64,
    ops: BTreeMap<(u64, usize), Vec<u8>>,
    seen: Vec<Txid>,
    watched: Vec<ScriptBuf>,
}

impl Follower {
    /// Follows from `checkpoint` (a trusted header at `start_height - 1`),
    /// watching `scripts` besides the burn address, under mainnet's rules on
    /// Bitcoin and the oracle's test rules (mainnet epochs) elsewhere.
    pub fn new(
        network: Network,
        checkpoint: Header,
        start_height: u64,
        confirmations: u64,
        scripts: impl IntoIterator<Item = ScriptBuf>,
    ) -> Self {
        let rules = if network == Network::Bitcoin {
            RuleSet::mainnet()
        } else {
            RuleSet::test(None)
        };
        Self::with_rules(
            network,
            rules,
            Vec::new(),
            checkpoint,
            start_height,
            confirmations,
            scripts,
        )
    }

    /// As `new`, under `rules` and with genesis token allocations.
    pub fn with_rules(
        network: Network,
        mut rules: RuleSet,
        genesis: Vec<Allocation>,
        checkpoint: Header,
        start_height: u64,
        confirmations: u64,
        scripts: impl IntoIterator<Item = ScriptBuf>,
    ) -> Self {
        let start_height = start_height.max(1);
        rules.first_block = start_height;
        let mut watched: BTreeSet<ScriptBuf> = scripts.into_iter().collect();
        watched.insert(burn_script());
        for a in &genesis {
            if let Some(s) = bns_rules::hashing::address_script(&a.address) {
                watched.insert(s);
            }
        }
        Follower {
            network,
            state: Engine::new(rules.clone(), &genesis),
            rules,
            genesis,
            confirmations: confirmations.max(1),
            start_height,
            verified: VerifiedChain::new(network, checkpoint, start_height - 1),
            unsaved: Unsaved {
                headers_from: start_height - 1,
                watched: watched.iter().cloned().collect(),
                ..Default::default()
            },
            watched,
            seen: HashMap::new(),
            ops: BTreeMap::new(),
            announcements: Vec::new(),
            rejected: Vec::new(),
            outcomes: None,
            watching_genesis: false,
            applied_to: start_height - 1,
            dirty_from: None,
        }
    }

    /// What saved progress must match to be loaded: network, start height
    /// and checkpoint.
    pub fn identity(&self) -> Vec<u8> {
        let checkpoint = self
            .verified
            .header(self.start_height - 1)
            .map(|h| h.block_hash().to_string())
            .unwrap_or_default();
        format!(
            "{}:{}:{checkpoint}:{SAVE_FORMAT}:{}",
            self.network,
            self.start_height,
            self.rules.identity()
        )
        .into_bytes()
    }

    /// Loads saved progress, re-checking it as if a server had sent it.
    /// On any error the follower is left as it was (it starts from scratch).
    pub fn restore(&mut self, saved: SavedChain) -> Result<(), String> {
        let checkpoint = self.start_height - 1;
        if saved.first_header_height != checkpoint {
            return Err(format!(
                "saved headers start at {}, not at the checkpoint {checkpoint}",
                saved.first_header_height
            ));
        }
        let mut headers = saved
            .headers
            .iter()
            .map(|b| deserialize::<Header>(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("saved header: {e}"))?;
        if headers.is_empty() {
            return Err("no saved headers".into());
        }
        if Some(&headers[0]) != self.verified.header(checkpoint) {
            return Err("saved headers start from another checkpoint".into());
        }
        let mut verified = self.verified.clone();
        verified
            .extend_checked(headers.split_off(1))
            .map_err(|e| format!("saved headers: {e}"))?;
        let mut ops = BTreeMap::new();
        for (height, pos, prevouts, raw) in saved.ops {
            let tx: Transaction = deserialize(&raw).map_err(|e| format!("saved tx: {e}"))?;
            if !looks_like_bns(&tx) {
                return Err(format!(
                    "saved tx {} is not a BNS operation",
                    tx.compute_txid()
                ));
            }
            let prevouts = decode_scripts(&prevouts)
                .filter(|p| p.len() == tx.input.len())
                .ok_or_else(|| format!("saved tx {}: bad input scripts", tx.compute_txid()))?;
            if height > verified.height() {
                return Err(format!(
                    "saved operation above the saved headers ({height})"
                ));
            }
            let op = PlacedOp {
                height,
                vtxindex: pos as usize,
                tx,
                prevouts,
            };
            ops.insert((height, pos as usize), op);
        }
        let mut seen = HashMap::new();
        for (txid, height) in saved.seen {
            let bytes: [u8; 32] = txid
                .as_slice()
                .try_into()
                .map_err(|_| "saved txid is not 32 bytes".to_string())?;
            seen.insert(Txid::from_byte_array(bytes), height);
        }
        self.watched
            .extend(saved.watched.into_iter().map(ScriptBuf::from_bytes));
        self.unsaved = Unsaved {
            headers_from: verified.height() + 1,
            ..Default::default()
        };
        self.verified = verified;
        self.ops = ops;
        self.seen = seen;
        self.dirty_from = Some(self.start_height);
        Ok(())
    }

    /// The changes since the last call, for the store.
    pub fn take_delta(&mut self) -> ChainDelta {
        let tip = self.verified.height();
        let u = std::mem::replace(
            &mut self.unsaved,
            Unsaved {
                headers_from: tip + 1,
                ..Default::default()
            },
        );
        ChainDelta {
            truncate_above: u.truncate_above,
            headers: (u.headers_from..=tip)
                .filter_map(|h| self.verified.header(h).map(|hd| (h, serialize(hd))))
                .collect(),
            ops: u
                .ops
                .into_iter()
                .filter_map(|(key, raw)| {
                    let op = self.ops.get(&key)?;
                    Some((key.0, key.1 as u64, encode_scripts(&op.prevouts), raw))
                })
                .collect(),
            seen: u
                .seen
                .into_iter()
                .filter_map(|t| Some((t.to_byte_array().to_vec(), *self.seen.get(&t)?)))
                .collect(),
            watched: u.watched.into_iter().map(|s| s.into_bytes()).collect(),
        }
    }

    /// Forgets everything above `fork` (a reorg, or a server whose chain
    /// does not link to ours).
    fn rewind(&mut self, fork: u64) {
        tracing::warn!(fork, "chain fork: rewinding");
        self.verified.truncate(fork);
        self.ops.retain(|(h, _), _| *h <= fork);
        self.seen.retain(|_, h| *h <= fork);
        let u = &mut self.unsaved;
        u.truncate_above = Some(u.truncate_above.map_or(fork, |t| t.min(fork)));
        u.headers_from = u.headers_from.min(fork + 1);
        u.ops.retain(|(h, _), _| *h <= fork);
        self.dirty_from = Some(self.dirty_from.map_or(fork + 1, |d| d.min(fork + 1)));
    }

    /// Brings headers up to the server's tip; on a fork, walks back until the
    /// server's chain links again and forgets what was above the fork.
    fn sync_headers(&mut self, backend: &mut dyn ChainBackend) -> Result<u64, BackendError> {
        let mut back = 1u64;
        loop {
            match self.verified.sync(backend) {
                Ok(tip) => return Ok(tip),
                Err(BackendError::Lied {
                    source: VerifyError::Link { .. },
                    ..
                }) if self.verified.height() >= self.start_height => {
                    let fork = self
                        .verified
                        .height()
                        .saturating_sub(back)
                        .max(self.start_height - 1);
                    self.rewind(fork);
                    back *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Fetches and verifies `wanted`, records the BNS operations among them
    /// and returns the scripts they made newly relevant.
    fn examine(
        &mut self,
        backend: &mut dyn ChainBackend,
        wanted: &[(Txid, u64)],
    ) -> Result<Vec<ScriptBuf>, BackendError> {
        let txs = self.verified.verified_txs(backend, wanted)?;
        // Operations are often funded by the previous one (a chain of
        // spends), so the slice itself answers many input lookups.
        let mut funding: HashMap<Txid, Transaction> = HashMap::new();
        let mut found = Vec::new();
        for ((txid, height), (tx, pos)) in wanted.iter().zip(txs) {
            if looks_like_bns(&tx) {
                found.push((*height, pos, tx.clone()));
            }
            funding.insert(*txid, tx);
        }
        // The rules read the script of every input; funding transactions
        // fetched here must hash to the ids we spend.
        let mut funding_ids: Vec<Txid> = found
            .iter()
            .flat_map(|(_, _, tx)| tx.input.iter().map(|i| i.previous_output.txid))
            .filter(|id| !funding.contains_key(id))
            .collect();
        funding_ids.sort();
        funding_ids.dedup();
        let funding_txs = backend.transactions(&funding_ids)?;
        if funding_txs.len() != funding_ids.len() {
            return Err(BackendError::Server {
                server: backend.name(),
                message: format!(
                    "asked for {} transactions, got {}",
                    funding_ids.len(),
                    funding_txs.len()
                ),
            });
        }
        for (want, tx) in funding_ids.iter().zip(funding_txs) {
            if tx.compute_txid() != *want {
                return Err(BackendError::WrongTx {
                    server: backend.name(),
                    want: *want,
                    got: tx.compute_txid(),
                });
            }
            funding.insert(*want, tx);
        }
        let mut new_scripts = Vec::new();
        for (height, pos, tx) in found {
            let prevouts: Option<Vec<ScriptBuf>> = tx
                .input
                .iter()
                .map(|i| {
                    funding
                        .get(&i.previous_output.txid)
                        .and_then(|f| f.output.get(i.previous_output.vout as usize))
                        .map(|o| o.script_pubkey.clone())
                })
                .collect();
            let Some(prevouts) = prevouts else {
                continue;
            };
            // Whoever sends or receives an operation may send the next one.
            let recipient = tx.output.get(1).map(|o| o.script_pubkey.clone());
            for script in prevouts.iter().take(1).chain(recipient.as_ref()) {
                self.watch(script.clone(), &mut new_scripts);
            }
            self.unsaved.ops.insert((height, pos), serialize(&tx));
            self.dirty_from = Some(self.dirty_from.map_or(height, |d| d.min(height)));
            self.ops.insert(
                (height, pos),
                PlacedOp {
                    height,
                    vtxindex: pos,
                    tx,
                    prevouts,
                },
            );
        }
        for (txid, height) in wanted {
            self.seen.insert(*txid, *height);
            self.unsaved.seen.push(*txid);
        }
        Ok(new_scripts)
    }

    /// One round: headers, discovery to a fixed point, the name rules.
    pub fn poll(&mut self, backend: &mut dyn ChainBackend) -> Result<FollowerStatus, BackendError> {
        let tip = self.sync_headers(backend)?;
        let confirmed = (tip + 1).saturating_sub(self.confirmations);
        // Discovery to a fixed point: an operation can make a new script
        // relevant (a sender, a new owner, an import keyring), whose history
        // is read next.
        let mut scripts: Vec<ScriptBuf> = self.watched.iter().cloned().collect();
        while !scripts.is_empty() {
            let mut wanted: Vec<(Txid, u64)> = Vec::new();
            let mut asked = HashSet::new();
            for history in backend.script_histories(&scripts)? {
                for (txid, height) in history {
                    if height >= self.start_height
                        && height <= confirmed
                        && !self.seen.contains_key(&txid)
                        && asked.insert(txid)
                    {
                        wanted.push((txid, height));
                    }
                }
            }
            scripts = Vec::new();
            // In slices, so a long first sync keeps memory flat and a
            // failure loses little.
            for slice in wanted.chunks(EXAMINE_SLICE) {
                scripts.extend(self.examine(backend, slice)?);
            }
            if scripts.is_empty() {
                self.apply(confirmed);
                scripts = self.state_scripts();
            }
        }
        Ok(FollowerStatus {
            tip,
            confirmed,
            consensus_hash: self
                .consensus_hash(confirmed.min(self.applied_to))
                .unwrap_or_default(),
            halted: self.state.halted().cloned(),
        })
    }

    /// Starts watching `script`; new ones are also listed in `new`.
    fn watch(&mut self, script: ScriptBuf, new: &mut Vec<ScriptBuf>) {
        if self.watched.insert(script.clone()) {
            self.unsaved.watched.push(script.clone());
            new.push(script);
        }
    }

    /// Scripts the rules' state made relevant since the last call: import
    /// keyring addresses (imports may come from any) and, once the token
    /// ledger is loaded (mainnet: from block 547,922), every genesis
    /// account (TOKEN_TRANSFERs are sent from them).
    fn state_scripts(&mut self) -> Vec<ScriptBuf> {
        let mut addresses: Vec<String> =
            self.state.db.keyrings.values().flatten().cloned().collect();
        if !self.watching_genesis
            && let Some(genesis) = self.state.tokens.loaded()
        {
            self.watching_genesis = true;
            addresses.extend(genesis.watch_addresses());
        }
        let mut new = Vec::new();
        for a in addresses {
            if let Some(s) = bns_rules::hashing::address_script(&a) {
                self.watch(s, &mut new);
            }
        }
        new
    }

    /// Runs the rules over blocks up to `confirmed`. Blocks are applied
    /// once; an operation found below what the state already covers (or a
    /// rewind) rebuilds the state from the start.
    fn apply(&mut self, confirmed: u64) {
        if self.dirty_from.is_some_and(|d| d <= self.applied_to) || confirmed < self.applied_to {
            self.state = Engine::new(self.rules.clone(), &self.genesis);
            self.applied_to = self.start_height - 1;
            self.announcements.clear();
            self.rejected.clear();
            if let Some(o) = &mut self.outcomes {
                o.clear();
            }
        }
        self.dirty_from = None;
        let was_halted = self.state.halted().is_some();
        for h in self.applied_to + 1..=confirmed {
            let ops: Vec<_> = self
                .ops
                .range((h, 0)..(h + 1, 0))
                .filter_map(|(_, op)| {
                    let prevouts: Vec<Vec<u8>> = op.prevouts.iter().map(|s| s.to_bytes()).collect();
                    parse_tx(&self.rules, h, op.vtxindex as u32, &op.tx, &prevouts)
                })
                .collect();
            let outcome = match self.state.process_block(h, &ops) {
                Ok(outcome) => outcome,
                Err(halt) => {
                    if !was_halted {
                        tracing::error!(
                            "{halt}; the whitelist stops at block {}, where mainnet's indexer stopped",
                            h - 1
                        );
                    }
                    self.applied_to = h - 1;
                    return;
                }
            };
            if let Some(o) = &mut self.outcomes {
                o.push((h, outcome.clone()));
            }
            for (txid, _, reason) in outcome.rejected {
                if let Ok(txid) = txid.parse() {
                    self.rejected.push((txid, reason));
                }
            }
            for a in outcome.announced {
                let (Ok(txid), Ok(bytes)) = (a.txid.parse(), hex::decode(&a.value_hash)) else {
                    continue;
                };
                let Ok(zonefile_hash) = Hash160::from_slice(&bytes) else {
                    continue;
                };
                self.announcements.push(Announcement {
                    zonefile_hash,
                    name: a.name,
                    height: h,
                    txid,
                    vtxindex: a.vtxindex as usize,
                });
            }
        }
        self.applied_to = self.applied_to.max(confirmed);
    }

    /// Keeps every block's outcome from now on (see `outcomes`).
    pub fn record_outcomes(&mut self) {
        self.outcomes.get_or_insert_with(Vec::new);
    }

    /// The outcomes of the blocks applied, if `record_outcomes` was called
    /// before they were.
    pub fn outcomes(&self) -> &[(u64, BlockOutcome)] {
        self.outcomes.as_deref().unwrap_or_default()
    }

    /// The consensus hash after block `height`, once the rules reached it.
    pub fn consensus_hash(&self, height: u64) -> Option<[u8; 16]> {
        hex::decode(self.state.consensus_hash(height)?)
            .ok()?
            .try_into()
            .ok()
    }

    /// The height of the last verified header.
    pub fn verified_height(&self) -> u64 {
        self.verified.height()
    }

    /// The hash of the verified tip.
    pub fn tip_hash(&self) -> Option<bitcoin::BlockHash> {
        self.verified
            .header(self.verified.height())
            .map(|h| h.block_hash())
    }

    pub fn announcements(&self) -> &[Announcement] {
        &self.announcements
    }
}
