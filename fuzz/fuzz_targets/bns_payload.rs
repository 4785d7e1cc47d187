//! BNS payloads as the node's parser (`bns_rules::extract`) reads them: the
//! input is an OP_RETURN payload behind the `id` magic, in a transaction
//! shaped like a BNS operation (nulldata first, then p2pkh outputs), parsed
//! at heights across the mainnet epochs; also names, namespace ids and
//! base-40 text on their own.
#![no_main]

use bitcoin::hashes::Hash;
use bitcoin::script::PushBytesBuf;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, PubkeyHash, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
    absolute::LockTime,
};
use bns_rules::extract::{is_name_valid, is_namespace_valid, parse_tx};
use bns_rules::hashing::b40_to_bin;
use bns_rules::params::RuleSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = is_name_valid(data);
    let _ = is_namespace_valid(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = b40_to_bin(text);
    }
    let Some((&height_byte, payload)) = data.split_first() else {
        return;
    };
    let mut bytes = b"id".to_vec();
    bytes.extend_from_slice(payload);
    let Ok(push) = PushBytesBuf::try_from(bytes) else {
        return;
    };
    let p2pkh = |b: u8| ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array([b; 20]));
    let tx = Transaction {
        version: Version::ONE,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: [ScriptBuf::new_op_return(push), p2pkh(1), p2pkh(2), p2pkh(3)]
            .into_iter()
            .map(|script_pubkey| TxOut {
                value: Amount::from_sat(5_500),
                script_pubkey,
            })
            .collect(),
    };
    let rules = RuleSet::mainnet();
    let height = 373_601 + u64::from(height_byte) * 2_000;
    let _ = parse_tx(&rules, height, 1, &tx, &[p2pkh(4).to_bytes()]);
});
