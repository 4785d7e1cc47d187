//! Inventory (range set) decoding: no panic, no huge allocation, and a
//! decoded set encodes back to itself.
#![no_main]

use atlas_core::inventory::RangeSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = RangeSet::decode(data) {
        let again = RangeSet::decode(&set.encode()).expect("an encoded set decodes");
        assert_eq!(again, set);
        let _ = set.count();
    }
});
