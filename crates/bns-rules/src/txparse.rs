//! Transaction-level primitives exactly as virtualchain 20.0.1.0 and
//! blockstack 22.0.0.0 compute them: script classes, addresses, the
//! OP_RETURN payload, the per-input sender records, the epoch type checks
//! and the public-key search. Each operation's `tx_extract` builds on these.
//!
//! How the original sees a transaction (`vc/blockchain/bitcoin_blockchain/blocks.py`):
//! * Blocks come over P2P as `MSG_BLOCK` (`blocks.py:354`), so bitcoind sends
//!   them without witnesses, and protocoin's `TxSerializer` knows none. A
//!   segwit tx is therefore indexed from its non-witness fields only; `raw_tx`
//!   is the stripped serialization, and the re-serialize assert in `db_parse`
//!   (`bs/nameset/virtualchain_hooks.py:213-215`) holds. Nothing here reads a
//!   witness. Funding txs come from `getrawtransaction` (`blocks.py:702`); a
//!   witness-serialized answer aborts the process (`blocks.py:733-738`), so
//!   the operator ran `rpcserialversion=0`: senders never depend on witnesses.
//! * `txid` is protocoin's `Tx.calculate_hash`: double SHA-256 of the
//!   non-witness serialization, byte-reversed hex, i.e.
//!   [`Transaction::compute_txid`].
//! * The `vtxindex` blockstack records (`virtualchain_hooks.py:247`) is
//!   `txindex`, the tx's position among *all* txs of the block, coinbase = 0
//!   (`blocks.py:569-571`, `indexer.py:1168`); not the chainstate row index.
//! * Only txs whose [`nulldata_payload`] starts with the magic `id` are kept
//!   (`blockstackd.py:2365-2380`); the coinbase is not skipped. A coinbase
//!   input's sender is a placeholder with an empty script (`blocks.py:687-699`),
//!   i.e. `sender_info(&[], _)`, which fails every sender check.

use bitcoin::bech32::primitives::iter::{ByteIterExt, Fe32IterExt};
use bitcoin::bech32::{Bech32, Fe32, Hrp};
use bitcoin::hashes::{Hash, hash160};
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Transaction, TxOut};

/// virtualchain's script classes (`bits.py:1122-1159`). The two p2sh-segwit
/// ones appear only in blockstack's epoch tables: classification without
/// private key info (the only way the indexer calls it) never returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScriptType {
    P2pkh,
    P2sh,
    P2wpkh,
    P2wsh,
    Nulldata,
    Multisig,
    P2pk,
    P2shP2wpkh,
    P2shP2wsh,
}

impl ScriptType {
    /// The name virtualchain uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptType::P2pkh => "p2pkh",
            ScriptType::P2sh => "p2sh",
            ScriptType::P2wpkh => "p2wpkh",
            ScriptType::P2wsh => "p2wsh",
            ScriptType::Nulldata => "nulldata",
            ScriptType::Multisig => "multisig",
            ScriptType::P2pk => "p2pk",
            ScriptType::P2shP2wpkh => "p2sh-p2wpkh",
            ScriptType::P2shP2wsh => "p2sh-p2wsh",
        }
    }
}

const OP_RETURN: u8 = 0x6a;
const OP_CHECKSIG: u8 = 0xac;
const OP_CHECKMULTISIG: u8 = 0xae;

/// One item of `btc_script_deserialize` (`keys.py:161-215`). The original
/// turns opcodes 79..=96 into the numbers -1..=16 and keeps the rest raw;
/// keeping every opcode raw is equivalent for all comparisons it makes
/// (against 0x6a, 0xac, 0xae, and "is a string").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// OP_0, which the original yields as `None`, not as an empty string.
    Zero,
    Push(&'a [u8]),
    Op(u8),
}

/// `btc_script_deserialize`, including how it reads malformed scripts:
/// a push that runs past the end yields whatever bytes remain (maybe none),
/// and a truncated OP_PUSHDATA length uses the length bytes that exist.
fn tokens(s: &[u8]) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < s.len() {
        let code = s[pos];
        let (start, len) = match code {
            0 => {
                out.push(Token::Zero);
                pos += 1;
                continue;
            }
            1..=75 => (pos + 1, usize::from(code)),
            76..=78 => {
                let szsz = 1usize << (code - 76);
                // The original slices the length bytes in reverse; Python
                // slicing clips at the end, so absent bytes just vanish.
                let len_bytes = &s[pos + 1..(pos + 1 + szsz).min(s.len())];
                let len = len_bytes
                    .iter()
                    .rev()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                (pos + 1 + szsz, len)
            }
            _ => {
                out.push(Token::Op(code));
                pos += 1;
                continue;
            }
        };
        let end = start.saturating_add(len);
        out.push(Token::Push(&s[start.min(s.len())..end.min(s.len())]));
        pos = end;
    }
    out
}

/// `btc_script_classify(script)` (`bits.py:1122-1159`). The four address
/// templates are matched on prefix, suffix and length only; everything else
/// through the token list: a leading OP_RETURN is nulldata whatever follows,
/// a trailing OP_CHECKMULTISIG is multisig (even `ae` alone), and any two
/// items ending in OP_CHECKSIG is p2pk (even `51ac`). `None` = nonstandard.
pub fn classify_script(script: &[u8]) -> Option<ScriptType> {
    if let Some(t) = address_template(script) {
        return Some(t);
    }
    let toks = tokens(script);
    match (toks.first(), toks.last()) {
        (Some(Token::Op(OP_RETURN)), _) => Some(ScriptType::Nulldata),
        (_, Some(Token::Op(OP_CHECKMULTISIG))) => Some(ScriptType::Multisig),
        (_, Some(Token::Op(OP_CHECKSIG))) if toks.len() == 2 => Some(ScriptType::P2pk),
        _ => None,
    }
}

/// `script_hex_to_address` (`keys.py:345-372`): base58 for p2pkh/p2sh
/// (versions 0/5, or 111/196 when `testnet`), `None` for everything but the
/// four address templates. Segwit programs get a quirky bech32 string: the
/// witness version is always 1 (`bech32.py:35`) under the plain bech32
/// checksum, so p2wpkh/p2wsh come out as `bc1p…`/`tb1p…` (the testnet prefix
/// also serves regtest).
pub fn script_to_address(script: &[u8], testnet: bool) -> Option<String> {
    let (p2pkh, p2sh) = if testnet { (111, 196) } else { (0, 5) };
    match address_template(script)? {
        ScriptType::P2pkh => Some(hash160_to_address(script[3..23].try_into().ok()?, p2pkh)),
        ScriptType::P2sh => Some(hash160_to_address(script[2..22].try_into().ok()?, p2sh)),
        _ => {
            let hrp = if testnet {
                Hrp::parse_unchecked("tb")
            } else {
                Hrp::parse_unchecked("bc")
            };
            Some(
                script[2..]
                    .iter()
                    .copied()
                    .bytes_to_fes()
                    .with_checksum::<Bech32>(&hrp)
                    .with_witness_version(Fe32::P)
                    .chars()
                    .collect(),
            )
        }
    }
}

/// The four templates virtualchain matches on hex prefix, suffix and length.
fn address_template(script: &[u8]) -> Option<ScriptType> {
    let n = script.len();
    if n == 25 && script.starts_with(&[0x76, 0xa9, 0x14]) && script.ends_with(&[0x88, 0xac]) {
        Some(ScriptType::P2pkh)
    } else if n == 23 && script.starts_with(&[0xa9, 0x14]) && script.ends_with(&[0x87]) {
        Some(ScriptType::P2sh)
    } else if n == 22 && script.starts_with(&[0x00, 0x14]) {
        Some(ScriptType::P2wpkh)
    } else if n == 34 && script.starts_with(&[0x00, 0x20]) {
        Some(ScriptType::P2wsh)
    } else {
        None
    }
}

/// The payload virtualchain's block handler records as `nulldata`
/// (`blocks.py:574-597`). Every output classified nulldata overwrites the
/// verdict, so the last one decides, even when an earlier one was usable.
/// It counts only as OP_RETURN plus exactly one push; OP_0, a small-integer
/// opcode or anything more make the tx payload-less. The push may be empty
/// (`6a4c00`) or truncated (`6a05ab` gives `ab`): then the payload is what
/// the push yields. `None` = not a nulldata tx at all.
pub fn nulldata_payload(tx: &Transaction) -> Option<Vec<u8>> {
    let mut payload = None;
    for out in &tx.output {
        let script = out.script_pubkey.as_bytes();
        if classify_script(script) != Some(ScriptType::Nulldata) {
            continue;
        }
        payload = match tokens(script).as_slice() {
            [_, Token::Push(data)] => Some(data.to_vec()),
            _ => None,
        };
    }
    payload
}

/// What virtualchain hands the indexer as `senders[i]`: the output that
/// funded input `i` (`blocks.py:411-445`, via `btc_tx_output_parse_script`,
/// `bits.py:1329-1389`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    /// `script_pubkey`, lowercase hex.
    pub script_hex: String,
    /// `btc_script_classify(script_pubkey)`, which is what the sender checks
    /// use; see [`Sender::vc_script_type`] for the stored string.
    pub script_type: Option<ScriptType>,
    /// Exactly one address for p2pkh/p2sh, none for any other type
    /// (segwit, multisig and p2pk senders included).
    pub addresses: Vec<String>,
}

impl Sender {
    /// `senders[i]['script_type']` as stored: bitcoind's names for the
    /// classes ops test (`pubkeyhash` gates the public-key search,
    /// e.g. `register.py:932`), virtualchain's for the rest.
    pub fn vc_script_type(&self) -> &'static str {
        match self.script_type {
            Some(ScriptType::P2pkh) => "pubkeyhash",
            Some(ScriptType::P2sh | ScriptType::P2shP2wpkh | ScriptType::P2shP2wsh) => "scripthash",
            Some(ScriptType::P2pk) => "pubkey",
            Some(t) => t.as_str(),
            None => "nonstandard",
        }
    }
}

/// `senders[i]` for an input funded by `prevout_script`. For a coinbase
/// input pass an empty script: virtualchain substitutes a placeholder output
/// with script `''`, a nonstandard sender without addresses.
pub fn sender_info(prevout_script: &[u8], testnet: bool) -> Sender {
    let script_type = classify_script(prevout_script);
    let addresses = match script_type {
        Some(ScriptType::P2pkh | ScriptType::P2sh) => script_to_address(prevout_script, testnet)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    Sender {
        script_hex: hex::encode(prevout_script),
        script_type,
        addresses,
    }
}

/// `check_tx_sender_types` (`bs/scripts.py:750-767`): every sender has one
/// address and an allowed class. `db_parse` runs it on all inputs before
/// any op parsing (`virtualchain_hooks.py:204`). An empty list passes, but
/// `db_parse` raises on it first (`virtualchain_hooks.py:201`).
pub fn check_sender_types(senders: &[Sender], allowed: &[ScriptType]) -> bool {
    senders
        .iter()
        .all(|s| s.addresses.len() == 1 && s.script_type.is_some_and(|t| allowed.contains(&t)))
}

/// `check_tx_output_types` (`bs/scripts.py:734-747`): every output has an
/// allowed class (nonstandard never is).
pub fn check_output_types(outputs: &[TxOut], allowed: &[ScriptType]) -> bool {
    outputs
        .iter()
        .all(|o| classify_script(o.script_pubkey.as_bytes()).is_some_and(|t| allowed.contains(&t)))
}

const OUTPUT_TYPES_1: &[ScriptType] = &[ScriptType::Nulldata, ScriptType::P2pkh, ScriptType::P2sh];
const OUTPUT_TYPES_3: &[ScriptType] = &[
    ScriptType::Nulldata,
    ScriptType::P2pkh,
    ScriptType::P2sh,
    ScriptType::P2shP2wpkh,
    ScriptType::P2shP2wsh,
];
const SENDER_TYPES: &[ScriptType] = &[ScriptType::P2pkh, ScriptType::P2sh];

/// The epoch's `script_types` (`bs/config.py:677,728,779,830,881,932`).
/// Epochs 3+ add the p2sh-segwit names, which no output ever classifies as,
/// so in effect every epoch allows nulldata, p2pkh and p2sh. An epoch
/// outside 1..=6 gets the empty list, which rejects everything.
pub fn epoch_output_types(epoch: u8) -> &'static [ScriptType] {
    match epoch {
        1 | 2 => OUTPUT_TYPES_1,
        3..=6 => OUTPUT_TYPES_3,
        _ => &[],
    }
}

/// The epoch's `sender_types` (`bs/config.py:678,...,933`): p2pkh and p2sh in
/// every epoch. An epoch outside 1..=6 gets the empty list.
pub fn epoch_sender_types(epoch: u8) -> &'static [ScriptType] {
    match epoch {
        1..=6 => SENDER_TYPES,
        _ => &[],
    }
}

/// `get_public_key_hex_from_tx(inputs, address)` (`bs/scripts.py:355-388`):
/// the first input whose scriptSig parses to exactly two items, the second a
/// push that is a valid key for `address` (see [`pubkey_address`]), gives
/// that push as hex. Any scriptSig shape counts (`OP_0 <key>` too); invalid
/// or non-push candidates are skipped.
pub fn public_key_hex_from_tx(tx: &Transaction, address: &str, testnet: bool) -> Option<String> {
    tx.input.iter().find_map(
        |input| match tokens(input.script_sig.as_bytes()).as_slice() {
            [_, Token::Push(data)] => {
                let candidate = hex::encode(data);
                (pubkey_address(&candidate, testnet)? == address).then_some(candidate)
            }
            _ => None,
        },
    )
}

/// `BitcoinPublicKey(pubkey).address()` (keylib 0.1.1 with ecdsa 0.19.2, as
/// the oracle installs): `None` where the constructor raises.
///
/// keylib sniffs the *string* it is given: 64, 65 (starting 0x04) or 33
/// characters are taken as raw binary before any hex test, so a 32-byte
/// push (64 hex digits) is read as a 64-byte raw key made of ASCII digits.
/// Hex forms: 128 digits = raw x‖y (hashed as `04‖x‖y`), 130 digits
/// starting `04` = uncompressed, 66 digits = compressed (prefix 02/03).
/// Hybrid 06/07 keys are refused. The point must lie on secp256k1 with
/// coordinates below p (older ecdsa releases also refused x or y ≥ n; the
/// oracle's does not). The address hashes the key as given: compressed
/// keys are not decompressed, uncompressed ones not compressed.
pub fn pubkey_address(pubkey_hex: &str, testnet: bool) -> Option<String> {
    let s = pubkey_hex.as_bytes();
    let key = match s.len() {
        64 => [&[0x04][..], s].concat(),
        65 if s[0] == 0x04 => s.to_vec(),
        33 => s.to_vec(),
        _ => {
            let bytes = hex::decode(s).ok()?;
            match s.len() {
                128 => [&[0x04][..], &bytes].concat(),
                // Only 04: libsecp256k1 would also take hybrid 06/07 keys.
                130 if bytes[0] == 0x04 => bytes,
                66 => bytes,
                _ => return None,
            }
        }
    };
    PublicKey::from_slice(&key).ok()?;
    let h = hash160::Hash::hash(&key).to_byte_array();
    Some(hash160_to_address(h, if testnet { 111 } else { 0 }))
}

/// keylib's `b58check_encode(h, version)`.
pub fn hash160_to_address(h: [u8; 20], version: u8) -> String {
    let mut data = [0u8; 21];
    data[0] = version;
    data[1..].copy_from_slice(&h);
    bitcoin::base58::encode_check(&data)
}

/// keylib's `b58check_unpack`: the version byte and payload of a base58check
/// string, of any length; `None` on a bad character or checksum.
pub fn b58check_decode(address: &str) -> Option<(u8, Vec<u8>)> {
    let mut data = bitcoin::base58::decode_check(address).ok()?;
    if data.is_empty() {
        return None;
    }
    let payload = data.split_off(1);
    Some((data[0], payload))
}

/// The 20-byte payload of a base58check address, whatever its version
/// (`address_to_bin_hash160` ignores it); `None` for other payload lengths.
pub fn b58check_hash160(address: &str) -> Option<[u8; 20]> {
    b58check_decode(address)?.1.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::consensus::deserialize;
    use bitcoin::{Amount, ScriptBuf};
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("testdata/txparse.json")).unwrap()
    }

    fn bytes(v: &Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    fn opt_str(v: &Value) -> Option<String> {
        v.as_str().map(str::to_owned)
    }

    fn strs(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }

    fn epochs(v: &Value) -> Vec<u8> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_u64().unwrap() as u8)
            .collect()
    }

    fn txout(script: Vec<u8>) -> TxOut {
        TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(script),
        }
    }

    fn ok_epochs(check: impl Fn(u8) -> bool) -> Vec<u8> {
        (1..=6).filter(|&e| check(e)).collect()
    }

    #[test]
    fn epoch_tables() {
        let v = vectors();
        for e in 1..=6u8 {
            let row = &v["epochs"][e.to_string()];
            let names =
                |l: &[ScriptType]| l.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>();
            assert_eq!(
                names(epoch_output_types(e)),
                strs(&row["output"]),
                "epoch {e}"
            );
            assert_eq!(
                names(epoch_sender_types(e)),
                strs(&row["sender"]),
                "epoch {e}"
            );
        }
        assert!(epoch_output_types(0).is_empty() && epoch_sender_types(7).is_empty());
    }

    #[test]
    fn scripts() {
        let v = vectors();
        let cases = v["scripts"].as_array().unwrap();
        assert!(cases.len() > 60);
        for c in cases {
            let script = bytes(&c["hex"]);
            let what = c["hex"].as_str().unwrap();
            let toks: Vec<Value> = tokens(&script)
                .iter()
                .map(|t| match *t {
                    Token::Zero => Value::Null,
                    Token::Push(d) => Value::from(hex::encode(d)),
                    Token::Op(c @ 79..=96) => Value::from(i64::from(c) - 80),
                    Token::Op(c) => Value::from(c),
                })
                .collect();
            assert_eq!(Value::from(toks), c["tokens"], "tokens {what}");
            let class = classify_script(&script).map(|t| t.as_str().to_owned());
            assert_eq!(class, opt_str(&c["class"]), "classify {what}");
            for (net, testnet) in [("main", false), ("test", true)] {
                let addr = script_to_address(&script, testnet);
                assert_eq!(addr, opt_str(&c["addr"][net]), "address {what} {net}");
                let s = sender_info(&script, testnet);
                assert_eq!(s.script_hex, what);
                assert_eq!(
                    s.vc_script_type(),
                    c["sender_type"].as_str().unwrap(),
                    "{what}"
                );
                assert_eq!(
                    s.addresses,
                    strs(&c["sender_addresses"][net]),
                    "{what} {net}"
                );
            }
            let outs = [txout(script.clone())];
            let out_ok = ok_epochs(|e| check_output_types(&outs, epoch_output_types(e)));
            assert_eq!(out_ok, epochs(&c["output_ok"]), "output types {what}");
            let snd = [sender_info(&script, true)];
            let snd_ok = ok_epochs(|e| check_sender_types(&snd, epoch_sender_types(e)));
            assert_eq!(snd_ok, epochs(&c["sender_ok"]), "sender types {what}");
        }
    }

    #[test]
    fn type_lists() {
        let v = vectors();
        for c in v["type_lists"].as_array().unwrap() {
            let scripts: Vec<Vec<u8>> =
                c["scripts"].as_array().unwrap().iter().map(bytes).collect();
            let outs: Vec<TxOut> = scripts.iter().cloned().map(txout).collect();
            let snd: Vec<Sender> = scripts.iter().map(|s| sender_info(s, true)).collect();
            let out_ok = ok_epochs(|e| check_output_types(&outs, epoch_output_types(e)));
            let snd_ok = ok_epochs(|e| check_sender_types(&snd, epoch_sender_types(e)));
            assert_eq!(out_ok, epochs(&c["output_ok"]), "{c}");
            assert_eq!(snd_ok, epochs(&c["sender_ok"]), "{c}");
        }
    }

    #[test]
    fn block_nulldata_and_txids() {
        let v = vectors();
        let txs = v["block_txs"].as_array().unwrap();
        assert!(txs.len() > 70);
        let mut kept = 0;
        for (i, c) in txs.iter().enumerate() {
            let tx: Transaction = deserialize(&bytes(&c["hex"])).unwrap();
            assert_eq!(
                tx.compute_txid().to_string(),
                c["txid"].as_str().unwrap(),
                "tx {i}"
            );
            let want = c["nulldata"].as_str().map(|h| hex::decode(h).unwrap());
            kept += usize::from(want.is_some());
            assert_eq!(nulldata_payload(&tx), want, "nulldata of tx {i}");
        }
        assert!(kept > 15);
    }

    #[test]
    fn pubkeys() {
        let v = vectors();
        for c in v["pubkeys"].as_array().unwrap() {
            let pk = c["hex"].as_str().unwrap();
            assert_eq!(pubkey_address(pk, false), opt_str(&c["main"]), "{pk}");
            assert_eq!(pubkey_address(pk, true), opt_str(&c["test"]), "{pk}");
        }
    }

    #[test]
    fn pubkey_lookups() {
        let v = vectors();
        let mut found = 0;
        for c in v["pubkey_lookups"].as_array().unwrap() {
            let tx: Transaction = deserialize(&bytes(&c["tx"])).unwrap();
            for q in c["queries"].as_array().unwrap() {
                let addr = q["addr"].as_str().unwrap();
                for (net, testnet) in [("main", false), ("test", true)] {
                    let got = public_key_hex_from_tx(&tx, addr, testnet);
                    found += usize::from(got.is_some());
                    assert_eq!(got, opt_str(&q[net]), "{addr} {net} in {}", c["tx"]);
                }
            }
        }
        assert!(found > 10);
    }

    #[test]
    fn base58check() {
        let v = vectors();
        for c in v["b58"].as_array().unwrap() {
            let addr = c["addr"].as_str().unwrap();
            let want = c["version"]
                .as_u64()
                .map(|ver| (ver as u8, bytes(&c["payload"])));
            assert_eq!(b58check_decode(addr), want, "{addr:?}");
            let h = b58check_hash160(addr);
            match &want {
                Some((ver, payload)) if payload.len() == 20 => {
                    assert_eq!(
                        h.map(|h| hash160_to_address(h, *ver)).as_deref(),
                        Some(addr)
                    );
                }
                _ => assert_eq!(h, None, "{addr:?}"),
            }
        }
    }
}
