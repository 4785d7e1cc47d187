//! From a transaction to a BNS operation, as the original's `db_parse` and
//! each operation's `tx_extract`/`parse` read it: which payload lengths an
//! epoch allows, which outputs must be which script types, where fees and
//! recipients sit. A transaction that fails here is dropped: neither accepted
//! nor rejected, and it never touches a consensus hash.

use bitcoin::Transaction;

use super::params::{Feature, RuleSet};
use super::txparse::{self, ScriptType, Sender};

/// What each operation carries besides the common sender fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    NamePreorder {
        preorder_hash: String,
        consensus_hash: String,
        /// Set only by the 63-byte epoch-4 layout.
        token_fee: Option<i128>,
        token_units: Option<String>,
        op_fee: i128,
        burn_address: String,
    },
    NameRegistration {
        name: String,
        value_hash: Option<String>,
        recipient: String,
        recipient_address: String,
    },
    NameRenewal {
        name: String,
        value_hash: Option<String>,
        recipient: String,
        recipient_address: String,
        op_fee: i128,
        burn_address: String,
        token_fee: i128,
    },
    NameUpdate {
        name_consensus_hash: String,
        value_hash: String,
    },
    NameTransfer {
        name_hash128: String,
        consensus_hash: String,
        keep_data: bool,
        recipient: String,
        recipient_address: String,
    },
    NameRevoke {
        name: String,
    },
    NameImport {
        name: String,
        value_hash: String,
        recipient: String,
        recipient_address: String,
    },
    NamespacePreorder {
        preorder_hash: String,
        consensus_hash: String,
        token_fee: Option<i128>,
        op_fee: i128,
        burn_address: String,
    },
    NamespaceReveal {
        namespace_id: String,
        preorder_hash: String,
        version: u16,
        lifetime: u64,
        coeff: u8,
        base: u8,
        buckets: [u8; 16],
        nonalpha_discount: u8,
        no_vowel_discount: u8,
        recipient: String,
        recipient_address: String,
    },
    NamespaceReady {
        namespace_id: String,
    },
    TokenTransfer {
        consensus_hash: String,
        token_units: String,
        token_fee: i128,
        scratch_area: String,
        recipient: String,
        recipient_address: String,
    },
}

/// One parsed BNS operation in a block.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedOp {
    /// The raw opcode byte (a renewal's is `:` too).
    pub opcode: u8,
    pub txid: String,
    pub vtxindex: u32,
    /// The script funding input 0, as hex, and its address.
    pub sender: String,
    pub address: String,
    pub sender_pubkey: Option<String>,
    pub body: Body,
}

/// The opcodes the original recognises.
const OPCODES: &[u8] = b"?~:+>;*&!#$";

fn is_b40(s: &[u8]) -> bool {
    s.iter().all(|c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.' | b'+')
    })
}

/// `is_namespace_valid`.
pub fn is_namespace_valid(id: &[u8]) -> bool {
    is_b40(id) && !id.contains(&b'+') && !id.contains(&b'.') && (1..=19).contains(&id.len())
}

/// `is_name_valid`: `name.namespace`, at most 37 bytes.
pub fn is_name_valid(fqn: &[u8]) -> bool {
    if fqn.iter().filter(|c| **c == b'.').count() != 1 || fqn.len() > 37 {
        return false;
    }
    let dot = fqn.iter().position(|c| *c == b'.').unwrap_or(0);
    let (name, ns) = (&fqn[..dot], &fqn[dot + 1..]);
    !name.is_empty() && is_b40(name) && !name.contains(&b'+') && is_namespace_valid(ns)
}

fn ascii(b: &[u8]) -> String {
    b.iter().map(|c| char::from(*c)).collect()
}

/// Python's `str.strip('\x00')`.
fn strip_nul(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != 0).unwrap_or(b.len());
    let end = b.iter().rposition(|c| *c != 0).map_or(start, |e| e + 1);
    &b[start..end]
}

fn be_uint(b: &[u8]) -> i128 {
    b.iter().fold(0i128, |acc, x| (acc << 8) | i128::from(*x))
}

struct Outputs<'a> {
    tx: &'a Transaction,
    testnet: bool,
}

impl Outputs<'_> {
    fn script_hex(&self, i: usize) -> Option<String> {
        self.tx
            .output
            .get(i)
            .map(|o| hex::encode(o.script_pubkey.as_bytes()))
    }

    fn address(&self, i: usize) -> Option<String> {
        let o = self.tx.output.get(i)?;
        txparse::script_to_address(o.script_pubkey.as_bytes(), self.testnet)
    }

    fn value(&self, i: usize) -> Option<i128> {
        self.tx.output.get(i).map(|o| i128::from(o.value.to_sat()))
    }

    /// `check_tx_output_types(outputs[..n])`.
    fn types_ok(&self, n: usize, allowed: &[ScriptType]) -> bool {
        let end = n.min(self.tx.output.len());
        txparse::check_output_types(&self.tx.output[..end], allowed)
    }

    /// Output 1 as recipient script and address.
    fn recipient(&self) -> Option<(String, String)> {
        Some((self.script_hex(1)?, self.address(1)?))
    }
}

/// Parses one transaction of block `height` at position `vtxindex`.
/// `prevouts` holds the script each input spends. `None` when the original
/// would not see a BNS operation here (not BNS, or dropped while parsing).
pub fn parse_tx(
    rules: &RuleSet,
    height: u64,
    vtxindex: u32,
    tx: &Transaction,
    prevouts: &[Vec<u8>],
) -> Option<ParsedOp> {
    let data = txparse::nulldata_payload(tx)?;
    if data.len() < 3 || &data[..2] != b"id" || !OPCODES.contains(&data[2]) {
        return None;
    }
    let opcode = data[2];
    let payload = &data[3..];
    let testnet = rules.testnet;
    let senders: Vec<Sender> = prevouts
        .iter()
        .map(|s| txparse::sender_info(s, testnet))
        .collect();
    let epoch = rules.epoch(height);
    if senders.is_empty()
        || !txparse::check_sender_types(&senders, txparse::epoch_sender_types(epoch))
    {
        return None;
    }
    let first = &senders[0];
    let sender = first.script_hex.clone();
    let address = first.addresses.first()?.clone();
    let pubkey = if first.vc_script_type() == "pubkeyhash" {
        txparse::public_key_hex_from_tx(tx, &address, testnet)
    } else {
        None
    };
    let outs = Outputs { tx, testnet };
    let allowed = txparse::epoch_output_types(epoch);
    let has = |f: Feature| rules.has_feature(height, f);
    let body = match opcode {
        b'?' => {
            if !outs.types_ok(3, allowed) || payload.len() < 36 {
                return None;
            }
            let (mut token_fee, mut token_units) = (None, None);
            if payload.len() > 36 {
                if !has(Feature::NameopsCostTokens) || payload.len() != 63 {
                    return None;
                }
                token_fee = Some(be_uint(&payload[36..44]));
                token_units = Some(ascii(strip_nul(&payload[44..63])));
            }
            if tx.output.len() != 3 {
                return None;
            }
            Body::NamePreorder {
                preorder_hash: hex::encode(&payload[..20]),
                consensus_hash: hex::encode(&payload[20..36]),
                token_fee,
                token_units,
                op_fee: outs.value(2)?,
                burn_address: outs.address(2)?,
            }
        }
        b':' => {
            if !outs.types_ok(2, allowed) {
                return None;
            }
            let (recipient, recipient_address) = outs.recipient()?;
            let renewal = tx.output.len() >= 4;
            let (burn_address, op_fee) = if renewal {
                (Some(outs.address(3)?), outs.value(3))
            } else {
                (None, None)
            };
            let (name, value_hash, token_fee) = parse_registration(rules, height, payload)?;
            if !renewal {
                if token_fee.is_some_and(|t| t != 0) {
                    return None;
                }
                Body::NameRegistration {
                    name,
                    value_hash,
                    recipient,
                    recipient_address,
                }
            } else {
                Body::NameRenewal {
                    name,
                    value_hash,
                    recipient,
                    recipient_address,
                    op_fee: op_fee?,
                    burn_address: burn_address?,
                    token_fee: token_fee?,
                }
            }
        }
        b'+' => {
            if payload.len() != 36 {
                return None;
            }
            Body::NameUpdate {
                name_consensus_hash: hex::encode(&payload[..16]),
                value_hash: hex::encode(&payload[16..36]),
            }
        }
        b'>' => {
            if !outs.types_ok(2, allowed) {
                return None;
            }
            let (recipient, recipient_address) = outs.recipient()?;
            if payload.len() != 33 || !matches!(payload[0], b'>' | b'~') {
                return None;
            }
            Body::NameTransfer {
                keep_data: payload[0] == b'>',
                name_hash128: hex::encode(&payload[1..17]),
                consensus_hash: hex::encode(&payload[17..33]),
                recipient,
                recipient_address,
            }
        }
        b'~' => {
            if !is_name_valid(payload) {
                return None;
            }
            Body::NameRevoke {
                name: ascii(payload),
            }
        }
        b';' => {
            if !outs.types_ok(3, allowed) {
                return None;
            }
            let (recipient, recipient_address) = outs.recipient()?;
            let carrier = outs.address(2)?;
            let value_hash = hex::encode(txparse::b58check_hash160(&carrier)?);
            if !is_name_valid(payload) {
                return None;
            }
            Body::NameImport {
                name: ascii(payload),
                value_hash,
                recipient,
                recipient_address,
            }
        }
        b'*' => {
            if !outs.types_ok(3, allowed) || tx.output.len() < 3 {
                return None;
            }
            let burn_address = outs.address(2)?;
            let op_fee = outs.value(2)?;
            if payload.len() < 36 {
                return None;
            }
            let buys = has(Feature::StacksBuyNamespaces);
            let token_fee = match (payload.len() > 36, buys) {
                (true, true) if payload.len() == 44 => Some(be_uint(&payload[36..44])),
                (false, false) => None,
                _ => return None,
            };
            Body::NamespacePreorder {
                preorder_hash: hex::encode(&payload[..20]),
                consensus_hash: hex::encode(&payload[20..36]),
                token_fee,
                op_fee,
                burn_address,
            }
        }
        b'&' => {
            if !outs.types_ok(2, allowed) || tx.output.len() != 3 {
                return None;
            }
            let (recipient, recipient_address) = outs.recipient()?;
            parse_reveal(payload, &sender, recipient, recipient_address)?
        }
        b'!' => {
            if payload.first() != Some(&b'.') || !is_namespace_valid(&payload[1..]) {
                return None;
            }
            Body::NamespaceReady {
                namespace_id: ascii(&payload[1..]),
            }
        }
        b'$' => {
            if !outs.types_ok(2, allowed) {
                return None;
            }
            let (recipient, recipient_address) = outs.recipient()?;
            if !has(Feature::TokenTransfer) || payload.len() < 43 {
                return None;
            }
            Body::TokenTransfer {
                consensus_hash: hex::encode(&payload[..16]),
                token_units: ascii(strip_nul(&payload[16..35])),
                token_fee: be_uint(&payload[35..43]),
                scratch_area: hex::encode(&payload[43..]),
                recipient,
                recipient_address,
            }
        }
        // ANNOUNCE is stateless: never hashed, never in the whitelist.
        _ => return None,
    };
    Some(ParsedOp {
        opcode,
        txid: tx.compute_txid().to_string(),
        vtxindex,
        sender,
        address,
        sender_pubkey: pubkey,
        body,
    })
}

/// A registration's payload: the whole payload is the name until epoch 3;
/// then a 37-byte padded name and a value hash, and from epoch 4 optionally
/// 8 bytes of tokens. Returns (name, value hash, tokens burned).
fn parse_registration(
    rules: &RuleSet,
    height: u64,
    payload: &[u8],
) -> Option<(String, Option<String>, Option<i128>)> {
    let has = |f: Feature| rules.has_feature(height, f);
    let mut tokens = Some(0);
    let mut value_hash = None;
    let fqn: &[u8] = if (has(Feature::OpRegisterUpdate) || has(Feature::OpRenewTransferUpdate))
        && payload.len() >= 57
    {
        value_hash = Some(hex::encode(&payload[37..57]));
        if has(Feature::NameopsCostTokens) {
            if payload.len() == 65 {
                tokens = Some(be_uint(&payload[57..65]));
            } else if payload.len() == 57 {
                tokens = None;
            } else {
                return None;
            }
        } else if payload.len() != 57 {
            return None;
        }
        let end = payload[..37]
            .iter()
            .rposition(|c| *c != 0)
            .map_or(0, |e| e + 1);
        &payload[..end]
    } else {
        payload
    };
    if !is_name_valid(fqn) {
        return None;
    }
    Some((ascii(fqn), value_hash, tokens))
}

fn parse_reveal(
    payload: &[u8],
    sender: &str,
    recipient: String,
    recipient_address: String,
) -> Option<Body> {
    if payload.len() < 18 {
        return None;
    }
    let lifetime = be_uint(&payload[0..4]) as u64;
    let coeff = payload[4];
    let base = payload[5];
    let mut buckets = [0u8; 16];
    for (i, b) in payload[6..14].iter().enumerate() {
        buckets[2 * i] = b >> 4;
        buckets[2 * i + 1] = b & 0x0f;
    }
    let nonalpha_discount = payload[14] >> 4;
    let no_vowel_discount = payload[14] & 0x0f;
    let version = u16::from_be_bytes([payload[15], payload[16]]);
    let id = &payload[17..];
    let preorder_hash = super::hashing::hash_name_hex(&ascii(id), sender, &recipient_address)?;
    let id_ok = is_b40(id) && !id.contains(&b'+') && !id.contains(&b'.') && id.len() <= 19;
    if !id_ok || !(1..=3).contains(&version) || nonalpha_discount == 0 || no_vowel_discount == 0 {
        return None;
    }
    Some(Body::NamespaceReveal {
        namespace_id: ascii(id),
        preorder_hash,
        version,
        lifetime,
        coeff,
        base,
        buckets,
        nonalpha_discount,
        no_vowel_discount,
        recipient,
        recipient_address,
    })
}
