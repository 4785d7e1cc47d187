//! Zone files are opaque, content-addressed byte strings: their identity is
//! `hash160(bytes) = RIPEMD160(SHA256(bytes))`, the hash BNS writes on chain.

use std::fmt;
use std::str::FromStr;

use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

/// The largest zone file the network accepts (the original Atlas limit since 2018).
pub const MAX_ZONEFILE_BYTES: usize = 40_960;

/// A 20-byte hash160, written as 40 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash160(pub [u8; 20]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseHashError {
    #[error("a zone-file hash is 40 hex characters, got {0} characters")]
    Length(usize),
    #[error("a zone-file hash is hex: {0}")]
    Hex(String),
    #[error("a zone-file hash is 20 bytes, got {0}")]
    Bytes(usize),
}

impl Hash160 {
    /// Hashes `bytes` the way BNS does.
    pub fn of(bytes: &[u8]) -> Self {
        let sha = Sha256::digest(bytes);
        let rip = Ripemd160::digest(sha);
        Hash160(rip.into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseHashError> {
        let arr: [u8; 20] = bytes
            .try_into()
            .map_err(|_| ParseHashError::Bytes(bytes.len()))?;
        Ok(Hash160(arr))
    }
}

impl FromStr for Hash160 {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 40 {
            return Err(ParseHashError::Length(s.len()));
        }
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).map_err(|e| ParseHashError::Hex(e.to_string()))?;
        Ok(Hash160(out))
    }
}

impl fmt::Display for Hash160 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash160 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash160({})", self.to_hex())
    }
}

impl serde::Serialize for Hash160 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash160 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash160_matches_known_vector() {
        // hash160("") is a well-known constant.
        assert_eq!(
            Hash160::of(b"").to_hex(),
            "b472a266d0bd89c13706a4132ccfb16f7c3b9fcb"
        );
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert_eq!("ab".parse::<Hash160>(), Err(ParseHashError::Length(2)));
        assert!(matches!(
            "zz".repeat(20).parse::<Hash160>(),
            Err(ParseHashError::Hex(_))
        ));
    }
}

/// Hashes a `Hash160` key by its first eight bytes, mixed with a key drawn
/// once per process. The bytes are already a cryptographic hash, so this is
/// as good as SipHash over all twenty, at a fraction of the cost on the
/// replication hot path (every received file is looked up several times).
#[derive(Clone, Copy, Default)]
pub struct Hash160Hasher(u64);

impl std::hash::Hasher for Hash160Hasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = (self.0 ^ u64::from_le_bytes(word)).rotate_left(29);
    }

    fn write_usize(&mut self, _len: usize) {
        // The length prefix of a fixed-size array carries nothing.
    }

    fn finish(&self) -> u64 {
        let mut z = self.0 ^ process_key();
        z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        z ^ (z >> 33)
    }
}

fn process_key() -> u64 {
    static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
    })
}

#[derive(Clone, Copy, Default)]
pub struct BuildHash160;

impl std::hash::BuildHasher for BuildHash160 {
    type Hasher = Hash160Hasher;
    fn build_hasher(&self) -> Hash160Hasher {
        Hash160Hasher(0)
    }
}

pub type Hash160Map<V> = std::collections::HashMap<Hash160, V, BuildHash160>;
pub type Hash160Set = std::collections::HashSet<Hash160, BuildHash160>;
