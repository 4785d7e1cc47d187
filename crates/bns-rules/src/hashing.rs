//! The original's hashes over its text values: `hash_name` (preorder
//! commitments) and `hash256_trunc128`, both as lowercase hex.

use bitcoin::hashes::{Hash, hash160, sha256};

/// The digits of the original's base-40 names, in order.
const B40_CHARSET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz-_.+";

/// `hash256_trunc128`: the first 16 bytes of SHA-256.
pub fn hash128(data: &[u8]) -> [u8; 16] {
    let d = sha256::Hash::hash(data).to_byte_array();
    let mut out = [0; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// A name read as a base-40 number, big-endian without leading zero bytes
/// (`b40_to_bin`). `None` for a character outside base 40.
pub fn b40_to_bin(name: &str) -> Option<Vec<u8>> {
    let mut num: Vec<u8> = vec![0];
    for c in name.bytes() {
        let digit = B40_CHARSET.iter().position(|x| *x == c)? as u32;
        let mut carry = digit;
        for byte in num.iter_mut().rev() {
            let v = u32::from(*byte) * 40 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            num.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    while num.len() > 1 && num[0] == 0 {
        num.remove(0);
    }
    Some(num)
}

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
    Some(hex::encode(hash160::Hash::hash(&data).to_byte_array()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash128_matches_the_documented_vector() {
        let h = hash128(b"jude.id8d8762c37d82360b84cf4d87f32f7754");
        assert_eq!(hex::encode(h), "d1062edb9ec9c85ad1aca6d37f2f5793");
    }

    #[test]
    fn b40_is_a_base_40_number() {
        assert_eq!(b40_to_bin("0").unwrap(), vec![0]);
        assert_eq!(b40_to_bin("a").unwrap(), vec![10]);
        // "10" in base 40 is 40; "100" is 1600 = 0x0640.
        assert_eq!(b40_to_bin("10").unwrap(), vec![40]);
        assert_eq!(b40_to_bin("100").unwrap(), vec![0x06, 0x40]);
        assert_eq!(b40_to_bin("A"), None);
        assert!(hash_name_hex("muneeb.id", "76a9", "1111111111111111111114oLvT2").is_some());
    }
}
