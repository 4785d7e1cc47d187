//! The checks that change a registered name: update, transfer, revoke, and
//! the namespace's imports.

use super::*;

pub fn check_update(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NameUpdate {
        name_consensus_hash,
        value_hash,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    let last = c.lastblock();
    let owned = c.db.names_by_sender(c.rules, &op.sender, last);
    if owned.len() > MAX_NAMES_PER_SENDER {
        return Err("sender exceeded the name quota");
    }
    // The consensus hashes of the last 24 blocks (the current one has none yet).
    let lo = c.block.saturating_sub(24) as i64;
    let mut candidates: Vec<&str> = Vec::new();
    for (_, ch) in c.db.consensus.range(lo..=c.block as i64) {
        if !candidates.contains(&ch.as_str()) {
            candidates.push(ch);
        }
    }
    let (name, ch) = owned
        .iter()
        .find_map(|n| {
            candidates
                .iter()
                .find(|ch| hash128_hex(format!("{n}{ch}").as_bytes()) == *name_consensus_hash)
                .map(|ch| (n.clone(), ch.to_string()))
        })
        .ok_or("no name of the sender matches the name consensus hash")?;
    let rec = c.name(&name).ok_or("name does not exist")?;
    let ns =
        c.db.namespace_ready(namespace_of(&name))
            .ok_or("namespace is not ready")?;
    if c.db.is_revoked(c.rules, &name, last) {
        return Err("name is revoked");
    }
    if ns.lifetime != LIFE_INFINITE {
        expired_or_in_grace(c, &name, last)?;
    }
    if !c.db.is_owner(c.rules, &name, &op.sender, last) {
        return Err("name is not owned by the sender");
    }
    let mut rec = rec.clone();
    rec.value_hash = Some(value_hash.clone());
    rec.sender = op.sender.clone();
    rec.address = op.address.clone();
    rec.op = "+".into();
    rec.txid = op.txid.clone();
    rec.vtxindex = op.vtxindex;
    rec.consensus_hash = Some(ch.clone());
    let mut record = records::name_fields(&rec);
    record.push(PyValue::Str(hash128_hex(format!("{name}{ch}").as_bytes())));
    record.push(PyValue::Str(ch.clone()));
    Ok(Commit {
        history: vec![HistoryEntry {
            op: "+".into(),
            consensus_hash: Some(ch),
        }],
        record,
        announces: Some(value_hash.clone()),
        name: Some(rec),
        ..Default::default()
    })
}

/// The transfer quirk: the consensus hash of the name's latest update since
/// its latest registration or import, else the transfer's own.
fn transfer_consensus_hash(db: &Db, name: &str, own: &str) -> String {
    for h in db.history.get(name).into_iter().flatten().rev() {
        match h.op.as_str() {
            ":" | ";" => break,
            "+" => return h.consensus_hash.clone().unwrap_or_default(),
            _ => {}
        }
    }
    own.to_string()
}

pub fn check_transfer(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NameTransfer {
        name_hash128,
        consensus_hash,
        keep_data,
        recipient,
        recipient_address,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    let last = c.lastblock();
    let name =
        c.db.name_from_hash128(c.rules, name_hash128, last)
            .ok_or("no name has this hash")?;
    let rec = c.name(&name).ok_or("name does not exist")?;
    if c.db.namespace_ready(namespace_of(&name)).is_none() {
        return Err("namespace is not ready");
    }
    if c.db.is_revoked(c.rules, &name, last) {
        return Err("name is revoked");
    }
    expired_or_in_grace(c, &name, last)?;
    if !c.db.is_consensus_hash_valid(c.block, consensus_hash) {
        return Err("invalid consensus hash");
    }
    if op.sender == *recipient {
        return Err("sender is the recipient");
    }
    if !c.db.is_owner(c.rules, &name, &op.sender, last) {
        return Err("name is not owned by the sender");
    }
    let held = c.db.names_by_sender(c.rules, recipient, last);
    if held.contains(&name) {
        return Err("recipient already owns the name");
    }
    if held.len() >= MAX_NAMES_PER_SENDER {
        return Err("recipient exceeded the name quota");
    }
    let sender_p2sh =
        hex::decode(&op.sender).is_ok_and(|s| bitcoin::Script::from_bytes(&s).is_p2sh());
    if sender_p2sh && !c.has(Feature::Multisig) {
        return Err("p2sh sender before multisig was allowed");
    }
    if c.db.block_from_consensus(consensus_hash).is_none() {
        return Err("unknown consensus hash");
    }
    let ch = transfer_consensus_hash(c.db, &name, consensus_hash);
    let mut rec = rec.clone();
    rec.sender = recipient.clone();
    rec.address = recipient_address.clone();
    rec.sender_pubkey = None;
    if !keep_data {
        rec.value_hash = None;
    }
    rec.op = if *keep_data { ">>" } else { ">~" }.into();
    rec.txid = op.txid.clone();
    rec.vtxindex = op.vtxindex;
    rec.consensus_hash = Some(ch.clone());
    let mut record = records::name_fields(&rec);
    record.push(PyValue::Str(hash128_hex(name.as_bytes())));
    record.push(PyValue::Str(ch));
    record.push(PyValue::Bool(*keep_data));
    Ok(Commit {
        history: vec![HistoryEntry {
            op: rec.op.clone(),
            consensus_hash: rec.consensus_hash.clone(),
        }],
        record,
        name: Some(rec),
        ..Default::default()
    })
}

pub fn check_revoke(c: &Ctx, op: &ParsedOp) -> Result<Commit, Reject> {
    let Body::NameRevoke { name } = &op.body else {
        unreachable!("dispatched by body")
    };
    let last = c.lastblock();
    let rec = c.name(name).ok_or("name does not exist")?;
    if c.db.namespace_ready(namespace_of(name)).is_none() {
        return Err("namespace is not ready");
    }
    if c.db.is_revoked(c.rules, name, last) {
        return Err("name is revoked");
    }
    // Revokes test expiry at the current block, not at lastblock.
    expired_or_in_grace(c, name, c.block)?;
    if !c.db.is_owner(c.rules, name, &op.sender, last) {
        return Err("name is not owned by the sender");
    }
    let mut rec = rec.clone();
    rec.revoked = true;
    rec.value_hash = None;
    rec.sender = op.sender.clone();
    rec.address = op.address.clone();
    rec.op = "~".into();
    rec.txid = op.txid.clone();
    rec.vtxindex = op.vtxindex;
    Ok(Commit {
        history: vec![HistoryEntry {
            op: "~".into(),
            consensus_hash: rec.consensus_hash.clone(),
        }],
        record: records::name_fields(&rec),
        name: Some(rec),
        ..Default::default()
    })
}

/// A NAME_IMPORT. Builds the namespace's keyring on its first import; the
/// engine keeps it (`Db::keyrings`) even if the import is later refused.
pub fn check_import(
    c: &Ctx,
    op: &ParsedOp,
    keyring_out: &mut Option<(String, Vec<String>)>,
) -> Result<Commit, Reject> {
    let Body::NameImport {
        name,
        value_hash,
        recipient,
        recipient_address,
    } = &op.body
    else {
        unreachable!("dispatched by body")
    };
    let last = c.lastblock();
    let fresh_preorder_hash =
        hash_name_hex(name, &op.sender, recipient_address).ok_or("bad name")?;
    let pubkey = op
        .sender_pubkey
        .as_ref()
        .ok_or("imports need a p2pkh sender with a public key")?;
    let ns_id = namespace_of(name);
    let ns =
        c.db.namespace_reveal(c.rules, ns_id, last)
            .ok_or("namespace is not revealed")?;
    let sender_address =
        txparse::pubkey_address(pubkey, c.rules.testnet).ok_or("invalid public key")?;
    let keyring = match c.db.keyrings.get(ns_id) {
        Some(k) => k.clone(),
        None => {
            if sender_address != ns.recipient_address {
                return Err("the first import must come from the revealer");
            }
            let key = hex::decode(pubkey).map_err(|_| "invalid public key")?;
            let k: Vec<String> =
                super::super::keyring::import_keyring(&key, c.rules.name_import_keyring_size)
                    .map_err(|_| "invalid public key")?
                    .into_iter()
                    .map(|h| txparse::hash160_to_address(h, c.rules.p2pkh_version))
                    .collect();
            *keyring_out = Some((ns_id.to_string(), k.clone()));
            k
        }
    };
    if !keyring.contains(&sender_address) {
        return Err("sender is not in the import keyring");
    }
    let mut rec = NameRec {
        name: name.clone(),
        namespace_id: ns_id.to_string(),
        value_hash: Some(value_hash.clone()),
        sender: recipient.clone(),
        sender_pubkey: Some(pubkey.clone()),
        address: recipient_address.clone(),
        block_number: c.block,
        preorder_block_number: c.block,
        first_registered: c.block,
        last_renewed: c.block,
        revoked: false,
        op: ";".into(),
        txid: op.txid.clone(),
        vtxindex: op.vtxindex,
        op_fee: Num::Float(0.0),
        importer: Some(op.sender.clone()),
        importer_address: Some(sender_address),
        preorder_hash: fresh_preorder_hash,
        consensus_hash: None,
        last_creation_op: CreationOp::Import,
        token_fee: "0".into(),
    };
    // is_earlier_than compares the old row's block_number (its first
    // block) with its last vtxindex: kept as the original has it.
    if let Some(prev) = c.name(name)
        && (prev.block_number < c.block
            || (prev.block_number == c.block && prev.vtxindex < op.vtxindex))
    {
        rec.preorder_block_number = prev.preorder_block_number;
        rec.block_number = prev.block_number;
        rec.first_registered = prev.first_registered;
        rec.last_renewed = prev.last_renewed;
        rec.preorder_hash = prev.preorder_hash.clone();
    }
    let price = super::super::payment::name_price(c.rules, ns, label_of(name), c.block);
    if ns.version == super::super::payment::PAY_WITH_STACKS {
        rec.op_fee = Num::Int(0);
        rec.token_fee = price.to_long().to_string();
    } else {
        rec.op_fee = Num::Float(price.to_f64());
    }
    // An import over an existing name rewrites its row, and the original
    // aborts where that write fails: it checks the name again at this block
    // rather than the last (db.py:1905-1909), so in the block where the
    // namespace's reveal expires it finds none; and its UPDATE must match
    // the row's `token_fee`, which an STX price that changed (another
    // epoch, or a namespace revealed again with other prices) does not.
    let existing = c.db.get_name(c.rules, name, c.block, true);
    let aborts = match existing {
        Some(_) if c.db.get_name(c.rules, name, c.block, false).is_none() => Some(
            "an import over an existing name in the block where its namespace's reveal expires: the original's write finds no name",
        ),
        Some(old) if old.token_fee != rec.token_fee => Some(
            "an import over an existing name at another token fee than its row's: the original's update matches no row",
        ),
        _ => None,
    };
    Ok(Commit {
        aborts,
        history: vec![HistoryEntry {
            op: ";".into(),
            consensus_hash: None,
        }],
        record: records::name_with_owner(&rec),
        announces: rec.value_hash.clone(),
        name: Some(rec),
        ..Default::default()
    })
}
