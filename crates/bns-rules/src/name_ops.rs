//! The checks of the name operations (preorder, registration, renewal,
//! update, transfer, revoke, import), each returning what it would commit.
//! Reads happen at `lastblock` (the block before) where the original reads
//! at its `lastblock`, and at the current block where it does.

use super::commit::{Commit, Reject};
use super::extract::{Body, ParsedOp};
use super::hashing::{hash_name_hex, hash128_hex};
use super::params::{Feature, RuleSet};
use super::payment::{Paid, PaymentCheck, STACKS, TokenOffer};
use super::py2::PyValue;
use super::records;
use super::state::{CreationOp, Db, HistoryEntry, LIFE_INFINITE, NameRec, Num, PreorderRec};
use super::txparse;

mod changes;

pub use changes::{check_import, check_revoke, check_transfer, check_update};

pub const MAX_NAMES_PER_SENDER: usize = 25;

/// What a check may read.
pub struct Ctx<'a> {
    pub rules: &'a RuleSet,
    pub db: &'a Db,
    pub block: u64,
    /// New owners of the registrations checked earlier in this block.
    pub registered_to: &'a [String],
}

impl Ctx<'_> {
    pub fn lastblock(&self) -> u64 {
        self.block - 1
    }

    fn has(&self, f: Feature) -> bool {
        self.rules.has_feature(self.block, f)
    }

    /// `get_num_names_owned`: this block's registrations plus names held.
    fn names_owned(&self, owner: &str) -> usize {
        self.registered_to.iter().filter(|s| *s == owner).count()
            + self
                .db
                .names_by_sender(self.rules, owner, self.lastblock())
                .len()
    }

    fn name(&self, name: &str) -> Option<&NameRec> {
        self.db.get_name(self.rules, name, self.lastblock(), false)
    }

    fn is_p2sh_address(&self, address: &str) -> bool {
        txparse::b58check_decode(address).is_some_and(|(v, _)| v == self.rules.p2sh_version)
    }
}

fn namespace_of(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or("")
}

fn label_of(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(l, _)| l)
}

pub fn check_preorder(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NamePreorder {
        preorder_hash,
        consensus_hash,
        token_fee,
        token_units,
        op_fee,
        burn_address,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    if c.db
        .name_preorder(c.rules, preorder_hash, c.lastblock())
        .is_some()
    {
        return Err("name hash is already preordered");
    }
    if !c.db.is_consensus_hash_valid(c.block, consensus_hash) {
        return Err("invalid consensus hash");
    }
    if c.names_owned(&op.sender) >= MAX_NAMES_PER_SENDER {
        return Err("sender exceeded the name quota");
    }
    let mut commit = Commit::default();
    let (fee, units) = match (token_fee, token_units) {
        (Some(fee), Some(units)) if c.has(Feature::NameopsCostTokens) => {
            let account = c.db.account(&op.address, units).ok_or("no token account")?;
            if account.balance() < *fee {
                return Err("token balance too low");
            }
            if *burn_address != c.rules.burn_address() {
                return Err("preorder burned to the wrong address");
            }
            if units != STACKS {
                return Err("unrecognized token unit");
            }
            commit.debit = Some((op.address.clone(), units.clone(), *fee));
            (Some(*fee), units.clone())
        }
        _ => (None, "BTC".to_string()),
    };
    let rec = PreorderRec {
        preorder_hash: preorder_hash.clone(),
        consensus_hash: consensus_hash.clone(),
        sender: op.sender.clone(),
        sender_pubkey: op.sender_pubkey.clone(),
        address: op.address.clone(),
        block_number: c.block,
        op: '?',
        txid: op.txid.clone(),
        vtxindex: op.vtxindex,
        op_fee: *op_fee,
        burn_address: burn_address.clone(),
        token_fee: fee,
        token_units: units,
    };
    commit.record = records::name_preorder(&rec);
    commit.preorder_insert = Some(rec);
    Ok(commit)
}

pub fn check_registration(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NameRegistration {
        name,
        value_hash,
        recipient,
        recipient_address,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    let last = c.lastblock();
    if c.db.is_revoked(c.rules, name, last) {
        return Err("name is revoked");
    }
    let ns_id = namespace_of(name);
    let ns =
        c.db.namespace_ready(ns_id)
            .ok_or("namespace is not ready")?;
    if c.names_owned(recipient) >= MAX_NAMES_PER_SENDER {
        return Err("recipient exceeded the name quota");
    }
    if c.is_p2sh_address(recipient_address) && !c.has(Feature::Multisig) {
        return Err("multisig recipient before multisig was allowed");
    }
    // get_name_preorder: only for an unregistered name in a ready namespace,
    // and only while the preorder is younger than the namespace's lifetime.
    let preorder = if c.name(name).is_some() {
        None
    } else {
        let hash = hash_name_hex(name, &op.sender, recipient_address).ok_or("bad name")?;
        c.db.name_preorder(c.rules, &hash, last).filter(|p| {
            let m = u128::from(c.rules.lifetime_multiplier(last, ns_id));
            u128::from(p.block_number) + u128::from(ns.lifetime) * m > u128::from(last)
        })
    };
    let old = c.db.get_name(c.rules, name, last, true);
    let p = preorder.ok_or("name is not preordered by the sender")?;
    if c.has(Feature::FixPreorderExpire) && p.block_number + c.rules.name_preorder_expire < c.block
    {
        return Err("preorder expired");
    }
    if c.db.is_registered(c.rules, name, last) {
        return Err("name is already registered");
    }
    if p.block_number < ns.ready_block {
        return Err("preordered before the namespace was ready");
    }
    if p.sender != op.sender {
        return Err("preordered by another sender");
    }
    let tokens = (p.token_units == STACKS).then(|| TokenOffer {
        units: p.token_units.clone(),
        amount: p.token_fee.unwrap_or(0),
    });
    let paid = PaymentCheck {
        rules: c.rules,
        ns,
        label: label_of(name),
        fee_block: p.block_number,
        block: c.block,
        burn_address: &p.burn_address,
        name_fee: p.op_fee,
        tokens,
    }
    .check()?;
    let token_fee = match paid {
        Paid::Btc => 0,
        Paid::Tokens(t) => t,
    };
    if value_hash.is_some() && !c.has(Feature::OpRegisterUpdate) {
        return Err("zone-file hash in a registration before that was allowed");
    }
    let rec = NameRec {
        name: name.clone(),
        namespace_id: ns_id.to_string(),
        value_hash: value_hash.clone(),
        sender: recipient.clone(),
        sender_pubkey: op.sender_pubkey.clone(),
        address: recipient_address.clone(),
        block_number: old.map_or(p.block_number, |o| o.block_number),
        preorder_block_number: p.block_number,
        first_registered: c.block,
        last_renewed: c.block,
        revoked: false,
        op: ":".into(),
        txid: op.txid.clone(),
        vtxindex: op.vtxindex,
        op_fee: Num::Int(p.op_fee),
        importer: None,
        importer_address: None,
        preorder_hash: p.preorder_hash.clone(),
        consensus_hash: None,
        last_creation_op: CreationOp::Preorder,
        token_fee: token_fee.to_string(),
    };
    Ok(Commit {
        preorder_remove: Some(p.preorder_hash.clone()),
        history: vec![
            HistoryEntry {
                op: "?".into(),
                consensus_hash: Some(p.consensus_hash.clone()),
            },
            HistoryEntry {
                op: ":".into(),
                consensus_hash: None,
            },
        ],
        record: records::name_with_owner(&rec),
        announces: rec.value_hash.clone(),
        registers_to: Some(rec.sender.clone()),
        name: Some(rec),
        ..Default::default()
    })
}

pub fn check_renewal(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NameRenewal {
        name,
        value_hash,
        recipient,
        recipient_address,
        op_fee,
        burn_address,
        token_fee,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    let last = c.lastblock();
    let rtu = c.has(Feature::OpRenewTransferUpdate);
    if (op.sender != *recipient || op.address != *recipient_address) && !rtu {
        return Err("renewal recipient is not the sender");
    }
    if c.db.is_revoked(c.rules, name, last) {
        return Err("name is revoked");
    }
    let ns =
        c.db.namespace_ready(namespace_of(name))
            .ok_or("namespace is not ready")?;
    if c.names_owned(recipient) >= MAX_NAMES_PER_SENDER {
        return Err("recipient exceeded the name quota");
    }
    if !c.db.is_registered(c.rules, name, last) {
        return Err("name is not registered");
    }
    if !c.db.is_owner(c.rules, name, recipient, last) && !rtu {
        return Err("name is not owned by the recipient");
    }
    if !c.db.is_owner(c.rules, name, &op.sender, last) {
        return Err("name is not owned by the sender");
    }
    let prev = c.name(name).ok_or("name is not registered")?;
    let tokens = (*token_fee != 0).then(|| TokenOffer {
        units: STACKS.into(),
        amount: *token_fee,
    });
    let paid = PaymentCheck {
        rules: c.rules,
        ns,
        label: label_of(name),
        fee_block: c.block,
        block: c.block,
        burn_address,
        name_fee: *op_fee,
        tokens,
    }
    .check()?;
    let mut commit = Commit::default();
    let paid_tokens = match paid {
        Paid::Btc => 0,
        Paid::Tokens(t) => {
            let account =
                c.db.account(&op.address, STACKS)
                    .ok_or("renewer has no token account")?;
            if account.balance() < t {
                return Err("renewer's token balance too low");
            }
            commit.debit = Some((op.address.clone(), STACKS.into(), t));
            t
        }
    };
    let mut rec = prev.clone();
    if rtu && value_hash.is_some() {
        rec.value_hash = value_hash.clone();
    }
    rec.sender = recipient.clone();
    rec.address = recipient_address.clone();
    rec.last_renewed = c.block;
    rec.revoked = false;
    rec.op = "::".into();
    rec.txid = op.txid.clone();
    rec.vtxindex = op.vtxindex;
    rec.op_fee = Num::Int(*op_fee);
    rec.token_fee = paid_tokens.to_string();
    commit.history = vec![HistoryEntry {
        op: "::".into(),
        consensus_hash: rec.consensus_hash.clone(),
    }];
    commit.record = records::name_with_owner(&rec);
    commit.announces = rec.value_hash.clone();
    commit.name = Some(rec);
    Ok(commit)
}

/// Expiry as updates and transfers test it: expired at `lastblock`, or in
/// the renewal grace period at the current block.
fn expired_or_in_grace(c: &Ctx, name: &str, expiry_at: u64) -> Result<(), Reject> {
    if c.db.get_name(c.rules, name, expiry_at, false).is_none() {
        return Err("name is expired");
    }
    if c.db.in_grace_period(c.rules, name, c.block) {
        return Err("name is in its renewal grace period");
    }
    Ok(())
}
