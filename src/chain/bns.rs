//! The BNS wire format: the payload of a transaction's OP_RETURN output,
//! `"id"` + one opcode byte + a fixed layout per operation. All integers are
//! big-endian. Parsing never panics: every malformed payload gets a reason.
//!
//! This covers the payload alone; the transaction-level rules (sender = the
//! script funding input 0, new owner = output 1, NAME_IMPORT's hash in output
//! 2, registration vs renewal by output count) belong to the follower.

use sha2::{Digest, Sha256};

use crate::zonefile::Hash160;

pub const MAGIC: [u8; 2] = *b"id";
/// The longest OP_RETURN payload BNS writes.
pub const MAX_PAYLOAD: usize = 80;
pub const MAX_NAME: usize = 37;
pub const MAX_NAMESPACE_ID: usize = 19;
const B40_CHARSET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz-_.+";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BnsOp {
    NamePreorder {
        preorder_hash: [u8; 20],
        consensus_hash: [u8; 16],
        tokens_burned: Option<u64>,
    },
    /// Also a renewal when the transaction has four or more outputs.
    NameRegistration {
        name: String,
        value_hash: Option<Hash160>,
        tokens_burned: Option<u64>,
    },
    NameUpdate {
        name_consensus_hash: [u8; 16],
        value_hash: Hash160,
    },
    NameTransfer {
        keep_data: bool,
        name_hash128: [u8; 16],
        consensus_hash: [u8; 16],
    },
    NameRevoke {
        name: String,
    },
    /// The zone-file hash travels in output 2's script hash, not here.
    NameImport {
        name: String,
    },
    NamespacePreorder {
        namespace_hash: [u8; 20],
        consensus_hash: [u8; 16],
        tokens_burned: Option<u64>,
    },
    NamespaceReveal {
        lifetime: u32,
        coeff: u8,
        base: u8,
        buckets: [u8; 16],
        nonalpha_discount: u8,
        no_vowel_discount: u8,
        version: u16,
        namespace_id: String,
    },
    NamespaceReady {
        namespace_id: String,
    },
    Announce {
        message_hash: Hash160,
    },
    TokenTransfer {
        consensus_hash: [u8; 16],
        token_type: String,
        amount: u64,
        scratch: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BnsError {
    #[error("payload does not start with the magic bytes \"id\"")]
    NotBns,
    #[error("payload is {0} bytes, over the {MAX_PAYLOAD}-byte limit")]
    TooLong(usize),
    #[error("payload has no opcode")]
    NoOpcode,
    #[error("unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    #[error("{op} body is {len} bytes; expected {expected}")]
    Length {
        op: &'static str,
        len: usize,
        expected: &'static str,
    },
    #[error("invalid name {0:?}: names are [a-z0-9-_]+.[a-z0-9-_]+, at most 37 bytes")]
    Name(String),
    #[error("invalid namespace id {0:?}: [a-z0-9-_], 1 to 19 bytes")]
    NamespaceId(String),
    #[error("NAME_TRANSFER keep-data byte is {0:#04x}, not '>' or '~'")]
    KeepData(u8),
    #[error("NAMESPACE_READY body must start with '.'")]
    ReadyDot,
    #[error("token type is not printable ASCII")]
    TokenType,
}

fn take<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(take::<8>(b, at))
}

fn label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// A fully qualified name: one label, a dot, a namespace id.
pub fn validate_name(raw: &[u8]) -> Result<String, BnsError> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| BnsError::Name(String::from_utf8_lossy(raw).into()))?;
    let bad = || BnsError::Name(s.to_string());
    if s.len() > MAX_NAME {
        return Err(bad());
    }
    let (label, ns) = s.split_once('.').ok_or_else(bad)?;
    if !label_ok(label) || !label_ok(ns) || ns.len() > MAX_NAMESPACE_ID {
        return Err(bad());
    }
    Ok(s.to_string())
}

pub fn validate_namespace_id(raw: &[u8]) -> Result<String, BnsError> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| BnsError::NamespaceId(String::from_utf8_lossy(raw).into()))?;
    if !label_ok(s) || s.len() > MAX_NAMESPACE_ID {
        return Err(BnsError::NamespaceId(s.to_string()));
    }
    Ok(s.to_string())
}

fn length(op: &'static str, len: usize, expected: &'static str) -> BnsError {
    BnsError::Length { op, len, expected }
}

/// Parses an OP_RETURN payload (magic included).
pub fn parse_payload(payload: &[u8]) -> Result<BnsOp, BnsError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(BnsError::TooLong(payload.len()));
    }
    if payload.len() < 2 || payload[..2] != MAGIC {
        return Err(BnsError::NotBns);
    }
    let (&op, b) = payload[2..].split_first().ok_or(BnsError::NoOpcode)?;
    let n = b.len();
    Ok(match op {
        b'?' => match n {
            36 | 63 => BnsOp::NamePreorder {
                preorder_hash: take(b, 0),
                consensus_hash: take(b, 20),
                tokens_burned: (n == 63).then(|| be_u64(b, 36)),
            },
            _ => return Err(length("NAME_PREORDER", n, "36 or 63")),
        },
        b':' => match n {
            1..=MAX_NAME => BnsOp::NameRegistration {
                name: validate_name(b)?,
                value_hash: None,
                tokens_burned: None,
            },
            57 | 65 => {
                let end = b[..MAX_NAME]
                    .iter()
                    .position(|c| *c == 0)
                    .unwrap_or(MAX_NAME);
                if b[end..MAX_NAME].iter().any(|c| *c != 0) {
                    return Err(BnsError::Name(
                        String::from_utf8_lossy(&b[..MAX_NAME]).into(),
                    ));
                }
                BnsOp::NameRegistration {
                    name: validate_name(&b[..end])?,
                    value_hash: Some(Hash160(take(b, MAX_NAME))),
                    tokens_burned: (n == 65).then(|| be_u64(b, 57)),
                }
            }
            _ => return Err(length("NAME_REGISTRATION", n, "1..=37, 57 or 65")),
        },
        b'+' => match n {
            36 => BnsOp::NameUpdate {
                name_consensus_hash: take(b, 0),
                value_hash: Hash160(take(b, 16)),
            },
            _ => return Err(length("NAME_UPDATE", n, "36")),
        },
        b'>' => match n {
            33 => BnsOp::NameTransfer {
                keep_data: match b[0] {
                    b'>' => true,
                    b'~' => false,
                    other => return Err(BnsError::KeepData(other)),
                },
                name_hash128: take(b, 1),
                consensus_hash: take(b, 17),
            },
            _ => return Err(length("NAME_TRANSFER", n, "33")),
        },
        b'~' => match n {
            1..=MAX_NAME => BnsOp::NameRevoke {
                name: validate_name(b)?,
            },
            _ => return Err(length("NAME_REVOKE", n, "1..=37")),
        },
        b';' => match n {
            1..=MAX_NAME => BnsOp::NameImport {
                name: validate_name(b)?,
            },
            _ => return Err(length("NAME_IMPORT", n, "1..=37")),
        },
        b'*' => match n {
            36 | 44 => BnsOp::NamespacePreorder {
                namespace_hash: take(b, 0),
                consensus_hash: take(b, 20),
                tokens_burned: (n == 44).then(|| be_u64(b, 36)),
            },
            _ => return Err(length("NAMESPACE_PREORDER", n, "36 or 44")),
        },
        b'&' => match n {
            18..=36 => {
                let mut buckets = [0u8; 16];
                for (i, byte) in b[6..14].iter().enumerate() {
                    buckets[2 * i] = byte >> 4;
                    buckets[2 * i + 1] = byte & 0x0f;
                }
                BnsOp::NamespaceReveal {
                    lifetime: u32::from_be_bytes(take(b, 0)),
                    coeff: b[4],
                    base: b[5],
                    buckets,
                    nonalpha_discount: b[14] >> 4,
                    no_vowel_discount: b[14] & 0x0f,
                    version: u16::from_be_bytes(take(b, 15)),
                    namespace_id: validate_namespace_id(&b[17..])?,
                }
            }
            _ => return Err(length("NAMESPACE_REVEAL", n, "18..=36")),
        },
        b'!' => match n {
            2..=20 => {
                if b[0] != b'.' {
                    return Err(BnsError::ReadyDot);
                }
                BnsOp::NamespaceReady {
                    namespace_id: validate_namespace_id(&b[1..])?,
                }
            }
            _ => return Err(length("NAMESPACE_READY", n, "2..=20")),
        },
        b'#' => match n {
            20 => BnsOp::Announce {
                message_hash: Hash160(take(b, 0)),
            },
            _ => return Err(length("ANNOUNCE", n, "20")),
        },
        b'$' => match n {
            43..=77 => {
                let raw = &b[16..35];
                let end = raw.iter().position(|c| *c == 0).unwrap_or(raw.len());
                if !raw[..end].iter().all(|c| c.is_ascii_graphic()) {
                    return Err(BnsError::TokenType);
                }
                BnsOp::TokenTransfer {
                    consensus_hash: take(b, 0),
                    token_type: String::from_utf8_lossy(&raw[..end]).into_owned(),
                    amount: be_u64(b, 35),
                    scratch: b[43..].to_vec(),
                }
            }
            _ => return Err(length("TOKEN_TRANSFER", n, "43..=77")),
        },
        other => return Err(BnsError::UnknownOpcode(other)),
    })
}

/// `hash256_trunc128`: the first 16 bytes of SHA256. NAME_UPDATE carries
/// `hash128(fqn + consensus_hash_hex)`, hashing the hex *text*.
pub fn hash128(data: &[u8]) -> [u8; 16] {
    let d = Sha256::digest(data);
    take(&d, 0)
}

/// Reads `name` as a base-40 number (charset `0-9a-z-_.+`) and returns its
/// big-endian bytes, the way `b40_to_bin` does (hex left-padded to even length).
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

/// `hash_name(name, script_pubkey, register_addr)`: the preorder commitment.
pub fn hash_name(name: &str, script_pubkey: &[u8], register_addr: &str) -> Option<Hash160> {
    let mut data = b40_to_bin(name)?;
    data.extend_from_slice(script_pubkey);
    data.extend_from_slice(register_addr.as_bytes());
    Some(Hash160::of(&data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payload(op: u8, body: &[u8]) -> Vec<u8> {
        let mut p = b"id".to_vec();
        p.push(op);
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn hash128_matches_the_documented_vector() {
        let h = hash128(b"jude.id8d8762c37d82360b84cf4d87f32f7754");
        assert_eq!(hex::encode(h), "d1062edb9ec9c85ad1aca6d37f2f5793");
    }

    #[test]
    fn update_carries_the_zonefile_hash() {
        let mut body = vec![7u8; 16];
        body.extend_from_slice(&[0xab; 20]);
        assert_eq!(
            parse_payload(&payload(b'+', &body)).unwrap(),
            BnsOp::NameUpdate {
                name_consensus_hash: [7; 16],
                value_hash: Hash160([0xab; 20]),
            }
        );
        assert!(matches!(
            parse_payload(&payload(b'+', &body[..35])),
            Err(BnsError::Length { .. })
        ));
    }

    #[test]
    fn registration_v1_and_v2() {
        assert_eq!(
            parse_payload(&payload(b':', b"muneeb.id")).unwrap(),
            BnsOp::NameRegistration {
                name: "muneeb.id".into(),
                value_hash: None,
                tokens_burned: None
            }
        );
        let mut body = b"muneeb.id".to_vec();
        body.resize(37, 0);
        body.extend_from_slice(&[1; 20]);
        let p = payload(b':', &body);
        assert_eq!(p.len(), 60);
        assert_eq!(
            parse_payload(&p).unwrap(),
            BnsOp::NameRegistration {
                name: "muneeb.id".into(),
                value_hash: Some(Hash160([1; 20])),
                tokens_burned: None
            }
        );
        body.extend_from_slice(&500u64.to_be_bytes());
        assert!(matches!(
            parse_payload(&payload(b':', &body)).unwrap(),
            BnsOp::NameRegistration {
                tokens_burned: Some(500),
                ..
            }
        ));
    }

    #[test]
    fn names_are_checked() {
        for bad in [
            &b"noperiod"[..],
            b"two.dots.id",
            b"UPPER.id",
            b"a+b.id",
            b".id",
            b"a.",
        ] {
            assert!(
                matches!(parse_payload(&payload(b'~', bad)), Err(BnsError::Name(_))),
                "{bad:?}"
            );
        }
        assert!(parse_payload(&payload(b';', b"a_b-9.id")).is_ok());
    }

    #[test]
    fn namespace_reveal_layout() {
        let mut body = 52595u32.to_be_bytes().to_vec();
        body.extend_from_slice(&[250, 4]);
        body.extend_from_slice(&[0x65, 0x43, 0x21, 0x11, 0x11, 0x11, 0x11, 0x11]);
        body.push(0xa2);
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(b"id");
        match parse_payload(&payload(b'&', &body)).unwrap() {
            BnsOp::NamespaceReveal {
                lifetime,
                coeff,
                base,
                buckets,
                nonalpha_discount,
                no_vowel_discount,
                version,
                namespace_id,
            } => {
                assert_eq!((lifetime, coeff, base, version), (52595, 250, 4, 1));
                assert_eq!(&buckets[..6], &[6, 5, 4, 3, 2, 1]);
                assert_eq!((nonalpha_discount, no_vowel_discount), (10, 2));
                assert_eq!(namespace_id, "id");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn transfer_ready_announce_token() {
        let mut body = vec![b'~'];
        body.extend_from_slice(&[1; 32]);
        assert!(matches!(
            parse_payload(&payload(b'>', &body)).unwrap(),
            BnsOp::NameTransfer {
                keep_data: false,
                ..
            }
        ));
        body[0] = b'x';
        assert_eq!(
            parse_payload(&payload(b'>', &body)),
            Err(BnsError::KeepData(b'x'))
        );
        assert_eq!(
            parse_payload(&payload(b'!', b".id")).unwrap(),
            BnsOp::NamespaceReady {
                namespace_id: "id".into()
            }
        );
        assert_eq!(
            parse_payload(&payload(b'!', b"id")),
            Err(BnsError::ReadyDot)
        );
        let mut t = vec![0u8; 16];
        let mut ty = b"STACKS".to_vec();
        ty.resize(19, 0);
        t.extend_from_slice(&ty);
        t.extend_from_slice(&1_000_000u64.to_be_bytes());
        t.extend_from_slice(b"memo");
        assert!(matches!(
            parse_payload(&payload(b'$', &t)).unwrap(),
            BnsOp::TokenTransfer { amount: 1_000_000, ref token_type, ref scratch, .. } if token_type == "STACKS" && scratch == b"memo"
        ));
    }

    #[test]
    fn framing_errors() {
        assert_eq!(parse_payload(b"xx+"), Err(BnsError::NotBns));
        assert_eq!(parse_payload(b"id"), Err(BnsError::NoOpcode));
        assert_eq!(parse_payload(b"idZ"), Err(BnsError::UnknownOpcode(b'Z')));
        assert_eq!(parse_payload(&[b'i'; 81]), Err(BnsError::TooLong(81)));
    }

    #[test]
    fn b40_is_a_base_40_number() {
        assert_eq!(b40_to_bin("0").unwrap(), vec![0]);
        assert_eq!(b40_to_bin("a").unwrap(), vec![10]);
        // "10" in base 40 is 40; "100" is 1600 = 0x0640.
        assert_eq!(b40_to_bin("10").unwrap(), vec![40]);
        assert_eq!(b40_to_bin("100").unwrap(), vec![0x06, 0x40]);
        assert_eq!(b40_to_bin("A"), None);
        assert!(hash_name("muneeb.id", &[0x76, 0xa9], "1111111111111111111114oLvT2").is_some());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..90)) {
            let _ = parse_payload(&bytes);
        }

        #[test]
        fn random_bodies_after_magic_never_panic(op in prop::sample::select(b"?:+>~;*&!#$".to_vec()), body in proptest::collection::vec(any::<u8>(), 0..78)) {
            let _ = parse_payload(&payload(op, &body));
        }
    }
}
