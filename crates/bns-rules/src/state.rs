//! The original indexer's database, as the rules read it: name records,
//! namespaces, outstanding preorders, token accounts and consensus hashes.
//! Every query here answers what the original's SQL answers (expiry windows,
//! `first_registered <= block`, revoked filters), because the checks are
//! written against those answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::params::RuleSet;

/// NAMESPACE_LIFE_INFINITE: names in such a namespace never expire.
pub const LIFE_INFINITE: u64 = 0xffff_ffff;

/// A fee as the original stores it: satoshis, or a float for imported names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    /// Python's `int(x)` (truncation toward zero for floats).
    pub fn as_int(self) -> i128 {
        match self {
            Num::Int(i) => i,
            Num::Float(f) => f.trunc() as i128,
        }
    }

    /// Python's `float(x)`.
    pub fn as_float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Which operation last created a name: its preorder (registration) or an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreationOp {
    Preorder,
    Import,
}

/// One row of `name_records`.
#[derive(Debug, Clone, PartialEq)]
pub struct NameRec {
    pub name: String,
    pub namespace_id: String,
    pub value_hash: Option<String>,
    pub sender: String,
    pub sender_pubkey: Option<String>,
    pub address: String,
    pub block_number: u64,
    pub preorder_block_number: u64,
    pub first_registered: u64,
    pub last_renewed: u64,
    pub revoked: bool,
    pub op: String,
    pub txid: String,
    pub vtxindex: u32,
    pub op_fee: Num,
    pub importer: Option<String>,
    pub importer_address: Option<String>,
    pub preorder_hash: String,
    pub consensus_hash: Option<String>,
    pub last_creation_op: CreationOp,
    pub token_fee: String,
}

/// What the transfer quirk needs of a name's history: each accepted
/// operation's `op` string and, for updates, the consensus hash it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub op: String,
    pub consensus_hash: Option<String>,
}

/// One row of `namespaces` (revealed, or ready when `op == "!"`).
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceRec {
    pub namespace_id: String,
    pub preorder_hash: String,
    pub version: u16,
    pub sender: String,
    pub sender_pubkey: Option<String>,
    pub address: String,
    pub recipient: String,
    pub recipient_address: String,
    pub block_number: u64,
    pub reveal_block: u64,
    pub ready_block: u64,
    pub op: String,
    pub txid: String,
    pub vtxindex: u32,
    pub lifetime: u64,
    pub coeff: u8,
    pub base: u8,
    pub buckets: [u8; 16],
    pub nonalpha_discount: u8,
    pub no_vowel_discount: u8,
    pub op_fee: Num,
    pub token_fee: String,
}

impl NamespaceRec {
    pub fn is_ready(&self) -> bool {
        self.op == "!"
    }

    /// `str(buckets)` as Python 2 prints a list of ints.
    pub fn buckets_str(&self) -> String {
        let items: Vec<String> = self.buckets.iter().map(|b| b.to_string()).collect();
        format!("[{}]", items.join(", "))
    }
}

/// One row of `preorders` (name `?` or namespace `*`), outstanding until a
/// registration or reveal consumes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreorderRec {
    pub preorder_hash: String,
    pub consensus_hash: String,
    pub sender: String,
    pub sender_pubkey: Option<String>,
    pub address: String,
    pub block_number: u64,
    pub op: char,
    pub txid: String,
    pub vtxindex: u32,
    pub op_fee: i128,
    pub burn_address: String,
    /// `None` when the preorder paid in BTC only.
    pub token_fee: Option<i128>,
    pub token_units: String,
}

/// The latest state of one token account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub credit_value: i128,
    pub debit_value: i128,
    pub lock_transfer_block_id: u64,
    pub receive_whitelisted: bool,
}

impl Account {
    pub fn balance(&self) -> i128 {
        self.credit_value - self.debit_value
    }
}

/// The whole indexer state between operations.
#[derive(Debug, Clone, Default)]
pub struct Db {
    /// Written only through `put_name`, which keeps the indexes below.
    names: HashMap<String, NameRec>,
    /// Owner script -> names it holds (any state: queries filter).
    by_sender: HashMap<String, BTreeSet<String>>,
    /// hash256_trunc128(name) -> name.
    by_hash128: HashMap<String, String>,
    /// Preorder hash -> names carrying it.
    by_preorder: HashMap<String, BTreeSet<String>>,
    pub history: HashMap<String, Vec<HistoryEntry>>,
    pub namespaces: HashMap<String, NamespaceRec>,
    pub preorders: HashMap<String, PreorderRec>,
    /// Import keyrings by namespace id; the original caches them on disk
    /// and never rebuilds one, not even for a re-revealed namespace.
    pub keyrings: HashMap<String, Vec<String>>,
    /// (address, token type) -> account.
    pub accounts: HashMap<(String, String), Account>,
    /// Vesting: block -> [(address, token type, amount)].
    pub vesting: BTreeMap<u64, Vec<(String, String, i128)>>,
    /// Consensus hash (hex) per block, genesis rows included.
    pub consensus: BTreeMap<i64, String>,
}

impl Db {
    /// Every name row, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &NameRec> {
        self.names.values()
    }

    /// Inserts or replaces a name row, keeping the indexes.
    pub fn put_name(&mut self, rec: NameRec) {
        if let Some(old) = self.names.get(&rec.name) {
            if let Some(set) = self.by_sender.get_mut(&old.sender) {
                set.remove(&old.name);
            }
            if let Some(set) = self.by_preorder.get_mut(&old.preorder_hash) {
                set.remove(&old.name);
            }
        } else {
            self.by_hash128.insert(
                super::hashing::hash128_hex(rec.name.as_bytes()),
                rec.name.clone(),
            );
        }
        self.by_sender
            .entry(rec.sender.clone())
            .or_default()
            .insert(rec.name.clone());
        self.by_preorder
            .entry(rec.preorder_hash.clone())
            .or_default()
            .insert(rec.name.clone());
        self.names.insert(rec.name.clone(), rec);
    }

    pub fn namespace_of(name: &str) -> &str {
        name.rsplit('.').next().unwrap_or("")
    }

    /// `namedb_select_where_unexpired_names` for one name row at `block`.
    fn unexpired(&self, rules: &RuleSet, rec: &NameRec, block: u64, only_registered: bool) -> bool {
        if only_registered && rec.first_registered > block {
            return false;
        }
        let Some(ns) = self.namespaces.get(&rec.namespace_id) else {
            return false;
        };
        let b = i128::from(block);
        if ns.is_ready() {
            // The original takes the multiplier and grace period of the
            // default namespace rules here, not the name's namespace's.
            let m = i128::from(rules.lifetime_multiplier(block, "*"));
            let g = i128::from(rules.grace_period(block, "*"));
            let span = i128::from(ns.lifetime) * m + g;
            i128::from(ns.ready_block) + span > b || i128::from(rec.last_renewed) + span >= b
        } else {
            ns.reveal_block <= block && block < ns.reveal_block + rules.namespace_reveal_expire
        }
    }

    /// `namedb_get_name(name, block)`: the record if unexpired (and
    /// registered by `block`), or any record with `include_expired`.
    pub fn get_name(
        &self,
        rules: &RuleSet,
        name: &str,
        block: u64,
        include_expired: bool,
    ) -> Option<&NameRec> {
        let rec = self.names.get(name)?;
        (include_expired || self.unexpired(rules, rec, block, true)).then_some(rec)
    }

    /// `namedb_get_names_by_sender`: unexpired, unrevoked names owned by `sender`.
    pub fn names_by_sender(&self, rules: &RuleSet, sender: &str, block: u64) -> Vec<String> {
        // SQLite returns rows in rowid (insertion) order; no rule depends on
        // the order except the update lookup, which takes the first match of
        // a 128-bit hash: collisions are impossible in practice.
        self.by_sender
            .get(sender)
            .into_iter()
            .flatten()
            .filter_map(|n| self.names.get(n))
            .filter(|r| !r.revoked && self.unexpired(rules, r, block, true))
            .map(|r| r.name.clone())
            .collect()
    }

    /// `namedb_get_name_from_name_hash128`.
    pub fn name_from_hash128(&self, rules: &RuleSet, hash128: &str, block: u64) -> Option<String> {
        let name = self.by_hash128.get(hash128)?;
        let r = self.names.get(name)?;
        (!r.revoked && self.unexpired(rules, r, block, true)).then(|| name.clone())
    }

    /// `namedb_get_name_preorder`: an outstanding name preorder, unless an
    /// unexpired name already carries that preorder hash.
    pub fn name_preorder(&self, rules: &RuleSet, hash: &str, block: u64) -> Option<&PreorderRec> {
        let p = self.preorders.get(hash).filter(|p| p.op == '?')?;
        let taken = self
            .by_preorder
            .get(hash)
            .into_iter()
            .flatten()
            .filter_map(|n| self.names.get(n))
            .any(|r| self.unexpired(rules, r, block, true));
        (!taken).then_some(p)
    }

    /// `namedb_get_namespace_preorder`: an outstanding namespace preorder
    /// whose hash no namespace (revealed or ready) has used.
    pub fn namespace_preorder(&self, hash: &str) -> Option<&PreorderRec> {
        let p = self.preorders.get(hash).filter(|p| p.op == '*')?;
        let used = self.namespaces.values().any(|n| n.preorder_hash == hash);
        (!used).then_some(p)
    }

    /// `namedb_get_namespace_reveal`: revealed, not ready, not expired.
    pub fn namespace_reveal(&self, rules: &RuleSet, id: &str, block: u64) -> Option<&NamespaceRec> {
        self.namespaces.get(id).filter(|n| {
            !n.is_ready()
                && n.reveal_block <= block
                && block < n.reveal_block + rules.namespace_reveal_expire
        })
    }

    /// `namedb_get_namespace_ready`.
    pub fn namespace_ready(&self, id: &str) -> Option<&NamespaceRec> {
        self.namespaces.get(id).filter(|n| n.is_ready())
    }

    /// `namedb_get_namespace(id, block, include_expired)`: ready, or revealed
    /// (by `block`, and unexpired unless `include_expired`).
    pub fn namespace_at(
        &self,
        rules: &RuleSet,
        id: &str,
        block: u64,
        include_expired: bool,
    ) -> Option<&NamespaceRec> {
        self.namespaces.get(id).filter(|n| {
            n.is_ready()
                || (n.reveal_block <= block
                    && (include_expired || block < n.reveal_block + rules.namespace_reveal_expire))
        })
    }

    /// `is_name_in_grace_period(name, block)`.
    pub fn in_grace_period(&self, rules: &RuleSet, name: &str, block: u64) -> bool {
        let Some(rec) = self.get_name(rules, name, block, false) else {
            return false;
        };
        let Some(ns) = self.namespace_at(rules, Self::namespace_of(name), block, false) else {
            return false;
        };
        if !ns.is_ready() {
            return false;
        }
        let m = u128::from(rules.lifetime_multiplier(block, &ns.namespace_id));
        let g = u128::from(rules.grace_period(block, &ns.namespace_id));
        let expire = u128::from(ns.ready_block.max(rec.last_renewed)) + u128::from(ns.lifetime) * m;
        let b = u128::from(block);
        expire <= b && b < expire + g
    }

    /// `is_name_registered` at `lastblock`: unexpired and not revoked.
    pub fn is_registered(&self, rules: &RuleSet, name: &str, lastblock: u64) -> bool {
        self.get_name(rules, name, lastblock, false)
            .is_some_and(|r| !r.revoked)
    }

    /// `is_name_revoked` at `lastblock`.
    pub fn is_revoked(&self, rules: &RuleSet, name: &str, lastblock: u64) -> bool {
        self.get_name(rules, name, lastblock, false)
            .is_some_and(|r| r.revoked)
    }

    /// `is_name_owner`: registered and owned by `sender`.
    pub fn is_owner(&self, rules: &RuleSet, name: &str, sender: &str, lastblock: u64) -> bool {
        self.is_registered(rules, name, lastblock)
            && self
                .get_name(rules, name, lastblock, false)
                .is_some_and(|r| r.sender == sender)
    }

    /// `get_valid_consensus_hashes`: the snapshots of blocks `block-24 ..= block`.
    pub fn valid_consensus_hashes(&self, block: u64) -> Vec<&str> {
        let hi = block as i64;
        self.consensus
            .range(hi - 24..=hi)
            .map(|(_, c)| c.as_str())
            .collect()
    }

    pub fn is_consensus_hash_valid(&self, block: u64, ch: &str) -> bool {
        self.valid_consensus_hashes(block).contains(&ch)
    }

    /// `get_block_from_consensus`: the (last) block with this snapshot.
    pub fn block_from_consensus(&self, ch: &str) -> Option<i64> {
        self.consensus
            .iter()
            .rev()
            .find(|(_, c)| c.as_str() == ch)
            .map(|(b, _)| *b)
    }

    pub fn account(&self, address: &str, token_type: &str) -> Option<&Account> {
        self.accounts
            .get(&(address.to_string(), token_type.to_string()))
    }

    /// Debits an account the checks found solvent.
    pub fn debit(&mut self, address: &str, token_type: &str, amount: i128) {
        if let Some(a) = self
            .accounts
            .get_mut(&(address.to_string(), token_type.to_string()))
        {
            a.debit_value += amount;
        }
    }

    /// Credits an account, creating it (unlocked, whitelisted) if new.
    pub fn credit(&mut self, address: &str, token_type: &str, amount: i128) {
        self.accounts
            .entry((address.to_string(), token_type.to_string()))
            .or_insert(Account {
                credit_value: 0,
                debit_value: 0,
                lock_transfer_block_id: 0,
                receive_whitelisted: true,
            })
            .credit_value += amount;
    }

    /// Vests the allocations scheduled for `block`.
    pub fn vest(&mut self, block: u64) {
        if let Some(rows) = self.vesting.get(&block).cloned() {
            for (addr, ty, amount) in rows {
                self.credit(&addr, &ty, amount);
            }
        }
    }
}
