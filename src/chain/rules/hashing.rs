//! The original's hashes over its text values: `hash_name` (preorder
//! commitments) and `hash256_trunc128`, both as lowercase hex.

use crate::chain::bns::{b40_to_bin, hash128};
use crate::zonefile::Hash160;

/// `hash256_trunc128(data)` as hex.
pub fn hash128_hex(data: &[u8]) -> String {
    hex::encode(hash128(data))
}

/// `hash_name(name, script_pubkey_hex, register_addr)` as hex: hash160 of
/// the name read as a base-40 number, the script bytes and the address text.
/// `None` where the original raises (a character outside base 40, bad hex).
pub fn hash_name_hex(name: &str, script_hex: &str, register_addr: &str) -> Option<String> {
    let mut data = b40_to_bin(name)?;
    data.extend_from_slice(&hex::decode(script_hex).ok()?);
    data.extend_from_slice(register_addr.as_bytes());
    Some(hex::encode(Hash160::of(&data).0))
}

/// The script a base58check address stands for (p2pkh for versions 0 and
/// 111, p2sh for 5 and 196), as the follower watches it.
pub fn address_script(address: &str) -> Option<bitcoin::ScriptBuf> {
    use bitcoin::hashes::Hash;
    let raw = bitcoin::base58::decode_check(address).ok()?;
    let (version, hash) = raw.split_first()?;
    let hash: [u8; 20] = hash.try_into().ok()?;
    match version {
        0 | 111 => Some(bitcoin::ScriptBuf::new_p2pkh(
            &bitcoin::PubkeyHash::from_byte_array(hash),
        )),
        5 | 196 => Some(bitcoin::ScriptBuf::new_p2sh(
            &bitcoin::ScriptHash::from_byte_array(hash),
        )),
        _ => None,
    }
}
