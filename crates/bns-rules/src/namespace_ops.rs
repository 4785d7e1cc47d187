//! The checks of the namespace operations (preorder, reveal, ready) and of
//! TOKEN_TRANSFER, each returning what it would commit.

use super::commit::{Commit, Reject};
use super::extract::{Body, ParsedOp};
use super::name_ops::Ctx;
use super::params::{Feature, Units};
use super::payment::{PAY_TO_BURN, PAY_TO_CREATOR, PAY_WITH_STACKS, STACKS, less};
use super::py2::PyValue;
use super::records;
use super::state::{NamespaceRec, Num, PreorderRec};

pub fn check_namespace_preorder(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NamespacePreorder {
        preorder_hash,
        consensus_hash,
        token_fee,
        op_fee,
        burn_address,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    if c.db.namespace_preorder(preorder_hash).is_some() {
        return Err("namespace preorder hash already in use");
    }
    if !c.db.is_consensus_hash_valid(c.block, consensus_hash) {
        return Err("invalid consensus hash");
    }
    if *burn_address != c.rules.burn_address() {
        return Err("namespace preorder burned to the wrong address");
    }
    let mut commit = Commit::default();
    let (fee, units) = if c.rules.has_feature(c.block, Feature::StacksBuyNamespaces) {
        let fee = token_fee.ok_or("no tokens paid")?;
        let account =
            c.db.account(&op.address, STACKS)
                .ok_or("no token account")?;
        if account.balance() < fee {
            return Err("token balance too low");
        }
        commit.debit = Some((op.address.clone(), STACKS.into(), fee));
        (Some(fee), STACKS.to_string())
    } else {
        (None, "BTC".to_string())
    };
    let rec = PreorderRec {
        preorder_hash: preorder_hash.clone(),
        consensus_hash: consensus_hash.clone(),
        sender: op.sender.clone(),
        sender_pubkey: op.sender_pubkey.clone(),
        address: op.address.clone(),
        block_number: c.block,
        op: '*',
        txid: op.txid.clone(),
        vtxindex: op.vtxindex,
        op_fee: *op_fee,
        burn_address: burn_address.clone(),
        token_fee: fee,
        token_units: units,
    };
    commit.record = records::namespace_preorder(&rec);
    commit.preorder_insert = Some(rec);
    Ok(commit)
}

pub fn check_reveal(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NamespaceReveal {
        namespace_id,
        preorder_hash,
        version,
        lifetime,
        coeff,
        base,
        buckets,
        nonalpha_discount,
        no_vowel_discount,
        recipient,
        recipient_address,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    let last = c.lastblock();
    if c.db.namespace_reveal(c.rules, namespace_id, last).is_some() {
        return Err("namespace is already revealed");
    }
    if c.db.namespace_ready(namespace_id).is_some() {
        return Err("namespace is already ready");
    }
    let p =
        c.db.namespace_preorder(preorder_hash)
            .ok_or("namespace is not preordered")?;
    if p.sender != op.sender {
        return Err("namespace preordered by another sender");
    }
    let has = |f| c.rules.has_feature(c.block, f);
    match *version {
        PAY_TO_CREATOR if !has(Feature::NamespaceBurnToCreator) => {
            return Err("pay-to-creator namespaces are not in this epoch");
        }
        PAY_WITH_STACKS if !has(Feature::NamespacePayWithStacks) => {
            return Err("STACKS namespaces are not in this epoch");
        }
        PAY_TO_BURN | PAY_TO_CREATOR | PAY_WITH_STACKS => {}
        _ => return Err("unsupported namespace version"),
    }
    let tokens_paid = if p.token_units == STACKS {
        let paid = p.token_fee.unwrap_or(0);
        let price = super::price::price_namespace(c.rules, namespace_id, c.block, Units::Stacks)
            .ok_or("invalid namespace id")?;
        if less(paid, &price) {
            return Err("namespace underpaid in tokens");
        }
        paid
    } else {
        // Python 2 compares `fee < None` as false: no price, no minimum.
        let price = super::price::price_namespace(c.rules, namespace_id, c.block, Units::Btc);
        if price.is_some_and(|price| less(p.op_fee, &price)) {
            return Err("namespace underpaid");
        }
        0
    };
    let old = c.db.namespace_at(c.rules, namespace_id, c.block, true);
    let block_number = old.map_or(p.block_number, |old| old.block_number);
    // A re-reveal rewrites the expired row with an UPDATE that must match
    // every field it does not mutate, the preorder's `op_fee` among them
    // (db.py:1492-1513): with another fee it matches no row, and the
    // original aborts.
    let aborts = old
        .filter(|old| match old.op_fee {
            Num::Int(fee) => fee != p.op_fee,
            Num::Float(fee) => fee != p.op_fee as f64,
        })
        .map(|_| "a re-reveal of an expired namespace paid another preorder fee than its first reveal: the original's update matches no row");
    let rec = NamespaceRec {
        namespace_id: namespace_id.clone(),
        preorder_hash: preorder_hash.clone(),
        version: *version,
        sender: op.sender.clone(),
        sender_pubkey: op.sender_pubkey.clone(),
        address: op.address.clone(),
        recipient: recipient.clone(),
        recipient_address: recipient_address.clone(),
        block_number,
        reveal_block: c.block,
        ready_block: 0,
        op: "&".into(),
        txid: op.txid.clone(),
        vtxindex: op.vtxindex,
        lifetime: *lifetime,
        coeff: *coeff,
        base: *base,
        buckets: *buckets,
        nonalpha_discount: *nonalpha_discount,
        no_vowel_discount: *no_vowel_discount,
        op_fee: Num::Int(p.op_fee),
        token_fee: tokens_paid.to_string(),
    };
    Ok(Commit {
        preorder_remove: Some(preorder_hash.clone()),
        record: records::namespace(&rec, false),
        namespace: Some(rec),
        aborts,
        ..Default::default()
    })
}

pub fn check_ready(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NamespaceReady { namespace_id } = &op.body else {
        unreachable!("dispatched by body")
    };
    let revealed =
        c.db.namespace_reveal(c.rules, namespace_id, c.lastblock())
            .ok_or("namespace is not revealed")?;
    if revealed.recipient != op.sender {
        return Err("only the revealer readies a namespace");
    }
    let mut rec = revealed.clone();
    rec.op = "!".into();
    rec.sender = op.sender.clone();
    rec.txid = op.txid.clone();
    rec.vtxindex = op.vtxindex;
    rec.ready_block = c.block;
    Ok(Commit {
        record: records::namespace(&rec, true),
        namespace: Some(rec),
        ..Default::default()
    })
}

pub fn check_token_transfer(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::TokenTransfer {
        consensus_hash,
        token_units,
        token_fee,
        scratch_area,
        recipient,
        recipient_address,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    if !c.rules.has_feature(c.block, Feature::TokenTransfer) {
        return Err("token transfers are not in this epoch");
    }
    if *token_fee <= 0 {
        return Err("zero-value token transfer");
    }
    if op.address == *recipient_address {
        return Err("transfer to the same account");
    }
    let zero = "00".repeat(16);
    let optional = c
        .rules
        .has_feature(c.block, Feature::TokenTransferConsensusHashOptional);
    let waived = optional && *consensus_hash == zero;
    if !waived && !c.db.is_consensus_hash_valid(c.block, consensus_hash) {
        return Err("invalid consensus hash");
    }
    let account =
        c.db.account(&op.address, token_units)
            .ok_or("no token account")?;
    if c.block < account.lock_transfer_block_id {
        return Err("account is locked");
    }
    if account.balance() < *token_fee {
        return Err("token balance too low");
    }
    if c.db
        .account(recipient_address, token_units)
        .is_some_and(|r| !r.receive_whitelisted)
    {
        return Err("recipient account is not whitelisted");
    }
    let s = |v: &str| PyValue::Str(v.to_string());
    Ok(Commit {
        debit: Some((op.address.clone(), token_units.clone(), *token_fee)),
        credit: Some((recipient_address.clone(), token_units.clone(), *token_fee)),
        record: vec![
            s(&op.sender),
            s(&op.address),
            s(recipient),
            s(recipient_address),
            s(token_units),
            s(&token_fee.to_string()),
            PyValue::Int(c.block.into()),
            s("$"),
            s(&op.txid),
            PyValue::Int(op.vtxindex.into()),
            s(consensus_hash),
            s(scratch_area),
        ],
        ..Default::default()
    })
}
