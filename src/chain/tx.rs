//! BNS operations at the transaction level: the payload sits in output 0's
//! OP_RETURN; the new owner is output 1; NAME_IMPORT's zone-file hash is the
//! 20-byte hash of output 2's p2pkh/p2sh script; a `:` transaction with four
//! or more outputs is a renewal. The sender is the script funding input 0,
//! which the caller looks up (it lives in another transaction).

use bitcoin::blockdata::script::Instruction;
use bitcoin::opcodes::all::OP_RETURN;
use bitcoin::{Script, ScriptBuf, Transaction, Txid};

use super::bns::{BnsError, BnsOp, MAGIC, parse_payload};
use crate::zonefile::Hash160;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BnsTx {
    pub txid: Txid,
    pub op: BnsOp,
    /// Output 1's script: the recipient of a register, renew, transfer or import.
    pub recipient: Option<ScriptBuf>,
    /// NAME_IMPORT only: the zone-file hash carried in output 2.
    pub import_hash: Option<Hash160>,
    /// A NAME_REGISTRATION-coded transaction with four or more outputs.
    pub renewal: bool,
}

impl BnsTx {
    /// The zone-file hash this operation announces, if any.
    pub fn zonefile_hash(&self) -> Option<Hash160> {
        match &self.op {
            BnsOp::NameUpdate { value_hash, .. } => Some(*value_hash),
            BnsOp::NameRegistration { value_hash, .. } => *value_hash,
            BnsOp::NameImport { .. } => self.import_hash,
            _ => None,
        }
    }
}

/// The single data push after OP_RETURN, if the script is exactly that.
pub fn op_return_payload(script: &Script) -> Option<&[u8]> {
    let mut ins = script.instructions();
    match ins.next()? {
        Ok(Instruction::Op(op)) if op == OP_RETURN => {}
        _ => return None,
    }
    let data = match ins.next()? {
        Ok(Instruction::PushBytes(p)) => p.as_bytes(),
        _ => return None,
    };
    ins.next().is_none().then_some(data)
}

/// The 20-byte hash inside a p2pkh or p2sh script.
pub fn script_hash20(script: &Script) -> Option<Hash160> {
    let b = script.as_bytes();
    if script.is_p2pkh() {
        Hash160::from_slice(&b[3..23]).ok()
    } else if script.is_p2sh() {
        Hash160::from_slice(&b[2..22]).ok()
    } else {
        None
    }
}

/// `Ok(None)` for transactions that are not BNS operations; `Err` for BNS
/// payloads that are malformed.
pub fn extract(tx: &Transaction) -> Result<Option<BnsTx>, BnsError> {
    let Some(payload) = tx
        .output
        .first()
        .and_then(|o| op_return_payload(&o.script_pubkey))
    else {
        return Ok(None);
    };
    if !payload.starts_with(&MAGIC) {
        return Ok(None);
    }
    let op = parse_payload(payload)?;
    let import_hash = match op {
        BnsOp::NameImport { .. } => Some(
            tx.output
                .get(2)
                .and_then(|o| script_hash20(&o.script_pubkey))
                .ok_or(BnsError::Length {
                    op: "NAME_IMPORT",
                    len: tx.output.len(),
                    expected: "output 2 to be p2pkh or p2sh",
                })?,
        ),
        _ => None,
    };
    Ok(Some(BnsTx {
        txid: tx.compute_txid(),
        renewal: matches!(op, BnsOp::NameRegistration { .. }) && tx.output.len() >= 4,
        recipient: tx.output.get(1).map(|o| o.script_pubkey.clone()),
        import_hash,
        op,
    }))
}
