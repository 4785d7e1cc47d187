//! Checks on what a chain server says: headers link and carry their proof of
//! work, and a transaction's merkle branch leads to its block's merkle root.

use bitcoin::block::Header;
use bitcoin::hashes::{Hash, sha256d};
use bitcoin::{Network, Target, TxMerkleNode, Txid};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("header at height {height} does not build on the one before it")]
    Link { height: u64 },
    #[error("header at height {height} lacks the proof of work its bits claim")]
    Pow { height: u64 },
    #[error("header at height {height} claims a target easier than the network allows")]
    Target { height: u64 },
    #[error("merkle branch of {txid} does not lead to the block's merkle root")]
    Merkle { txid: Txid },
}

/// The easiest target a network accepts.
pub fn pow_limit(network: Network) -> Target {
    bitcoin::consensus::Params::new(network).max_attainable_target
}

/// Verifies `headers` (at heights `first_height..`) link to `prev` and to each
/// other, and that each meets its own target, no easier than the network's limit.
/// Difficulty retargeting is not re-derived here: an attacker would still
/// have to out-mine the honest chain at a plausible difficulty.
pub fn verify_headers(
    prev: Option<&Header>,
    headers: &[Header],
    first_height: u64,
    network: Network,
) -> Result<(), VerifyError> {
    let limit = pow_limit(network);
    let mut prev_hash = prev.map(|h| h.block_hash());
    for (i, h) in headers.iter().enumerate() {
        let height = first_height + i as u64;
        if let Some(p) = prev_hash
            && h.prev_blockhash != p
        {
            return Err(VerifyError::Link { height });
        }
        let target = h.target();
        if target > limit {
            return Err(VerifyError::Target { height });
        }
        h.validate_pow(target)
            .map_err(|_| VerifyError::Pow { height })?;
        prev_hash = Some(h.block_hash());
    }
    Ok(())
}

fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left);
    buf[32..].copy_from_slice(right);
    sha256d::Hash::hash(&buf).to_byte_array()
}

/// Checks an Electrum-style merkle branch (siblings from the leaf up, in
/// internal byte order) for the transaction at position `pos`.
pub fn verify_merkle_branch(
    txid: Txid,
    branch: &[[u8; 32]],
    pos: usize,
    root: TxMerkleNode,
) -> Result<(), VerifyError> {
    let mut cur = txid.to_byte_array();
    let mut idx = pos;
    for sibling in branch {
        cur = if idx & 1 == 0 {
            hash_pair(&cur, sibling)
        } else {
            hash_pair(sibling, &cur)
        };
        idx >>= 1;
    }
    if idx != 0 || cur != root.to_byte_array() {
        return Err(VerifyError::Merkle { txid });
    }
    Ok(())
}

/// The merkle branch of `txids[pos]`, as a server would send it.
pub fn merkle_branch(txids: &[Txid], pos: usize) -> Vec<[u8; 32]> {
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.to_byte_array()).collect();
    let mut idx = pos;
    let mut branch = Vec::new();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(*level.last().expect("non-empty level"));
        }
        branch.push(level[idx ^ 1]);
        level = level
            .chunks(2)
            .map(|pair| hash_pair(&pair[0], &pair[1]))
            .collect();
        idx >>= 1;
    }
    branch
}
