//! Every message decoder of the four Atlas protocols, requests and responses:
//! no input panics, and whatever decodes encodes back to something that
//! decodes to the same message.
#![no_main]

use atlas_core::Protocol;
use atlas_wire as wire;

use libfuzzer_sys::fuzz_target;

const PROTOCOLS: [Protocol; 4] = [
    Protocol::Peers,
    Protocol::Inventory,
    Protocol::Zonefiles,
    Protocol::Push,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let protocol = PROTOCOLS[usize::from(selector % 4)];
    if selector & 4 == 0 {
        if let Ok(req) = wire::decode_request(protocol, body) {
            let again = wire::decode_request(protocol, &wire::encode_request(&req));
            assert_eq!(again.as_ref().ok(), Some(&req), "request round trip");
        }
    } else if let Ok(resp) = wire::decode_response(protocol, body) {
        let again = wire::decode_response(protocol, &wire::encode_response(&resp));
        assert_eq!(again.as_ref().ok(), Some(&resp), "response round trip");
    }
});
