//! The BNS state the whitelist needs: namespaces, names, owners, and the
//! zone-file hashes that accepted operations announce, in chain order.
//!
//! Rules kept: a namespace is preordered (hash of id, sender and revealer
//! address), revealed by the preorderer, then readied by the revealer; names
//! in a revealed, not-ready namespace are imported by the revealer; names in a
//! ready namespace are preordered and registered within 144 blocks by the same
//! sender; updates, transfers, renewals and revokes need the owner as sender;
//! an update names its target by `hash128(name + consensus_hash)` over the
//! last 25 consensus hashes.
//!
//! Consensus hashes follow the original's construction (sorted merkle leaves,
//! a skip list of prior hashes, hash160 truncated to 16 bytes), but the op
//! serialization is our own (`opcode:txid`): the per-opcode field lists of the
//! original are not in our research notes, so these hashes agree with our own
//! nodes, not with mainnet Blockstack nodes.

use std::collections::{BTreeMap, HashMap};

use bitcoin::hashes::{Hash, sha256d};
use bitcoin::{Network, Script, ScriptBuf, Txid};

use super::bns::{BnsOp, hash_name, hash128};
use super::tx::BnsTx;
use crate::zonefile::Hash160;

pub const PREORDER_EXPIRY: u64 = 144;
pub const CONSENSUS_WINDOW: u64 = 24;
pub const GENESIS_SNAPSHOT: [u8; 16] = [
    0x17, 0xac, 0x43, 0xc1, 0xd8, 0x54, 0x9c, 0x31, 0x81, 0xb2, 0x00, 0xf1, 0xbf, 0x97, 0xeb, 0x7d,
];

/// One whitelist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub zonefile_hash: Hash160,
    pub name: String,
    pub height: u64,
    pub txid: Txid,
    pub vtxindex: usize,
}

/// A BNS transaction with where it sits and who sent it.
#[derive(Debug, Clone)]
pub struct PlacedOp {
    pub height: u64,
    pub vtxindex: usize,
    pub sender: ScriptBuf,
    pub tx: BnsTx,
}

#[derive(Debug, Clone)]
struct Namespace {
    revealer: ScriptBuf,
    ready: bool,
}

#[derive(Debug, Clone)]
struct Name {
    owner: ScriptBuf,
    value_hash: Option<Hash160>,
    revoked: bool,
}

pub struct NameState {
    network: Network,
    first_height: u64,
    ns_preorders: HashMap<[u8; 20], (ScriptBuf, u64)>,
    namespaces: HashMap<String, Namespace>,
    preorders: HashMap<[u8; 20], (ScriptBuf, u64)>,
    names: HashMap<String, Name>,
    consensus: BTreeMap<u64, [u8; 16]>,
    pub announcements: Vec<Announcement>,
    /// Operations refused, with the reason (for logs and tests).
    pub rejected: Vec<(Txid, &'static str)>,
}

fn address(script: &Script, network: Network) -> Option<String> {
    bitcoin::Address::from_script(script, network)
        .ok()
        .map(|a| a.to_string())
}

fn sha256d_bytes(data: &[u8]) -> [u8; 32] {
    sha256d::Hash::hash(data).to_byte_array()
}

/// The original's merkle over hex strings: each leaf's bytes reversed, pairs
/// hashed with SHA256d, odd counts duplicate the last; the root byte-reversed.
fn merkle_hex(mut leaves: Vec<Vec<u8>>) -> Vec<u8> {
    leaves.sort_by_key(|l| hex::encode(l));
    let mut level: Vec<Vec<u8>> = leaves
        .into_iter()
        .map(|mut l| {
            l.reverse();
            l
        })
        .collect();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(level[level.len() - 1].clone());
        }
        level = level
            .chunks(2)
            .map(|p| sha256d_bytes(&[p[0].as_slice(), p[1].as_slice()].concat()).to_vec())
            .collect();
    }
    let mut root = level.pop().unwrap_or_default();
    root.reverse();
    root
}

impl NameState {
    pub fn new(network: Network, first_height: u64) -> Self {
        NameState {
            network,
            first_height,
            ns_preorders: HashMap::new(),
            namespaces: HashMap::new(),
            preorders: HashMap::new(),
            names: HashMap::new(),
            consensus: BTreeMap::new(),
            announcements: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// The consensus hash after block `height` (genesis snapshot before the start).
    pub fn consensus_hash(&self, height: u64) -> [u8; 16] {
        self.consensus
            .get(&height)
            .copied()
            .unwrap_or(GENESIS_SNAPSHOT)
    }

    /// Applies one block's accepted operations (in vtxindex order) and
    /// records the block's consensus hash.
    pub fn apply_block(&mut self, height: u64, ops: &[PlacedOp]) {
        let mut accepted_leaves = Vec::new();
        for op in ops {
            match self.apply(op) {
                Ok(()) => {
                    let ser = format!("{}:{}", opcode_char(&op.tx), op.tx.txid);
                    accepted_leaves.push(sha256d_bytes(ser.as_bytes()).to_vec());
                }
                Err(reason) => self.rejected.push((op.tx.txid, reason)),
            }
        }
        if accepted_leaves.is_empty() {
            accepted_leaves.push(sha256d_bytes(b"").to_vec());
        }
        let ops_hash = merkle_hex(accepted_leaves);
        let mut leaves = vec![ops_hash];
        let mut i = 1u32;
        while let Some(prior) = height.checked_sub((1u64 << i) - 1) {
            if prior < self.first_height || i > 63 {
                break;
            }
            leaves.push(self.consensus_hash(prior).to_vec());
            i += 1;
        }
        let root = merkle_hex(leaves);
        let ch = Hash160::of(&root).0;
        let mut out = [0u8; 16];
        out.copy_from_slice(&ch[..16]);
        self.consensus.insert(height, out);
    }

    fn announce(&mut self, op: &PlacedOp, name: &str, hash: Hash160) {
        self.announcements.push(Announcement {
            zonefile_hash: hash,
            name: name.to_string(),
            height: op.height,
            txid: op.tx.txid,
            vtxindex: op.vtxindex,
        });
    }

    fn owned_by(&self, name: &str, sender: &Script) -> bool {
        self.names
            .get(name)
            .is_some_and(|n| !n.revoked && n.owner.as_script() == sender)
    }

    fn apply(&mut self, op: &PlacedOp) -> Result<(), &'static str> {
        let h = op.height;
        let sender = op.sender.clone();
        let recipient = op.tx.recipient.clone();
        match &op.tx.op {
            BnsOp::NamespacePreorder { namespace_hash, .. } => {
                self.ns_preorders.insert(*namespace_hash, (sender, h));
            }
            BnsOp::NamespaceReveal { namespace_id, .. } => {
                if self.namespaces.contains_key(namespace_id) {
                    return Err("namespace already revealed");
                }
                let revealer = recipient.ok_or("reveal has no revealer output")?;
                let addr = address(&revealer, self.network).ok_or("revealer is not an address")?;
                let commit =
                    hash_name(namespace_id, sender.as_bytes(), &addr).ok_or("bad namespace id")?;
                match self.ns_preorders.remove(&commit.0) {
                    Some((s, _)) if s == sender => {}
                    _ => return Err("no matching namespace preorder"),
                }
                self.namespaces.insert(
                    namespace_id.clone(),
                    Namespace {
                        revealer,
                        ready: false,
                    },
                );
            }
            BnsOp::NamespaceReady { namespace_id } => {
                let ns = self
                    .namespaces
                    .get_mut(namespace_id)
                    .ok_or("unknown namespace")?;
                if ns.revealer != sender {
                    return Err("only the revealer readies a namespace");
                }
                ns.ready = true;
            }
            BnsOp::NameImport { name } => {
                let ns_id = name.rsplit('.').next().unwrap_or("");
                let ns = self.namespaces.get(ns_id).ok_or("unknown namespace")?;
                if ns.ready || ns.revealer != sender {
                    return Err("imports need the revealer, before ready");
                }
                let owner = recipient.ok_or("import has no recipient")?;
                let hash = op.tx.import_hash.ok_or("import has no hash")?;
                self.names.insert(
                    name.clone(),
                    Name {
                        owner,
                        value_hash: Some(hash),
                        revoked: false,
                    },
                );
                self.announce(op, name, hash);
            }
            BnsOp::NamePreorder { preorder_hash, .. } => {
                self.preorders.insert(*preorder_hash, (sender, h));
            }
            BnsOp::NameRegistration {
                name, value_hash, ..
            } if !op.tx.renewal => {
                let ns_id = name.rsplit('.').next().unwrap_or("");
                if !self.namespaces.get(ns_id).is_some_and(|n| n.ready) {
                    return Err("namespace not ready");
                }
                if self.names.get(name).is_some_and(|n| !n.revoked) {
                    return Err("name taken");
                }
                let owner = recipient.ok_or("registration has no owner output")?;
                let addr = address(&owner, self.network).ok_or("owner is not an address")?;
                let commit = hash_name(name, sender.as_bytes(), &addr).ok_or("bad name")?;
                match self.preorders.remove(&commit.0) {
                    Some((s, ph)) if s == sender && h.saturating_sub(ph) <= PREORDER_EXPIRY => {}
                    _ => return Err("no live matching preorder"),
                }
                self.names.insert(
                    name.clone(),
                    Name {
                        owner,
                        value_hash: *value_hash,
                        revoked: false,
                    },
                );
                if let Some(v) = value_hash {
                    self.announce(op, name, *v);
                }
            }
            BnsOp::NameRegistration {
                name, value_hash, ..
            } => {
                if !self.owned_by(name, &sender) {
                    return Err("renewal by a non-owner");
                }
                let owner = recipient.ok_or("renewal has no owner output")?;
                let n = self.names.get_mut(name).expect("owned above");
                n.owner = owner;
                if value_hash.is_some() {
                    n.value_hash = *value_hash;
                }
                // A renewal re-announces the current hash (the original adds a row).
                if let Some(v) = n.value_hash {
                    let name = name.clone();
                    self.announce(op, &name, v);
                }
            }
            BnsOp::NameUpdate {
                name_consensus_hash,
                value_hash,
            } => {
                let lo = h.saturating_sub(CONSENSUS_WINDOW);
                let mut owned: Vec<&String> = self
                    .names
                    .iter()
                    .filter(|(_, n)| !n.revoked && n.owner == sender)
                    .map(|(k, _)| k)
                    .collect();
                owned.sort();
                let target = owned
                    .into_iter()
                    .find(|name| {
                        (lo..=h).any(|k| {
                            let ch = hex::encode(self.consensus_hash(k));
                            hash128(format!("{name}{ch}").as_bytes()) == *name_consensus_hash
                        })
                    })
                    .cloned()
                    .ok_or("update names no name the sender owns")?;
                self.names.get_mut(&target).expect("found").value_hash = Some(*value_hash);
                self.announce(op, &target, *value_hash);
            }
            BnsOp::NameTransfer {
                keep_data,
                name_hash128,
                ..
            } => {
                let target = self
                    .names
                    .iter()
                    .find(|(k, n)| {
                        !n.revoked && n.owner == sender && hash128(k.as_bytes()) == *name_hash128
                    })
                    .map(|(k, _)| k.clone())
                    .ok_or("transfer of a name the sender does not own")?;
                let owner = recipient.ok_or("transfer has no recipient")?;
                let n = self.names.get_mut(&target).expect("found");
                n.owner = owner;
                if !keep_data {
                    n.value_hash = None;
                }
            }
            BnsOp::NameRevoke { name } => {
                if !self.owned_by(name, &sender) {
                    return Err("revoke by a non-owner");
                }
                let n = self.names.get_mut(name).expect("owned");
                n.revoked = true;
                n.value_hash = None;
            }
            BnsOp::Announce { .. } | BnsOp::TokenTransfer { .. } => {}
        }
        Ok(())
    }
}

fn opcode_char(tx: &BnsTx) -> char {
    match tx.op {
        BnsOp::NamePreorder { .. } => '?',
        BnsOp::NameRegistration { .. } => ':',
        BnsOp::NameUpdate { .. } => '+',
        BnsOp::NameTransfer { .. } => '>',
        BnsOp::NameRevoke { .. } => '~',
        BnsOp::NameImport { .. } => ';',
        BnsOp::NamespacePreorder { .. } => '*',
        BnsOp::NamespaceReveal { .. } => '&',
        BnsOp::NamespaceReady { .. } => '!',
        BnsOp::Announce { .. } => '#',
        BnsOp::TokenTransfer { .. } => '$',
    }
}
