//! Scripts the follower watches and saves: the burn address, BNS-looking
//! transactions, and the length-prefixed form inputs' scripts are saved in.

use bitcoin::{ScriptBuf, Transaction};

use bns_rules::txparse;

/// The p2pkh script of hash160 0x00…00 (`1111111111111111111114oLvT2`),
/// where preorders burn their fees.
pub fn burn_script() -> ScriptBuf {
    ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_raw_hash(
        bitcoin::hashes::Hash::all_zeros(),
    ))
}

/// Length-prefixed scripts, as saved beside each transaction.
pub(super) fn encode_scripts(scripts: &[ScriptBuf]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in scripts {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

pub(super) fn decode_scripts(mut b: &[u8]) -> Option<Vec<ScriptBuf>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        out.push(ScriptBuf::from_bytes(b.get(4..4 + len)?.to_vec()));
        b = &b[4 + len..];
    }
    Some(out)
}

/// A transaction whose OP_RETURN starts with the BNS magic bytes.
pub(super) fn looks_like_bns(tx: &Transaction) -> bool {
    !tx.is_coinbase() && txparse::nulldata_payload(tx).is_some_and(|d| d.starts_with(b"id"))
}
