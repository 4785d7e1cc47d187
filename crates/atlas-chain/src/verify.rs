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
    MerkleTree::new(txids).branch(pos)
}

/// A block's whole merkle tree, built once so that each transaction's
/// branch costs a walk up it rather than a rebuild (a block of n
/// transactions then proves all of them in O(n log n), not O(n^2)).
#[derive(Clone, Debug)]
pub struct MerkleTree {
    /// Leaves first; each level padded to even length as Bitcoin does.
    levels: Vec<Vec<[u8; 32]>>,
}

impl MerkleTree {
    pub fn new(txids: &[Txid]) -> Self {
        let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.to_byte_array()).collect();
        let mut levels = Vec::new();
        while level.len() > 1 {
            if level.len() % 2 == 1 {
                level.push(*level.last().expect("non-empty level"));
            }
            let up = level
                .chunks(2)
                .map(|pair| hash_pair(&pair[0], &pair[1]))
                .collect();
            levels.push(std::mem::replace(&mut level, up));
        }
        levels.push(level);
        MerkleTree { levels }
    }

    /// Siblings from the leaf at `pos` up to the root.
    pub fn branch(&self, pos: usize) -> Vec<[u8; 32]> {
        let mut idx = pos;
        let mut branch = Vec::with_capacity(self.levels.len());
        for level in &self.levels[..self.levels.len() - 1] {
            branch.push(level[idx ^ 1]);
            idx >>= 1;
        }
        branch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_branch_of_a_built_tree_leads_to_bitcoins_merkle_root() {
        for n in 1..=33u8 {
            let txids: Vec<Txid> = (0..n)
                .map(|i| Txid::from_byte_array(sha256d::Hash::hash(&[n, i]).to_byte_array()))
                .collect();
            let root = bitcoin::merkle_tree::calculate_root(txids.iter().copied())
                .expect("non-empty")
                .into();
            let tree = MerkleTree::new(&txids);
            for (pos, txid) in txids.iter().enumerate() {
                let branch = tree.branch(pos);
                assert!(
                    verify_merkle_branch(*txid, &branch, pos, root).is_ok(),
                    "{n} transactions, position {pos}"
                );
                if n > 1 {
                    let other = (pos + 1) % n as usize;
                    assert!(verify_merkle_branch(*txid, &branch, other, root).is_err());
                }
            }
        }
    }
}
