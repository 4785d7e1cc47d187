//! virtualchain's ops hash and consensus hash (the Merkle skip list).
//!
//! The original works on hex text throughout: leaves are hex strings sorted
//! as text, each turned into bytes and reversed before hashing, and the root
//! reversed back. Every `[u8; N]` here holds the bytes of the hex text the
//! original stores, so `hex::encode` of a value is the original's string.

use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

/// The consensus hash the original writes for the blocks before its first
/// block. It is never a skip-list leaf; it only matters to the validity
/// window of operations in the first blocks.
pub const GENESIS_SNAPSHOT: [u8; 16] = [
    0x17, 0xac, 0x43, 0xc1, 0xd8, 0x54, 0x9c, 0x31, 0x81, 0xb2, 0x00, 0xf1, 0xbf, 0x97, 0xeb, 0x7d,
];

fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// The Merkle leaf of one serialized consensus record: SHA256d of its bytes,
/// in digest order (the original hex-encodes the digest as is).
pub fn record_hash(serialized: &str) -> [u8; 32] {
    sha256d(serialized.as_bytes())
}

/// The ops hash of one block. The leaves are sorted, so the order of
/// `serialized_ops` does not matter; an empty block hashes the empty string.
pub fn ops_hash(serialized_ops: &[String]) -> [u8; 32] {
    let mut leaves: Vec<Vec<u8>> = serialized_ops
        .iter()
        .map(|op| record_hash(op).to_vec())
        .collect();
    if leaves.is_empty() {
        leaves.push(record_hash("").to_vec());
    }
    merkle_root(leaves)
        .try_into()
        .expect("a root over 32-byte leaves is 32 bytes")
}

/// The heights whose consensus hashes enter block `height`'s snapshot:
/// `height - (2^i - 1)` for i = 1, 2, ... while not below `first_block`.
pub fn skip_list_heights(height: u64, first_block: u64) -> Vec<u64> {
    (1..64)
        .map_while(|i| height.checked_sub((1u64 << i) - 1))
        .take_while(|&prior| prior >= first_block)
        .collect()
}

/// The consensus hash of a block from its ops hash and the consensus hashes
/// at its [`skip_list_heights`] (in any order).
pub fn consensus_hash(ops_hash: &[u8; 32], prior_consensus_hashes: &[[u8; 16]]) -> [u8; 16] {
    let mut leaves: Vec<Vec<u8>> = prior_consensus_hashes.iter().map(|h| h.to_vec()).collect();
    leaves.push(ops_hash.to_vec());
    let root = merkle_root(leaves);
    // The original checks whether the root text is hex (it always is) and
    // then hashes the decoded bytes, not the text.
    let h160 = Ripemd160::digest(Sha256::digest(&root));
    let mut out = [0u8; 16];
    out.copy_from_slice(&h160[..16]);
    out
}

/// virtualchain's `MerkleTree(sorted(hex_leaves)).root()`, on the leaves'
/// bytes. Sorting byte strings lexicographically is the same as sorting
/// their lowercase hex texts, also when 16- and 32-byte leaves are mixed
/// (a proper prefix sorts first either way). A single leaf is its own root.
fn merkle_root(mut leaves: Vec<Vec<u8>>) -> Vec<u8> {
    leaves.sort();
    let mut row: Vec<Vec<u8>> = leaves
        .into_iter()
        .map(|mut leaf| {
            leaf.reverse();
            leaf
        })
        .collect();
    while row.len() > 1 {
        if row.len() % 2 == 1 {
            row.push(row[row.len() - 1].clone());
        }
        row = row
            .chunks(2)
            .map(|pair| sha256d(&[pair[0].as_slice(), pair[1].as_slice()].concat()).to_vec())
            .collect();
    }
    let mut root = row.pop().expect("at least one leaf");
    root.reverse();
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py2::{PyValue, serialize_op};
    use serde_json::Value;
    use std::collections::HashMap;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/testdata/oracle");
    const EPOCH1: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/testdata/oracle/fixtures/epoch1/oracle.json"
    );
    const EMPTY_OPS: &str = "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456";

    fn load(path: &str) -> Value {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
    }

    fn text(v: &Value) -> &str {
        v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
    }

    fn h16(hex_text: &str) -> [u8; 16] {
        hex::decode(hex_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .unwrap_or_else(|| panic!("not a 16-byte hash: {hex_text}"))
    }

    fn h32(hex_text: &str) -> [u8; 32] {
        hex::decode(hex_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .unwrap_or_else(|| panic!("not a 32-byte hash: {hex_text}"))
    }

    #[test]
    fn constants_and_empty_block() {
        assert_eq!(
            hex::encode(GENESIS_SNAPSHOT),
            "17ac43c1d8549c3181b200f1bf97eb7d"
        );
        assert_eq!(hex::encode(ops_hash(&[])), EMPTY_OPS);
        assert_eq!(hex::encode(record_hash("")), EMPTY_OPS);
    }

    #[test]
    fn skip_list_edges() {
        assert_eq!(skip_list_heights(373601, 373601), Vec::<u64>::new());
        assert_eq!(skip_list_heights(373602, 373601), vec![373601]);
        assert_eq!(skip_list_heights(8, 1), vec![7, 5, 1]);
        assert_eq!(skip_list_heights(0, 0), Vec::<u64>::new());
        assert_eq!(skip_list_heights(5, 9), Vec::<u64>::new());
        assert_eq!(skip_list_heights(u64::MAX, 0).len(), 63);
    }

    #[test]
    fn original_consensus_vectors() {
        let json = load(&format!("{VECTORS}/consensus-records.json"));
        let vectors = json["vectors"].as_array().expect("`vectors` array");
        assert_eq!(vectors.len(), 4);
        for v in vectors {
            let height = v["height"].as_u64().expect("height");
            let ops: Vec<String> = v["serialized_ops"]
                .as_array()
                .expect("serialized_ops")
                .iter()
                .map(|s| text(s).to_owned())
                .collect();
            let mut got: Vec<String> = ops.iter().map(|op| hex::encode(record_hash(op))).collect();
            let mut want: Vec<&str> = v["record_hashes"]
                .as_array()
                .expect("record_hashes")
                .iter()
                .map(text)
                .collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "record hashes at {height}");

            let oh = ops_hash(&ops);
            assert_eq!(
                hex::encode(oh),
                text(&v["ops_hash"]),
                "ops hash at {height}"
            );
            // Leaf order must not matter.
            let reversed: Vec<String> = ops.iter().rev().cloned().collect();
            assert_eq!(ops_hash(&reversed), oh);

            let heights: Vec<u64> = v["skip_list_heights"]
                .as_array()
                .expect("skip_list_heights")
                .iter()
                .map(|h| h.as_u64().expect("height"))
                .collect();
            assert_eq!(
                skip_list_heights(height, 373601),
                heights,
                "skip list at {height}"
            );
            let priors: Vec<[u8; 16]> = v["skip_list_hashes"]
                .as_array()
                .expect("skip_list_hashes")
                .iter()
                .map(|h| h16(text(h)))
                .collect();
            assert_eq!(
                hex::encode(consensus_hash(&oh, &priors)),
                text(&v["consensus_hash"]),
                "consensus hash at {height}"
            );
        }
    }

    #[test]
    fn epoch1_empty_blocks_chain() {
        let json = load(EPOCH1);
        let first_block = json["first_block"].as_u64().expect("first_block");
        assert_eq!(first_block, 1);
        let mut listed: HashMap<u64, [u8; 16]> = HashMap::new();
        let mut ops_hashes: HashMap<u64, String> = HashMap::new();
        for row in json["consensus"].as_array().expect("`consensus` list") {
            let Some(block) = row["block_id"].as_u64() else {
                continue; // the genesis rows before block 1 (ids -3..0)
            };
            listed.insert(block, h16(text(&row["consensus_hash"])));
            if let Some(oh) = row["ops_hash"].as_str() {
                ops_hashes.insert(block, oh.to_owned());
            }
        }
        let mut checked = 0;
        for block in 1..=110u64 {
            let oh = ops_hashes
                .get(&block)
                .unwrap_or_else(|| panic!("block {block} missing"));
            if oh != EMPTY_OPS {
                continue;
            }
            let priors: Vec<[u8; 16]> = skip_list_heights(block, first_block)
                .iter()
                .map(|h| listed[h])
                .collect();
            assert_eq!(
                consensus_hash(&h32(oh), &priors),
                listed[&block],
                "consensus hash of empty block {block}"
            );
            checked += 1;
        }
        assert_eq!(checked, 104);
    }

    /// A consensus record as `field -> value`, like the original's op dict.
    #[derive(Clone)]
    struct Rec(Vec<(&'static str, PyValue)>);

    impl Rec {
        fn with(mut self, field: &'static str, value: PyValue) -> Rec {
            match self.0.iter_mut().find(|(f, _)| *f == field) {
                Some(slot) => slot.1 = value,
                None => self.0.push((field, value)),
            }
            self
        }

        fn serialize(&self, opcode: u8, opfields: &Value) -> String {
            let key = char::from(opcode).to_string();
            let fields: Vec<PyValue> = opfields[&key]
                .as_array()
                .unwrap_or_else(|| panic!("no field list for {key}"))
                .iter()
                .map(|f| {
                    let f = text(f);
                    let (_, v) = self
                        .0
                        .iter()
                        .find(|(name, _)| *name == f)
                        .unwrap_or_else(|| panic!("record for {key} lacks {f}"));
                    v.clone()
                })
                .collect();
            serialize_op(opcode, &fields)
        }
    }

    fn s(v: &str) -> PyValue {
        PyValue::Str(v.into())
    }

    fn int(v: i128) -> PyValue {
        PyValue::Int(v)
    }

    fn rep(byte: &str, n: usize) -> PyValue {
        PyValue::Str(byte.repeat(n))
    }

    fn p2pkh(byte: &str) -> PyValue {
        PyValue::Str(format!("76a914{}88ac", byte.repeat(20)))
    }

    /// The typed records behind every serialized op of consensus-records.json.
    fn typed_records() -> Vec<(u8, Rec)> {
        let a5 = s("18ia5PY4X1ixY7LaSvXEgpWmUmwEyrCqLP");
        let a6 = s("1AMHPQk6VCPKqASwBJhg5RjhFBkVzdR1Dd");
        let a7 = s("1BsWzoVoSFpE7BMTnBDKxRmbeFH6VzN5J1");
        let pk8 = s(&format!("03{}", "88".repeat(32)));
        let buckets = PyValue::List(
            [6, 5, 4, 3, 2, 1]
                .into_iter()
                .chain([0; 10])
                .map(int)
                .collect(),
        );
        let name = Rec(vec![
            ("name", s("reg.id")),
            ("value_hash", rep("c", 40)),
            ("sender", p2pkh("55")),
            ("sender_pubkey", pk8.clone()),
            ("address", a5.clone()),
            ("block_number", int(373650)),
            ("preorder_block_number", int(373650)),
            ("first_registered", int(373660)),
            ("last_renewed", int(373660)),
            ("revoked", PyValue::Bool(false)),
            ("op", s(":")),
            ("txid", rep("10", 32)),
            ("vtxindex", int(3)),
            ("op_fee", int(25000)),
            ("importer", PyValue::None),
            ("importer_address", PyValue::None),
        ]);
        let renewal = name
            .clone()
            .with("name", s("ren.id"))
            .with("last_renewed", int(373700))
            .with("op", s("::"))
            .with("txid", rep("11", 32))
            .with("vtxindex", int(4))
            .with("op_fee", int(2500));
        let xfer = name
            .clone()
            .with("name", s("xfer.id"))
            .with("sender", p2pkh("66"))
            .with("sender_pubkey", PyValue::None)
            .with("address", a6.clone())
            .with("op", s(">>"))
            .with("txid", rep("15", 32))
            .with("vtxindex", int(8))
            .with("name_hash128", s("409dd431ed129151d6075177af97dc8a"))
            .with("consensus_hash", s("02dc7a5a41305d5c2272306ddac55b0f"))
            .with("keep_data", PyValue::Bool(true));
        let reveal = Rec(vec![
            ("namespace_id", s("ns")),
            ("preorder_hash", rep("e", 40)),
            ("version", int(1)),
            ("sender", p2pkh("55")),
            ("sender_pubkey", pk8.clone()),
            ("address", a5.clone()),
            ("recipient", p2pkh("66")),
            ("recipient_address", a6.clone()),
            ("block_number", int(373690)),
            ("reveal_block", int(373700)),
            ("op", s("&")),
            ("txid", rep("19", 32)),
            ("vtxindex", int(12)),
            ("lifetime", int(52595)),
            ("coeff", int(250)),
            ("base", int(4)),
            ("buckets", buckets),
            ("nonalpha_discount", int(10)),
            ("no_vowel_discount", int(10)),
        ]);
        vec![
            (
                b'?',
                Rec(vec![
                    ("preorder_hash", rep("a", 40)),
                    ("consensus_hash", s("79a8b8c32da35d8ffc1d345e086124a8")),
                    ("sender", p2pkh("11")),
                    ("sender_pubkey", PyValue::None),
                    ("address", s("12WtgUhcGQENqQvKydMnEdTbnwzgVSqAtk")),
                    ("block_number", int(373610)),
                    ("op", s("?")),
                    ("txid", rep("01", 32)),
                    ("vtxindex", int(12)),
                    ("op_fee", int(6400000)),
                ]),
            ),
            (
                b'+',
                name.clone()
                    .with("name", s("example.id"))
                    .with("value_hash", rep("b", 40))
                    .with("sender", p2pkh("22"))
                    .with("sender_pubkey", s(&format!("02{}", "33".repeat(32))))
                    .with("address", s("1474hK7mWgLXGCbUAUXm8PFGzVGhchPkQG"))
                    .with("block_number", int(373605))
                    .with("preorder_block_number", int(373605))
                    .with("first_registered", int(373605))
                    .with("last_renewed", int(373605))
                    .with("op", s("+"))
                    .with("txid", rep("02", 32))
                    .with("vtxindex", int(40))
                    // An imported name's transitions carry op_fee as a float.
                    .with("op_fee", PyValue::Float(25600000.0))
                    .with("importer", p2pkh("44"))
                    .with("importer_address", s("17CJ9BfPQT3omUT8K2b2ZVRfC5Hxzh3xU7"))
                    .with("name_consensus_hash", s("591d1e30135bfdca5dd3ca478be38e0e"))
                    .with("consensus_hash", s("ff96a3097b99a221be056f11814cc068")),
            ),
            (
                b':',
                name.clone()
                    .with("first_registered", int(373700))
                    .with("last_renewed", int(373700)),
            ),
            (b':', renewal.clone()),
            (
                b':',
                renewal
                    .with("name", s("renimp.id"))
                    .with("txid", rep("12", 32))
                    .with("vtxindex", int(5))
                    .with("op_fee", PyValue::Float(2500.0))
                    .with("importer", p2pkh("77"))
                    .with("importer_address", a7.clone()),
            ),
            (
                b';',
                name.clone()
                    .with("name", s("imp.id"))
                    .with("block_number", int(373700))
                    .with("preorder_block_number", int(373700))
                    .with("first_registered", int(373700))
                    .with("last_renewed", int(373700))
                    .with("op", s(";"))
                    .with("txid", rep("13", 32))
                    .with("vtxindex", int(6))
                    .with("op_fee", PyValue::Float(102400000.0))
                    .with("importer", p2pkh("77"))
                    .with("importer_address", a7),
            ),
            (
                b'+',
                name.clone()
                    .with("name", s("upd.id"))
                    .with("op", s("+"))
                    .with("txid", rep("14", 32))
                    .with("vtxindex", int(7))
                    .with("name_consensus_hash", s("3984697a46ec9e891d71bcacd7223a05"))
                    .with("consensus_hash", s("02dc7a5a41305d5c2272306ddac55b0f")),
            ),
            (b'>', xfer.clone()),
            (
                b'>',
                xfer.with("name", s("xfer2.id"))
                    .with("value_hash", PyValue::None)
                    .with("op", s(">~"))
                    .with("txid", rep("16", 32))
                    .with("vtxindex", int(9))
                    .with("name_hash128", s("3e335a25138f485c3885fbaf700f5458"))
                    .with("consensus_hash", s("e03f39f7963d70f3eaf43a129e5fb485"))
                    .with("keep_data", PyValue::Bool(false)),
            ),
            (
                b'~',
                name.with("name", s("rev.id"))
                    .with("value_hash", PyValue::None)
                    .with("revoked", PyValue::Bool(true))
                    .with("op", s("~"))
                    .with("txid", rep("17", 32))
                    .with("vtxindex", int(10)),
            ),
            (
                b'*',
                Rec(vec![
                    ("preorder_hash", rep("d", 40)),
                    ("consensus_hash", s("ea63b5abb3012479aff565a010b0eb45")),
                    ("op", s("*")),
                    ("op_fee", int(40000000)),
                    ("txid", rep("18", 32)),
                    ("vtxindex", int(11)),
                    ("block_number", int(373700)),
                    ("sender", p2pkh("55")),
                    ("sender_pubkey", pk8.clone()),
                    ("address", a5.clone()),
                ]),
            ),
            (b'&', reveal.clone()),
            (
                b'!',
                reveal
                    .with("namespace_id", s("ns2"))
                    .with("preorder_hash", rep("ef", 20))
                    .with("sender", p2pkh("66"))
                    .with("block_number", int(373640))
                    .with("reveal_block", int(373650))
                    .with("op", s("!"))
                    .with("txid", rep("1a", 32))
                    .with("vtxindex", int(13))
                    .with("ready_block", int(373700)),
            ),
            (
                b'$',
                Rec(vec![
                    ("sender", p2pkh("55")),
                    ("address", a5),
                    ("recipient", p2pkh("66")),
                    ("recipient_address", a6),
                    ("token_units", s("STACKS")),
                    // A decimal string in the original, not an int.
                    ("token_fee", s("1000000")),
                    ("block_id", int(373700)),
                    ("op", s("$")),
                    ("txid", rep("1b", 32)),
                    ("vtxindex", int(14)),
                    ("consensus_hash", s("12b8ff1a5e5bd574c582421a2e731cd5")),
                    ("scratch_area", s("")),
                ]),
            ),
        ]
    }

    #[test]
    fn typed_records_serialize_like_the_original() {
        let opfields = load(&format!("{VECTORS}/opfields.json"));
        let opfields = &opfields["opfields"];
        let vectors = load(&format!("{VECTORS}/consensus-records.json"));
        let mut want: Vec<&str> = vectors["vectors"]
            .as_array()
            .expect("`vectors` array")
            .iter()
            .flat_map(|v| v["serialized_ops"].as_array().expect("serialized_ops"))
            .map(text)
            .collect();
        let records = typed_records();
        assert_eq!(records.len(), want.len());
        for (opcode, rec) in &records {
            let got = rec.serialize(*opcode, opfields);
            let at = want
                .iter()
                .position(|w| *w == got)
                .unwrap_or_else(|| panic!("no vector matches {got}"));
            want.remove(at);
        }
        assert!(want.is_empty(), "not reproduced: {want:?}");
    }
}
