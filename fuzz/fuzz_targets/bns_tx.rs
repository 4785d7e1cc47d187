//! Bitcoin transactions as the follower reads them: the rules' parser
//! (senders, outputs, payloads per epoch).
#![no_main]

use bitcoin::Transaction;
use bns_rules::extract::parse_tx;
use bns_rules::params::RuleSet;
use bns_rules::txparse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&height_byte, raw)) = data.split_first() else {
        return;
    };
    let Ok(t) = bitcoin::consensus::deserialize::<Transaction>(raw) else {
        return;
    };
    let _ = txparse::nulldata_payload(&t);
    // Each input's scriptSig stands in for the script it spends.
    let prevouts: Vec<Vec<u8>> = t
        .input
        .iter()
        .map(|i| i.script_sig.as_bytes().to_vec())
        .collect();
    for p in &prevouts {
        let _ = txparse::classify_script(p);
        let _ = txparse::script_to_address(p, false);
    }
    let rules = RuleSet::mainnet();
    // Heights across the mainnet epochs.
    let height = 373_601 + u64::from(height_byte) * 2_000;
    let _ = parse_tx(&rules, height, 1, &t, &prevouts);
});
