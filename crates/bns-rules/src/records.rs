//! Consensus records: per accepted operation, the values of its opcode's
//! field list (`src/testdata/oracle/opfields.json`) as the original
//! holds them when it hashes: merged rows, Python types, the fee quirk.

use super::py2::PyValue;
use super::state::{CreationOp, NameRec, NamespaceRec, Num, PreorderRec};

fn s(v: &str) -> PyValue {
    PyValue::Str(v.to_string())
}

fn opt(v: &Option<String>) -> PyValue {
    v.as_ref()
        .map_or(PyValue::None, |x| PyValue::Str(x.clone()))
}

fn int(v: impl Into<i128>) -> PyValue {
    PyValue::Int(v.into())
}

/// `op_canonicalize_quirks`: an imported name's fee is hashed as a float
/// (`25600000.0`) by every later transition; any other name's as an int.
pub fn quirk_fee(fee: Num, last_creation_op: CreationOp) -> PyValue {
    match last_creation_op {
        CreationOp::Import => PyValue::Float(fee.as_float()),
        CreationOp::Preorder => PyValue::Int(fee.as_int()),
    }
}

/// NAMEREC_FIELDS of a (merged) name row.
pub fn name_fields(r: &NameRec) -> Vec<PyValue> {
    vec![
        s(&r.name),
        opt(&r.value_hash),
        s(&r.sender),
        opt(&r.sender_pubkey),
        s(&r.address),
        int(r.block_number),
        int(r.preorder_block_number),
        int(r.first_registered),
        int(r.last_renewed),
        PyValue::Bool(r.revoked),
        s(&r.op),
        s(&r.txid),
        int(r.vtxindex),
        quirk_fee(r.op_fee, r.last_creation_op),
        opt(&r.importer),
        opt(&r.importer_address),
    ]
}

/// `:` (registration and renewal) and `;` (import): NAMEREC_FIELDS + sender, address.
pub fn name_with_owner(r: &NameRec) -> Vec<PyValue> {
    let mut v = name_fields(r);
    v.push(s(&r.sender));
    v.push(s(&r.address));
    v
}

/// `?`
pub fn name_preorder(p: &PreorderRec) -> Vec<PyValue> {
    vec![
        s(&p.preorder_hash),
        s(&p.consensus_hash),
        s(&p.sender),
        opt(&p.sender_pubkey),
        s(&p.address),
        int(p.block_number),
        s("?"),
        s(&p.txid),
        int(p.vtxindex),
        int(p.op_fee),
    ]
}

/// `*`
pub fn namespace_preorder(p: &PreorderRec) -> Vec<PyValue> {
    vec![
        s(&p.preorder_hash),
        s(&p.consensus_hash),
        s("*"),
        int(p.op_fee),
        s(&p.txid),
        int(p.vtxindex),
        int(p.block_number),
        s(&p.sender),
        opt(&p.sender_pubkey),
        s(&p.address),
    ]
}

/// `&`; `!` appends the ready block.
pub fn namespace(n: &NamespaceRec, ready: bool) -> Vec<PyValue> {
    let mut v = vec![
        s(&n.namespace_id),
        s(&n.preorder_hash),
        int(n.version),
        s(&n.sender),
        opt(&n.sender_pubkey),
        s(&n.address),
        s(&n.recipient),
        s(&n.recipient_address),
        int(n.block_number),
        int(n.reveal_block),
        s(&n.op),
        s(&n.txid),
        int(n.vtxindex),
        int(n.lifetime),
        int(n.coeff),
        int(n.base),
        PyValue::Str(n.buckets_str()),
        int(n.nonalpha_discount),
        int(n.no_vowel_discount),
    ];
    if ready {
        v.push(int(n.ready_block));
    }
    v
}
