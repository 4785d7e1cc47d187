//! One block at a time, as virtualchain and the original's hooks process it:
//! a first pass over the creation operations finds same-block collisions
//! (every registration of one name, or reveal of one namespace, that would
//! pass is refused when there are two), then each operation is checked and
//! committed in transaction order; the accepted records make the block's
//! consensus hash, and the zone-file hashes they carry extend the whitelist.

use std::collections::HashSet;

use super::commit::{Commit, Reject};
use super::consensus;
use super::extract::{Body, ParsedOp};
use super::name_ops::{self, Ctx};
use super::namespace_ops;
use super::params::RuleSet;
use super::payment::PAY_WITH_STACKS;
use super::py2;
use super::state::Db;

pub use super::genesis::Allocation;
use super::genesis::{StxGenesis, Tokens};

/// An accepted operation, as the oracle lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub txid: String,
    pub vtxindex: u32,
    pub opcode: &'static str,
    /// The name or namespace it concerns (the preorder hash for preorders).
    pub history_id: String,
}

/// A zone-file hash an accepted operation announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub name: String,
    pub value_hash: String,
    pub txid: String,
    pub vtxindex: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    pub consensus_hash: String,
    pub ops_hash: String,
    pub accepted: Vec<Accepted>,
    pub rejected: Vec<(String, u32, Reject)>,
    pub announced: Vec<Announced>,
    /// (preorder hash, the name or namespace that consumed it)
    pub consumed_preorders: Vec<(String, String)>,
}

pub struct Engine {
    pub rules: RuleSet,
    pub db: Db,
    /// The last block processed.
    pub lastblock: u64,
    /// The token genesis still to load or patch (`genesis.rs`).
    pub tokens: Tokens,
    halted: Option<Halt>,
}

/// An operation at which the original indexer stops for good
/// (`os.abort()` in a database write it assumed could not fail): its nodes
/// never process this block, so no consensus hash or whitelist exists past
/// the block before. Processing stops there, as the original's did.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the original indexer aborts at block {block}, transaction {txid} (vtxindex {vtxindex}): {reason}"
)]
pub struct Halt {
    pub block: u64,
    pub txid: String,
    pub vtxindex: u32,
    pub reason: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Name,
    Namespace,
    Preorder,
}

fn opcode_name(op: &ParsedOp) -> &'static str {
    match op.body {
        Body::NamePreorder { .. } => "NAME_PREORDER",
        Body::NameRegistration { .. } => "NAME_REGISTRATION",
        Body::NameRenewal { .. } => "NAME_RENEWAL",
        Body::NameUpdate { .. } => "NAME_UPDATE",
        Body::NameTransfer { .. } => "NAME_TRANSFER",
        Body::NameRevoke { .. } => "NAME_REVOKE",
        Body::NameImport { .. } => "NAME_IMPORT",
        Body::NamespacePreorder { .. } => "NAMESPACE_PREORDER",
        Body::NamespaceReveal { .. } => "NAMESPACE_REVEAL",
        Body::NamespaceReady { .. } => "NAMESPACE_READY",
        Body::TokenTransfer { .. } => "TOKEN_TRANSFER",
    }
}

/// The id collisions are counted on: names for registrations, namespace
/// ids for reveals, hashes for preorders. Imports never collide.
fn collision_key(op: &ParsedOp) -> Option<(Key, String)> {
    match &op.body {
        Body::NameRegistration { name, .. } => Some((Key::Name, name.clone())),
        Body::NamespaceReveal { namespace_id, .. } => Some((Key::Namespace, namespace_id.clone())),
        Body::NamePreorder { preorder_hash, .. }
        | Body::NamespacePreorder { preorder_hash, .. } => {
            Some((Key::Preorder, preorder_hash.clone()))
        }
        _ => None,
    }
}

impl Engine {
    /// An engine before its first block, with the genesis snapshots and
    /// token allocations.
    pub fn new(rules: RuleSet, genesis: &[Allocation]) -> Self {
        let mut db = Db::default();
        let first = rules.first_block as i64;
        for b in first - 4..first {
            db.consensus
                .insert(b, hex::encode(consensus::GENESIS_SNAPSHOT));
        }
        super::genesis::allocate(&mut db, genesis);
        let lastblock = rules.first_block - 1;
        Engine {
            tokens: Tokens::for_rules(&rules),
            rules,
            db,
            lastblock,
            halted: None,
        }
    }

    /// An engine whose token ledger is `genesis` (loaded at the first block
    /// with token features) instead of its rules' own.
    pub fn with_stx_genesis(rules: RuleSet, genesis: &'static StxGenesis) -> Self {
        let mut engine = Engine::new(rules, &[]);
        engine.tokens = Tokens::given(genesis);
        engine
    }

    /// Where the original indexer stopped for good, if it did.
    pub fn halted(&self) -> Option<&Halt> {
        self.halted.as_ref()
    }

    /// The consensus hash of a processed block (or a genesis row).
    pub fn consensus_hash(&self, block: u64) -> Option<&str> {
        self.db.consensus.get(&(block as i64)).map(String::as_str)
    }

    fn check(
        &self,
        op: &ParsedOp,
        block: u64,
        registered_to: &[String],
        keyring: &mut Option<(String, Vec<String>)>,
    ) -> Result<Commit, Reject> {
        let c = Ctx {
            rules: &self.rules,
            db: &self.db,
            block,
            registered_to,
        };
        match op.body {
            Body::NamePreorder { .. } => name_ops::check_preorder(&c, op),
            Body::NameRegistration { .. } => name_ops::check_registration(&c, op),
            Body::NameRenewal { .. } => name_ops::check_renewal(&c, op),
            Body::NameUpdate { .. } => name_ops::check_update(&c, op),
            Body::NameTransfer { .. } => name_ops::check_transfer(&c, op),
            Body::NameRevoke { .. } => name_ops::check_revoke(&c, op),
            Body::NameImport { .. } => name_ops::check_import(&c, op, keyring),
            Body::NamespacePreorder { .. } => namespace_ops::check_namespace_preorder(&c, op),
            Body::NamespaceReveal { .. } => namespace_ops::check_reveal(&c, op),
            Body::NamespaceReady { .. } => namespace_ops::check_ready(&c, op),
            Body::TokenTransfer { .. } => namespace_ops::check_token_transfer(&c, op),
        }
    }

    /// Builds the import keyring a check derived (the original caches it on
    /// disk as soon as the check gets that far).
    fn keep_keyring(&mut self, keyring: Option<(String, Vec<String>)>) {
        if let Some((ns, k)) = keyring {
            self.db.keyrings.entry(ns).or_insert(k);
        }
    }

    /// `db_scan_block`: the ids that two or more creation operations of this
    /// block would create.
    fn scan_collisions(&mut self, block: u64, ops: &[ParsedOp]) -> HashSet<(Key, String)> {
        let mut seen: HashSet<(Key, String)> = HashSet::new();
        let mut collided = HashSet::new();
        let mut registered_to = Vec::new();
        for op in ops {
            let creation = matches!(
                op.body,
                Body::NameRegistration { .. }
                    | Body::NameImport { .. }
                    | Body::NamespaceReveal { .. }
            );
            if !creation {
                continue;
            }
            let mut keyring = None;
            let passed = self.check(op, block, &registered_to, &mut keyring).ok();
            self.keep_keyring(keyring);
            let mut owner = op.sender.clone();
            if let (Some(commit), Some(key)) = (passed, collision_key(op)) {
                if seen.contains(&key) {
                    collided.insert(key);
                } else {
                    seen.insert(key);
                    owner = commit.registers_to.unwrap_or(owner);
                }
            }
            if matches!(op.body, Body::NameRegistration { .. }) {
                registered_to.push(owner);
            }
        }
        collided
    }

    /// Processes block `block` (the next one) with its BNS operations in
    /// transaction order; an error where the original stops for good, after
    /// which every later block gets the same error and the state stays as
    /// the block before left it.
    pub fn process_block(&mut self, block: u64, ops: &[ParsedOp]) -> Result<BlockOutcome, Halt> {
        if let Some(h) = &self.halted {
            return Err(h.clone());
        }
        debug_assert_eq!(block, self.lastblock + 1, "blocks are processed in order");
        self.tokens.reach(&self.rules, &mut self.db, block);
        // Only a re-reveal of an expired namespace, or an import over an
        // existing name in the block where its namespace's reveal expires or
        // where names cost STX, can halt; a block holding one is processed
        // over a copy, so a halt leaves the state as the block before left
        // it rather than half a block written.
        let unready = |id: &str| self.db.namespaces.get(id).filter(|n| !n.is_ready());
        let before = ops
            .iter()
            .any(|op| match &op.body {
                Body::NamespaceReveal { namespace_id, .. } => unready(namespace_id).is_some(),
                Body::NameImport { name, .. } => {
                    let namespace = unready(Db::namespace_of(name)).is_some_and(|n| {
                        n.reveal_block + self.rules.namespace_reveal_expire == block
                            || n.version == PAY_WITH_STACKS
                    });
                    let row = self.db.get_name(&self.rules, name, block, true);
                    namespace || row.is_some_and(|r| r.token_fee != "0")
                }
                _ => false,
            })
            .then(|| self.db.clone());
        let mut taken = self.scan_collisions(block, ops);
        let mut out = BlockOutcome::default();
        let mut registered_to: Vec<String> = Vec::new();
        let mut serialized = Vec::new();
        for op in ops {
            let mut keyring = None;
            let verdict = self.check(op, block, &registered_to, &mut keyring);
            self.keep_keyring(keyring);
            let verdict = verdict.and_then(|commit| match collision_key(op) {
                Some(key) if !taken.insert(key.clone()) => {
                    Err("collides with another operation in this block")
                }
                _ => Ok(commit),
            });
            match verdict {
                Ok(Commit {
                    aborts: Some(reason),
                    ..
                }) => {
                    let halt = Halt {
                        block,
                        txid: op.txid.clone(),
                        vtxindex: op.vtxindex,
                        reason,
                    };
                    self.halted = Some(halt.clone());
                    debug_assert!(before.is_some(), "a halt the block scan did not foresee");
                    if let Some(db) = before {
                        self.db = db;
                    }
                    return Err(halt);
                }
                Ok(commit) => {
                    serialized.push(py2::serialize_op(op.opcode, &commit.record));
                    if let Some(owner) = &commit.registers_to {
                        registered_to.push(owner.clone());
                    }
                    let history_id = match &op.body {
                        Body::NamePreorder { preorder_hash, .. }
                        | Body::NamespacePreorder { preorder_hash, .. } => preorder_hash.clone(),
                        Body::NamespaceReveal { namespace_id, .. }
                        | Body::NamespaceReady { namespace_id } => namespace_id.clone(),
                        Body::TokenTransfer { .. } => op.address.clone(),
                        _ => commit
                            .name
                            .as_ref()
                            .map(|n| n.name.clone())
                            .unwrap_or_default(),
                    };
                    if let Some(value_hash) = &commit.announces {
                        out.announced.push(Announced {
                            name: history_id.clone(),
                            value_hash: value_hash.clone(),
                            txid: op.txid.clone(),
                            vtxindex: op.vtxindex,
                        });
                    }
                    out.accepted.push(Accepted {
                        txid: op.txid.clone(),
                        vtxindex: op.vtxindex,
                        opcode: opcode_name(op),
                        history_id: history_id.clone(),
                    });
                    if let Some(p) = &commit.preorder_remove {
                        out.consumed_preorders.push((p.clone(), history_id.clone()));
                    }
                    commit.apply(&mut self.db);
                }
                Err(reason) => out.rejected.push((op.txid.clone(), op.vtxindex, reason)),
            }
        }
        let ops_hash = consensus::ops_hash(&serialized);
        let prior: Vec<[u8; 16]> = consensus::skip_list_heights(block, self.rules.first_block)
            .into_iter()
            .filter_map(|h| self.consensus_hash(h))
            .filter_map(|c| hex::decode(c).ok()?.try_into().ok())
            .collect();
        let ch = hex::encode(consensus::consensus_hash(&ops_hash, &prior));
        self.db.consensus.insert(block as i64, ch.clone());
        self.tokens.advance(&mut self.db, block + 1);
        self.lastblock = block;
        out.consensus_hash = ch;
        out.ops_hash = hex::encode(ops_hash);
        Ok(out)
    }
}
