//! The virtualchain follower: discovers BNS transactions by walking script
//! histories (Electrum servers do not index OP_RETURN outputs), believes
//! each only with a merkle proof against verified headers, applies the name
//! rules in chain order up to the confirmation depth, and yields the ordered
//! announcements. A reorg below the confirmed height rolls them back.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bitcoin::block::Header;
use bitcoin::{Network, ScriptBuf, Txid};

use super::backend::{BackendError, ChainBackend, VerifiedChain};
use super::names::{Announcement, NameState, PlacedOp};
use super::tx::extract;
use super::verify::VerifyError;

/// The p2pkh script of hash160 0x00…00 (`1111111111111111111114oLvT2`),
/// where preorders burn their fees.
pub fn burn_script() -> ScriptBuf {
    ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_raw_hash(
        bitcoin::hashes::Hash::all_zeros(),
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStatus {
    pub tip: u64,
    pub confirmed: u64,
    pub consensus_hash: [u8; 16],
}

pub struct Follower {
    network: Network,
    confirmations: u64,
    start_height: u64,
    verified: VerifiedChain,
    watched: BTreeSet<ScriptBuf>,
    seen: HashSet<Txid>,
    ops: BTreeMap<(u64, usize), PlacedOp>,
    /// The name state of the last poll (for consensus hashes and tests).
    pub state: NameState,
}

impl Follower {
    /// Follows from `checkpoint` (a trusted header at `start_height - 1`),
    /// watching `scripts` besides the burn address.
    pub fn new(
        network: Network,
        checkpoint: Header,
        start_height: u64,
        confirmations: u64,
        scripts: impl IntoIterator<Item = ScriptBuf>,
    ) -> Self {
        let mut watched: BTreeSet<ScriptBuf> = scripts.into_iter().collect();
        watched.insert(burn_script());
        Follower {
            network,
            confirmations: confirmations.max(1),
            start_height,
            verified: VerifiedChain::new(network, checkpoint, start_height.saturating_sub(1)),
            watched,
            seen: HashSet::new(),
            ops: BTreeMap::new(),
            state: NameState::new(network, start_height),
        }
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
                    tracing::warn!(fork, "chain fork: rewinding");
                    self.verified.truncate(fork);
                    self.ops.retain(|(h, _), _| *h <= fork);
                    self.seen = self.ops.values().map(|o| o.tx.txid).collect();
                    back *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One round: headers, discovery to a fixed point, the name rules.
    pub fn poll(&mut self, backend: &mut dyn ChainBackend) -> Result<FollowerStatus, BackendError> {
        let tip = self.sync_headers(backend)?;
        let confirmed = (tip + 1).saturating_sub(self.confirmations);
        loop {
            let mut grew = false;
            for script in self.watched.clone() {
                for (txid, height) in backend.script_history(&script)? {
                    if height < self.start_height || height > confirmed || self.seen.contains(&txid)
                    {
                        continue;
                    }
                    let (tx, pos) = self.verified.verified_tx(backend, &txid, height)?;
                    self.seen.insert(txid);
                    let bns = match extract(&tx) {
                        Ok(Some(b)) => b,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::debug!(%txid, "malformed BNS payload: {e}");
                            continue;
                        }
                    };
                    let Some(input) = tx.input.first() else {
                        continue;
                    };
                    // The sender is the script input 0 spends; the funding
                    // transaction's bytes must hash to the id we spend.
                    let funding = backend.transaction(&input.previous_output.txid)?;
                    if funding.compute_txid() != input.previous_output.txid {
                        return Err(BackendError::WrongTx {
                            server: backend.name(),
                            want: input.previous_output.txid,
                            got: funding.compute_txid(),
                        });
                    }
                    let Some(sender) = funding
                        .output
                        .get(input.previous_output.vout as usize)
                        .map(|o| o.script_pubkey.clone())
                    else {
                        continue;
                    };
                    grew |= self.watched.insert(sender.clone());
                    if let Some(r) = &bns.recipient {
                        grew |= self.watched.insert(r.clone());
                    }
                    self.ops.insert(
                        (height, pos),
                        PlacedOp {
                            height,
                            vtxindex: pos,
                            sender,
                            tx: bns,
                        },
                    );
                }
            }
            if !grew {
                break;
            }
        }
        let mut state = NameState::new(self.network, self.start_height);
        let mut by_height: BTreeMap<u64, Vec<PlacedOp>> = BTreeMap::new();
        for op in self.ops.values() {
            by_height.entry(op.height).or_default().push(op.clone());
        }
        for h in self.start_height..=confirmed {
            let ops = by_height.remove(&h).unwrap_or_default();
            state.apply_block(h, &ops);
        }
        self.state = state;
        Ok(FollowerStatus {
            tip,
            confirmed,
            consensus_hash: self.state.consensus_hash(confirmed),
        })
    }

    /// The hash of the verified tip.
    pub fn tip_hash(&self) -> Option<bitcoin::BlockHash> {
        self.verified
            .header(self.verified.height())
            .map(|h| h.block_hash())
    }

    pub fn announcements(&self) -> &[Announcement] {
        &self.state.announcements
    }
}
