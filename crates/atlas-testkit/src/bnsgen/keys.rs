//! The generator's keys: deterministic secrets from a seed, in every funding
//! script form the original indexer distinguishes (p2pkh with a compressed
//! or uncompressed key, p2sh multisig, native p2wpkh), and the import
//! keyring's children, whose secrets follow from the first importer's.

use bitcoin::bip32::{ChainCode, ChildNumber, Fingerprint, Xpriv};
use bitcoin::hashes::{Hash, hash160, sha256};
use bitcoin::secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{NetworkKind, PubkeyHash, ScriptBuf, ScriptHash, Transaction, WPubkeyHash, Witness};

use bns_rules::txparse;

/// The regtest miner's secret (`RegtestChain`'s key, and the owner of the
/// oracle's STX genesis account).
pub const MINER_SECRET: [u8; 32] = [0x42; 32];

/// How a key's coins are locked, i.e. what the original sees as the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// p2pkh over the compressed public key.
    P2pkh,
    /// p2pkh over the 65-byte public key: another address, and the form the
    /// keyring's "own address" entry hashes as given.
    P2pkhUncompressed,
    /// p2sh of a 2-of-2 bare multisig: a sender without a public key.
    P2sh2of2,
    /// Native segwit v0: a sender type the original refuses in every epoch.
    P2wpkh,
}

/// One spender: its secrets, script and (testnet base58) address.
#[derive(Debug, Clone)]
pub struct Key {
    pub kind: KeyKind,
    secrets: Vec<SecretKey>,
    pub script: ScriptBuf,
    /// The redeem script of a p2sh key.
    redeem: Option<ScriptBuf>,
    /// Base58check (p2pkh/p2sh); empty for p2wpkh, which has none the
    /// original would use.
    pub address: String,
}

fn hash160_of(data: &[u8]) -> [u8; 20] {
    hash160::Hash::hash(data).to_byte_array()
}

/// A valid secret from `(seed, tag, index)`, the same on every platform.
pub fn derive_secret(seed: u64, tag: &str, index: u32) -> SecretKey {
    let mut counter = 0u32;
    loop {
        let mut data = b"atlas-bnsgen".to_vec();
        data.extend_from_slice(&seed.to_be_bytes());
        data.extend_from_slice(tag.as_bytes());
        data.extend_from_slice(&index.to_be_bytes());
        data.extend_from_slice(&counter.to_be_bytes());
        let digest = sha256::Hash::hash(&data).to_byte_array();
        if let Ok(sk) = SecretKey::from_slice(&digest) {
            return sk;
        }
        counter += 1;
    }
}

impl Key {
    pub fn new(secp: &Secp256k1<All>, kind: KeyKind, secrets: Vec<SecretKey>) -> Key {
        let pubs: Vec<PublicKey> = secrets.iter().map(|s| s.public_key(secp)).collect();
        let (script, redeem, address) = match kind {
            KeyKind::P2pkh | KeyKind::P2pkhUncompressed => {
                let ser = if kind == KeyKind::P2pkh {
                    pubs[0].serialize().to_vec()
                } else {
                    pubs[0].serialize_uncompressed().to_vec()
                };
                let h = hash160_of(&ser);
                (
                    ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array(h)),
                    None,
                    txparse::hash160_to_address(h, 111),
                )
            }
            KeyKind::P2sh2of2 => {
                assert_eq!(secrets.len(), 2, "a 2-of-2 multisig has two secrets");
                let redeem = bitcoin::script::Builder::new()
                    .push_int(2)
                    .push_slice(pubs[0].serialize())
                    .push_slice(pubs[1].serialize())
                    .push_int(2)
                    .push_opcode(bitcoin::opcodes::all::OP_CHECKMULTISIG)
                    .into_script();
                let h = hash160_of(redeem.as_bytes());
                (
                    ScriptBuf::new_p2sh(&ScriptHash::from_byte_array(h)),
                    Some(redeem),
                    txparse::hash160_to_address(h, 196),
                )
            }
            KeyKind::P2wpkh => {
                let h = hash160_of(&pubs[0].serialize());
                (
                    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h)),
                    None,
                    String::new(),
                )
            }
        };
        Key {
            kind,
            secrets,
            script,
            redeem,
            address,
        }
    }

    /// The secret of a single-key spender.
    pub fn secret(&self) -> SecretKey {
        self.secrets[0]
    }

    /// The public key as a p2pkh scriptSig carries it (and as the original
    /// records `sender_pubkey`), for p2pkh keys.
    pub fn pubkey_bytes(&self, secp: &Secp256k1<All>) -> Vec<u8> {
        let pk = self.secrets[0].public_key(secp);
        match self.kind {
            KeyKind::P2pkhUncompressed => pk.serialize_uncompressed().to_vec(),
            _ => pk.serialize().to_vec(),
        }
    }

    /// Signs input `index` of `tx`, which spends `value` sat locked by this key.
    pub fn sign_input(
        &self,
        secp: &Secp256k1<All>,
        tx: &mut Transaction,
        index: usize,
        value: u64,
    ) {
        let sig = |sk: &SecretKey, digest: [u8; 32]| {
            let s = secp.sign_ecdsa(&Message::from_digest(digest), sk);
            bitcoin::ecdsa::Signature {
                signature: s,
                sighash_type: EcdsaSighashType::All,
            }
        };
        let all = EcdsaSighashType::All.to_u32();
        match self.kind {
            KeyKind::P2pkh | KeyKind::P2pkhUncompressed => {
                let digest = SighashCache::new(&*tx)
                    .legacy_signature_hash(index, &self.script, all)
                    .expect("input in range")
                    .to_byte_array();
                let pk = bitcoin::script::PushBytesBuf::try_from(self.pubkey_bytes(secp))
                    .expect("a key fits a push");
                tx.input[index].script_sig = bitcoin::script::Builder::new()
                    .push_slice(sig(&self.secrets[0], digest).serialize())
                    .push_slice(pk)
                    .into_script();
            }
            KeyKind::P2sh2of2 => {
                let redeem = self
                    .redeem
                    .as_ref()
                    .expect("p2sh keys keep a redeem script");
                let digest = SighashCache::new(&*tx)
                    .legacy_signature_hash(index, redeem, all)
                    .expect("input in range")
                    .to_byte_array();
                let redeem_push = bitcoin::script::PushBytesBuf::try_from(redeem.to_bytes())
                    .expect("a redeem script fits a push");
                let mut b = bitcoin::script::Builder::new().push_opcode(bitcoin::opcodes::OP_0);
                for sk in &self.secrets {
                    b = b.push_slice(sig(sk, digest).serialize());
                }
                tx.input[index].script_sig = b.push_slice(redeem_push).into_script();
            }
            KeyKind::P2wpkh => {
                let digest = SighashCache::new(&*tx)
                    .p2wpkh_signature_hash(
                        index,
                        &self.script,
                        bitcoin::Amount::from_sat(value),
                        EcdsaSighashType::All,
                    )
                    .expect("a p2wpkh input")
                    .to_byte_array();
                let pk = self.secrets[0].public_key(secp);
                tx.input[index].witness = Witness::p2wpkh(&sig(&self.secrets[0], digest), &pk);
            }
        }
    }
}

/// The secret of import-keyring child `index` of `importer`: BIP32 CKDpriv
/// from the importer's secret as master key with a zero chain code, which
/// gives the child whose public key the original derives with CKDpub
/// (`bns_rules::keyring::import_keyring`).
pub fn keyring_child_secret(secp: &Secp256k1<All>, importer: SecretKey, index: u32) -> SecretKey {
    let master = Xpriv {
        network: NetworkKind::Main,
        depth: 0,
        parent_fingerprint: Fingerprint::default(),
        child_number: ChildNumber::Normal { index: 0 },
        private_key: importer,
        chain_code: ChainCode::from([0u8; 32]),
    };
    let path = [ChildNumber::from_normal_idx(index).expect("a normal index")];
    master
        .derive_priv(secp, &path)
        .expect("derivation fails with probability 2^-127")
        .private_key
}

#[cfg(test)]
mod tests {
    use super::*;
    use bns_rules::keyring::import_keyring;

    #[test]
    fn keyring_children_sign_for_the_addresses_the_original_derives() {
        let secp = Secp256k1::new();
        for (i, kind) in [KeyKind::P2pkh, KeyKind::P2pkhUncompressed]
            .into_iter()
            .enumerate()
        {
            let importer = Key::new(&secp, kind, vec![derive_secret(7, "importer", i as u32)]);
            let ring = import_keyring(&importer.pubkey_bytes(&secp), 5).unwrap();
            for (child, want) in ring[..5].iter().enumerate() {
                let sk = keyring_child_secret(&secp, importer.secret(), child as u32);
                let key = Key::new(&secp, KeyKind::P2pkh, vec![sk]);
                assert_eq!(
                    key.script,
                    ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array(*want))
                );
            }
            // the last entry is the importer's own address, as given
            assert_eq!(
                importer.script,
                ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array(ring[5]))
            );
        }
    }

    #[test]
    fn the_miner_key_is_the_regtest_miner() {
        let secp = Secp256k1::new();
        let miner = Key::new(
            &secp,
            KeyKind::P2pkh,
            vec![SecretKey::from_slice(&MINER_SECRET).unwrap()],
        );
        let chain = crate::regtest::RegtestChain::new();
        assert_eq!(miner.script, chain.miner_script());
        assert_eq!(miner.address, "mhRETykpmXeTpXYq25x8ZsXZQ2YhejbqHj");
    }
}
