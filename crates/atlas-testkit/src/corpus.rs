//! The real BNS zone files (`data/bns/zonefiles.jsonl`, provenance in
//! `data/bns/README.md`): tabs, missing final newlines, 34 KB outliers.

use std::path::PathBuf;

use atlas_core::zonefile::Hash160;

pub fn corpus_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/bns/zonefiles.jsonl")
}

/// Every zone file of the corpus with its on-chain hash, checked on load.
pub fn real_zonefiles() -> Vec<(Hash160, Vec<u8>)> {
    let path = corpus_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading the BNS corpus {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), i + 1));
            let field = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("{} line {}: no {k}", path.display(), i + 1))
                    .to_string()
            };
            let hash: Hash160 = field("zonefile_hash").parse().expect("a 40-hex hash");
            let bytes = hex::decode(field("zonefile_hex")).expect("hex zone file");
            assert_eq!(
                Hash160::of(&bytes),
                hash,
                "{} line {}: bytes do not match the hash",
                path.display(),
                i + 1
            );
            (hash, bytes)
        })
        .collect()
}

/// `n` distinct zone files: the real corpus first, then real files with a
/// numbered comment line appended (same shapes and sizes, new hashes).
pub fn zonefiles(n: usize) -> Vec<(Hash160, Vec<u8>)> {
    let real = real_zonefiles();
    let mut out: Vec<_> = real.iter().take(n).cloned().collect();
    let mut i = 0;
    while out.len() < n {
        let (_, base) = &real[i % real.len()];
        let mut b = base.clone();
        if b.len() + 32 > atlas_core::zonefile::MAX_ZONEFILE_BYTES {
            i += 1;
            continue;
        }
        b.extend_from_slice(format!("\n; variant {i}\n").as_bytes());
        out.push((Hash160::of(&b), b));
        i += 1;
    }
    out
}
