//! The BNS wire format out of OP_RETURN payloads, names and namespace ids.
#![no_main]

use atlas::chain::bns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bns::parse_payload(data);
    let _ = bns::validate_name(data);
    let _ = bns::validate_namespace_id(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bns::b40_to_bin(text);
    }
});
