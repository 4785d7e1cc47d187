//! The NAME_IMPORT keyring (`bs/operations/nameimport.py:171-185`,
//! `bs/nameset/namedb.py:365-428`).
//!
//! The first import into a revealed namespace must come from the revealer's
//! address. Its public key then seeds the keyring: the original wraps the key
//! as a BIP32 xpub with a zero chain code (depth 0, fingerprint 0, child
//! number 0; keychain's `PublicKeychain.from_public_key`), derives
//! non-hardened children 0..size, and takes each child's p2pkh address from
//! its *compressed* key (bitmerchant's `Wallet.to_address`). The importer's
//! own address is appended last, hashed from the key in the form the
//! transaction carried it. Later imports must come from one of these
//! addresses. The original caches the list per namespace ID on disk and
//! never rebuilds it.

use bitcoin::NetworkKind;
use bitcoin::bip32::{ChainCode, ChildNumber, Fingerprint, Xpub};
use bitcoin::hashes::{Hash, hash160};
use bitcoin::secp256k1::{PublicKey, Secp256k1};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    /// Not a public key keylib accepts (33 bytes 02/03, 65 bytes 04, or 64
    /// bytes of bare coordinates) on the curve; the original never gets such
    /// a key as an importer's `sender_pubkey`.
    #[error("not a public key the original accepts")]
    InvalidPublicKey,
    /// BIP32 derivation failed (probability ~2^-127); the original raises.
    #[error("keyring child {0} cannot be derived")]
    Derivation(u32),
}

/// The hash160s of the addresses allowed to send NAME_IMPORTs, in the
/// original's order: children `0..size` of `first_importer_pubkey` (as
/// compressed p2pkh), then the first importer's own p2pkh hash160.
///
/// `first_importer_pubkey` is the key from the first import's scriptSig as
/// it appears there: compressed (33 bytes), uncompressed (65 bytes, 0x04) or,
/// as keylib also takes it, the 64 bare coordinate bytes (hashed as 0x04 ||
/// xy for the own address). Hybrid keys (0x06/0x07), which libsecp256k1
/// would parse, are refused as keylib refuses them. `size` is
/// [`RuleSet::name_import_keyring_size`](super::params::RuleSet).
pub fn import_keyring(
    first_importer_pubkey: &[u8],
    size: u32,
) -> Result<Vec<[u8; 20]>, KeyringError> {
    let as_given: Vec<u8> = match first_importer_pubkey {
        [0x02 | 0x03, ..] if first_importer_pubkey.len() == 33 => first_importer_pubkey.to_vec(),
        [0x04, ..] if first_importer_pubkey.len() == 65 => first_importer_pubkey.to_vec(),
        xy if xy.len() == 64 => [&[0x04], xy].concat(),
        _ => return Err(KeyringError::InvalidPublicKey),
    };
    let public_key =
        PublicKey::from_slice(&as_given).map_err(|_| KeyringError::InvalidPublicKey)?;

    let secp = Secp256k1::verification_only();
    let root = Xpub {
        network: NetworkKind::Main,
        depth: 0,
        parent_fingerprint: Fingerprint::default(),
        child_number: ChildNumber::Normal { index: 0 },
        public_key,
        chain_code: ChainCode::from([0u8; 32]),
    };

    let mut out = Vec::with_capacity(size as usize + 1);
    for i in 0..size {
        let child = ChildNumber::from_normal_idx(i)
            .and_then(|n| root.ckd_pub(&secp, n))
            .map_err(|_| KeyringError::Derivation(i))?;
        out.push(hash160::Hash::hash(&child.public_key.serialize()).to_byte_array());
    }
    out.push(hash160::Hash::hash(&as_given).to_byte_array());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn keyrings_match_the_original() {
        let all: Value =
            serde_json::from_str(include_str!("testdata/keyring_vectors.json")).unwrap();
        let mut checked = 0;
        for (mode, rings) in all.as_object().unwrap() {
            for ring in rings.as_array().unwrap() {
                let pubkey = hex::decode(ring["pubkey"].as_str().unwrap()).unwrap();
                let size = ring["size"].as_u64().unwrap() as u32;
                let want: Vec<&str> = ring["hash160s"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_str().unwrap())
                    .collect();
                let got: Vec<String> = import_keyring(&pubkey, size)
                    .unwrap()
                    .iter()
                    .map(hex::encode)
                    .collect();
                assert_eq!(got, want, "{mode} {}", ring["form"]);
                checked += 1;
            }
        }
        assert_eq!(checked, 19);
    }

    #[test]
    fn refuses_keys_keylib_refuses() {
        let all: Value =
            serde_json::from_str(include_str!("testdata/keyring_vectors.json")).unwrap();
        let uncompressed = hex::decode(all["test"][1]["pubkey"].as_str().unwrap()).unwrap();
        assert_eq!(uncompressed[0], 4);
        // a hybrid key (06/07 + parity) parses in libsecp256k1 but not in keylib
        let mut hybrid = uncompressed.clone();
        hybrid[0] = 6 | (uncompressed[64] & 1);
        assert!(PublicKey::from_slice(&hybrid).is_ok());
        assert_eq!(
            import_keyring(&hybrid, 5),
            Err(KeyringError::InvalidPublicKey)
        );
        assert_eq!(
            import_keyring(&uncompressed[..33], 5),
            Err(KeyringError::InvalidPublicKey)
        );
        assert_eq!(import_keyring(&[], 5), Err(KeyringError::InvalidPublicKey));
        let mut off_curve = uncompressed;
        off_curve[64] ^= 1;
        assert_eq!(
            import_keyring(&off_curve, 5),
            Err(KeyringError::InvalidPublicKey)
        );
    }
}
