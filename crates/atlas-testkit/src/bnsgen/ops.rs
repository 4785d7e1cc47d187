//! BNS operations laid out as the original indexer reads them: each
//! payload byte for byte, and each output where its `tx_extract` looks
//! (burns at output 2 for preorders and 3 for renewals, recipients at
//! output 1, an import's zone-file hash as the p2pkh at output 2). Every
//! part is a parameter, so a caller builds the invalid variants by passing
//! another value or by editing the returned outputs.

use bitcoin::hashes::Hash;
use bitcoin::{PubkeyHash, ScriptBuf};

use super::wallet::{DUST, KeyId, Out, Spend};
use bns_rules::hashing::hash_name_hex;
use bns_rules::hashing::hash128;

/// `OP_RETURN` payloads start with these two bytes.
pub const MAGIC: &[u8; 2] = b"id";

/// The burn address's script (`BLOCKSTACK_BURN_PUBKEY_HASH`, all zeros).
pub fn burn_script() -> ScriptBuf {
    p2pkh_of([0; 20])
}

/// A p2pkh script over a raw 20-byte hash (also NAME_IMPORT's hash carrier).
pub fn p2pkh_of(hash: [u8; 20]) -> ScriptBuf {
    ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array(hash))
}

fn op(opcode: u8) -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.push(opcode);
    p
}

/// `hash_name(name, sender script, recipient address)`, the commitment
/// both preorders carry. Panics on a name outside base 40 (the generator
/// never commits to one).
pub fn preorder_hash(name: &str, sender_script: &ScriptBuf, recipient_address: &str) -> [u8; 20] {
    let hex = hash_name_hex(
        name,
        &hex::encode(sender_script.as_bytes()),
        recipient_address,
    )
    .expect("a base-40 name");
    hex::decode(hex).expect("hex").try_into().expect("20 bytes")
}

/// STX payment fields of an epoch-4+ preorder: amount and token units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPayment {
    pub amount: u64,
    /// "STACKS"; zero-padded to 19 bytes on the wire.
    pub units: String,
}

impl TokenPayment {
    pub fn stacks(amount: u64) -> TokenPayment {
        TokenPayment {
            amount,
            units: "STACKS".into(),
        }
    }
}

fn units_field(units: &str) -> Vec<u8> {
    let mut u = units.as_bytes().to_vec();
    u.resize(19, 0);
    u
}

/// NAME_PREORDER `?`: hash, consensus hash, and from epoch 4 optionally the
/// token fee and units (63 bytes after the opcode).
pub fn name_preorder_payload(
    hash: [u8; 20],
    ch: [u8; 16],
    tokens: Option<&TokenPayment>,
) -> Vec<u8> {
    let mut p = op(b'?');
    p.extend_from_slice(&hash);
    p.extend_from_slice(&ch);
    if let Some(t) = tokens {
        p.extend_from_slice(&t.amount.to_be_bytes());
        p.extend_from_slice(&units_field(&t.units));
    }
    p
}

/// NAME_REGISTRATION / NAME_RENEWAL `:`. Without a value hash the payload
/// is the bare name (the only form before epoch 3); with one, the name
/// zero-padded to 37 bytes and the hash (57 bytes), and optionally 8 bytes
/// of tokens (65 bytes, epoch 4+).
pub fn registration_payload(
    name: &str,
    value_hash: Option<[u8; 20]>,
    tokens: Option<u64>,
) -> Vec<u8> {
    let mut p = op(b':');
    match value_hash {
        None => p.extend_from_slice(name.as_bytes()),
        Some(h) => {
            let mut padded = name.as_bytes().to_vec();
            padded.resize(37, 0);
            p.extend_from_slice(&padded);
            p.extend_from_slice(&h);
            if let Some(t) = tokens {
                p.extend_from_slice(&t.to_be_bytes());
            }
        }
    }
    p
}

/// NAME_UPDATE `+`: hash128(name + consensus hash hex) and the value hash.
pub fn update_payload(name: &str, ch: [u8; 16], value_hash: [u8; 20]) -> Vec<u8> {
    let mut p = op(b'+');
    p.extend_from_slice(&hash128(format!("{name}{}", hex::encode(ch)).as_bytes()));
    p.extend_from_slice(&value_hash);
    p
}

/// NAME_TRANSFER `>`: `>` keeps the value hash, `~` drops it.
pub fn transfer_payload(name: &str, keep_data: bool, ch: [u8; 16]) -> Vec<u8> {
    let mut p = op(b'>');
    p.push(if keep_data { b'>' } else { b'~' });
    p.extend_from_slice(&hash128(name.as_bytes()));
    p.extend_from_slice(&ch);
    p
}

/// NAME_REVOKE `~`.
pub fn revoke_payload(name: &str) -> Vec<u8> {
    [op(b'~'), name.as_bytes().to_vec()].concat()
}

/// NAME_IMPORT `;`.
pub fn import_payload(name: &str) -> Vec<u8> {
    [op(b';'), name.as_bytes().to_vec()].concat()
}

/// NAMESPACE_PREORDER `*`: hash, consensus hash, and from epoch 4 the
/// 8-byte token fee (44 bytes after the opcode).
pub fn namespace_preorder_payload(hash: [u8; 20], ch: [u8; 16], token_fee: Option<u64>) -> Vec<u8> {
    let mut p = op(b'*');
    p.extend_from_slice(&hash);
    p.extend_from_slice(&ch);
    if let Some(t) = token_fee {
        p.extend_from_slice(&t.to_be_bytes());
    }
    p
}

/// A namespace's rules as NAMESPACE_REVEAL carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reveal {
    pub namespace_id: String,
    /// Blocks a name lives (times the epoch's multiplier); 0xffffffff = forever.
    pub lifetime: u32,
    pub coeff: u8,
    pub base: u8,
    /// Price exponents by label length 1..=16, each 0..=15.
    pub buckets: [u8; 16],
    pub nonalpha_discount: u8,
    pub no_vowel_discount: u8,
    /// 1 pay to burn, 2 pay to creator, 3 pay in STX.
    pub version: u16,
}

/// NAMESPACE_REVEAL `&`.
pub fn reveal_payload(r: &Reveal) -> Vec<u8> {
    let mut p = op(b'&');
    p.extend_from_slice(&r.lifetime.to_be_bytes());
    p.push(r.coeff);
    p.push(r.base);
    for pair in r.buckets.chunks(2) {
        p.push((pair[0] << 4) | (pair[1] & 0x0f));
    }
    p.push((r.nonalpha_discount << 4) | (r.no_vowel_discount & 0x0f));
    p.extend_from_slice(&r.version.to_be_bytes());
    p.extend_from_slice(r.namespace_id.as_bytes());
    p
}

/// NAMESPACE_READY `!`.
pub fn ready_payload(namespace_id: &str) -> Vec<u8> {
    [op(b'!'), b".".to_vec(), namespace_id.as_bytes().to_vec()].concat()
}

/// TOKEN_TRANSFER `$`: consensus hash, units, amount, free scratch bytes.
pub fn token_transfer_payload(ch: [u8; 16], units: &str, amount: u64, scratch: &[u8]) -> Vec<u8> {
    let mut p = op(b'$');
    p.extend_from_slice(&ch);
    p.extend_from_slice(&units_field(units));
    p.extend_from_slice(&amount.to_be_bytes());
    p.extend_from_slice(scratch);
    p
}

/// `[OP_RETURN, change, burn fee]`: both preorders (exactly three outputs
/// for names, the burn read from output 2).
pub fn preorder_tx(sender: KeyId, payload: Vec<u8>, burn: ScriptBuf, fee: u64) -> Spend {
    Spend::new(
        sender,
        vec![Out::Data(payload), Out::Change, Out::Pay(burn, fee)],
    )
}

/// `[OP_RETURN, recipient, change]`: registration, transfer, reveal,
/// token transfer.
pub fn recipient_tx(sender: KeyId, payload: Vec<u8>, recipient: ScriptBuf) -> Spend {
    Spend::new(
        sender,
        vec![Out::Data(payload), Out::Pay(recipient, DUST), Out::Change],
    )
}

/// `[OP_RETURN, recipient, change, burn fee]`: a renewal (four or more
/// outputs make a `:` a renewal; the fee is read from output 3).
pub fn renewal_tx(
    sender: KeyId,
    payload: Vec<u8>,
    recipient: ScriptBuf,
    burn: ScriptBuf,
    fee: u64,
) -> Spend {
    Spend::new(
        sender,
        vec![
            Out::Data(payload),
            Out::Pay(recipient, DUST),
            Out::Change,
            Out::Pay(burn, fee),
        ],
    )
}

/// `[OP_RETURN, recipient, hash carrier, change]`: NAME_IMPORT.
pub fn import_tx(sender: KeyId, name: &str, recipient: ScriptBuf, value_hash: [u8; 20]) -> Spend {
    Spend::new(
        sender,
        vec![
            Out::Data(import_payload(name)),
            Out::Pay(recipient, DUST),
            Out::Pay(p2pkh_of(value_hash), DUST),
            Out::Change,
        ],
    )
}

/// `[OP_RETURN, change]`: update, revoke, ready.
pub fn plain_tx(sender: KeyId, payload: Vec<u8>) -> Spend {
    Spend::new(sender, vec![Out::Data(payload), Out::Change])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reveal_matches_the_fixture_layout() {
        // The oracle fixtures' reveal of `id`: life 52595, coeff 250, base 4,
        // buckets 6,5,4,3,2,1,1,.., discounts 10/2, version 1
        let r = Reveal {
            namespace_id: "id".into(),
            lifetime: 52595,
            coeff: 250,
            base: 4,
            buckets: [6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            nonalpha_discount: 10,
            no_vowel_discount: 2,
            version: 1,
        };
        let mut want = b"id&".to_vec();
        want.extend_from_slice(&52595u32.to_be_bytes());
        want.extend_from_slice(&[
            250, 4, 0x65, 0x43, 0x21, 0x11, 0x11, 0x11, 0x11, 0x11, 0xa2, 0, 1,
        ]);
        want.extend_from_slice(b"id");
        assert_eq!(reveal_payload(&r), want);
    }

    #[test]
    fn payload_lengths_per_epoch_layout() {
        let h = [1u8; 20];
        assert_eq!(name_preorder_payload(h, [0; 16], None).len(), 3 + 36);
        let stx = TokenPayment::stacks(5);
        assert_eq!(name_preorder_payload(h, [0; 16], Some(&stx)).len(), 3 + 63);
        assert_eq!(registration_payload("a.b", Some(h), None).len(), 3 + 57);
        assert_eq!(registration_payload("a.b", Some(h), Some(0)).len(), 3 + 65);
        assert_eq!(registration_payload("a.b", None, None), b"id:a.b");
        assert_eq!(
            namespace_preorder_payload(h, [0; 16], Some(1)).len(),
            3 + 44
        );
        assert_eq!(
            token_transfer_payload([0; 16], "STACKS", 1, b"").len(),
            3 + 43
        );
    }
}
