//! An in-process regtest chain of real, valid serialized Bitcoin blocks:
//! BIP34 coinbases, correct merkle roots, regtest proof of work, and BNS
//! transactions that spend mature coinbase outputs with real p2pkh signatures.
//! It backs tests (and, later, devnet and the bitcoind-compatible RPC server).

use atlas_chain::verify::MerkleTree;
use atlas_core::zonefile::Hash160;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::Hash;
use bitcoin::script::PushBytesBuf;
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use std::collections::HashMap;

use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, Network, OutPoint, PublicKey, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness, absolute,
};

/// Coinbase outputs may be spent after this many blocks (consensus rule).
pub const COINBASE_MATURITY: usize = 100;
const FEE: u64 = 10_000;
const DUST: u64 = 5_500;

/// Regtest's block subsidy: 50 BTC, halving every 150 blocks.
pub fn subsidy(height: usize) -> u64 {
    let halvings = height / 150;
    if halvings >= 64 {
        0
    } else {
        (50 * 100_000_000u64) >> halvings
    }
}

#[derive(Clone)]
pub struct RegtestChain {
    blocks: Vec<Block>,
    secp: Secp256k1<All>,
    key: SecretKey,
    pubkey: PublicKey,
    /// Unspent outputs of our key: (outpoint, value, height created; 0 = not a coinbase).
    utxos: Vec<(OutPoint, u64, usize)>,
    /// Bumped by `truncate`, so blocks mined after a reorg differ from the old ones.
    salt: u32,
    /// Each block's merkle tree, where each transaction is, and each
    /// script's history.
    trees: Vec<MerkleTree>,
    tx_index: HashMap<Txid, (usize, usize)>,
    history: HashMap<ScriptBuf, Vec<(Txid, u64)>>,
}

impl Default for RegtestChain {
    fn default() -> Self {
        Self::new()
    }
}

impl RegtestChain {
    /// The regtest genesis block and a miner key derived from a fixed seed.
    pub fn new() -> Self {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[0x42; 32]).expect("valid secret key");
        let pubkey = PublicKey::new(key.public_key(&secp));
        let mut chain = RegtestChain {
            blocks: vec![bitcoin::constants::genesis_block(Network::Regtest)],
            secp,
            key,
            pubkey,
            utxos: Vec::new(),
            salt: 0,
            trees: Vec::new(),
            tx_index: HashMap::new(),
            history: HashMap::new(),
        };
        chain.index_block(0);
        chain
    }

    /// A chain made of `blocks`, genesis first (e.g. a fixture built by other
    /// software), indexed as if mined here. The blocks must link and carry
    /// valid merkle roots and proof of work, so whatever serves them serves a
    /// real chain. Outputs paying the miner key stay spendable, so the chain
    /// can be extended with `mine` and `bns_tx`.
    pub fn from_blocks(blocks: Vec<Block>) -> Result<Self, String> {
        if blocks.is_empty() {
            return Err("no blocks: a chain starts with its genesis block".into());
        }
        for (h, block) in blocks.iter().enumerate() {
            if h > 0 && block.header.prev_blockhash != blocks[h - 1].block_hash() {
                return Err(format!("block {h} does not link to block {}", h - 1));
            }
            if !block.check_merkle_root() {
                return Err(format!("block {h} has a wrong merkle root"));
            }
            if block.header.validate_pow(block.header.target()).is_err() {
                return Err(format!("block {h} does not meet its proof-of-work target"));
            }
        }
        let mut chain = Self::new();
        chain.blocks = blocks;
        // `truncate` rebuilds the indexes and the miner's spendable outputs
        // from whatever blocks the chain holds.
        chain.truncate(chain.height());
        Ok(chain)
    }

    fn index_block(&mut self, height: usize) {
        let block = &self.blocks[height];
        let ids: Vec<Txid> = block.txdata.iter().map(|t| t.compute_txid()).collect();
        for (pos, (tx, txid)) in block.txdata.iter().zip(&ids).enumerate() {
            self.tx_index.insert(*txid, (height, pos));
            let mut scripts: Vec<ScriptBuf> =
                tx.output.iter().map(|o| o.script_pubkey.clone()).collect();
            for input in &tx.input {
                if let Some(&(h, p)) = self.tx_index.get(&input.previous_output.txid)
                    && let Some(out) = self.blocks[h].txdata[p]
                        .output
                        .get(input.previous_output.vout as usize)
                {
                    scripts.push(out.script_pubkey.clone());
                }
            }
            scripts.sort();
            scripts.dedup();
            for script in scripts {
                self.history
                    .entry(script)
                    .or_default()
                    .push((*txid, height as u64));
            }
        }
        self.trees.push(MerkleTree::new(&ids));
    }

    /// The merkle branch and position of `txid` in the block at `height`.
    pub fn merkle_proof(&self, txid: &Txid, height: usize) -> Option<(Vec<[u8; 32]>, usize)> {
        let &(h, pos) = self.tx_index.get(txid)?;
        (h == height).then(|| (self.trees[h].branch(pos), pos))
    }

    /// Confirmed transactions paying or spending `script`, oldest first.
    pub fn script_history(&self, script: &bitcoin::Script) -> Vec<(Txid, u64)> {
        self.history.get(script).cloned().unwrap_or_default()
    }

    pub fn height(&self) -> usize {
        self.blocks.len() - 1
    }

    pub fn block(&self, height: usize) -> Option<&Block> {
        self.blocks.get(height)
    }

    pub fn tip_hash(&self) -> BlockHash {
        self.blocks[self.height()].block_hash()
    }

    pub fn headers(&self) -> Vec<Header> {
        self.blocks.iter().map(|b| b.header).collect()
    }

    /// A transaction by id, with its block height and position.
    pub fn find_tx(&self, txid: &bitcoin::Txid) -> Option<(&Transaction, usize, usize)> {
        let &(h, pos) = self.tx_index.get(txid)?;
        Some((&self.blocks[h].txdata[pos], h, pos))
    }

    /// The output an outpoint refers to, if it is on this chain.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.find_tx(&outpoint.txid)
            .and_then(|(tx, _, _)| tx.output.get(outpoint.vout as usize))
    }

    /// The miner's p2pkh script: the sender of every BNS transaction we build.
    pub fn miner_script(&self) -> ScriptBuf {
        ScriptBuf::new_p2pkh(&self.pubkey.pubkey_hash())
    }

    /// Mines a block holding `txs` after a fresh coinbase paying the miner.
    pub fn mine(&mut self, txs: Vec<Transaction>) -> &Block {
        let height = self.blocks.len();
        let coinbase = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                // BIP34: the height first; a tag keeps coinbases distinct.
                script_sig: ScriptBuf::builder()
                    .push_int(height as i64)
                    .push_slice(b"atlas")
                    .into_script(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(subsidy(height)),
                script_pubkey: self.miner_script(),
            }],
        };
        let mut txdata = vec![coinbase];
        txdata.extend(txs);
        // BIP141: a block with witness data commits to it in its coinbase
        // (an all-zero reserved value), or bitcoind would refuse it.
        if txdata
            .iter()
            .any(|t| t.input.iter().any(|i| !i.witness.is_empty()))
        {
            let reserved = [0u8; 32];
            let probe = Block {
                header: self.blocks[height - 1].header,
                txdata: txdata.clone(),
            };
            let root = probe.witness_root().expect("a block has a coinbase");
            let commitment = Block::compute_witness_commitment(&root, &reserved);
            let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
            script.extend_from_slice(commitment.as_byte_array());
            txdata[0].output.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(script),
            });
            txdata[0].input[0].witness = Witness::from_slice(&[reserved]);
        }
        let cb_txid = txdata[0].compute_txid();
        self.utxos
            .push((OutPoint::new(cb_txid, 0), subsidy(height), height));
        let prev = self.blocks[height - 1].header;
        let mut block = Block {
            header: Header {
                version: BlockVersion::from_consensus(0x2000_0000),
                prev_blockhash: prev.block_hash(),
                merkle_root: bitcoin::TxMerkleNode::all_zeros(),
                time: prev.time + 600 + self.salt,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: 0,
            },
            txdata,
        };
        block.header.merkle_root = block.compute_merkle_root().expect("a block has a coinbase");
        let target = block.header.target();
        while block.header.validate_pow(target).is_err() {
            block.header.nonce += 1;
        }
        self.blocks.push(block);
        self.index_block(height);
        &self.blocks[height]
    }

    /// Drops every block above `height` (to stage a reorg) and rebuilds the
    /// miner's spendable outputs from what remains.
    pub fn truncate(&mut self, height: usize) {
        self.blocks.truncate(height + 1);
        self.salt += 1;
        self.trees.clear();
        self.tx_index.clear();
        self.history.clear();
        for h in 0..self.blocks.len() {
            self.index_block(h);
        }
        let miner = self.miner_script();
        let mut utxos: Vec<(OutPoint, u64, usize)> = Vec::new();
        for (h, block) in self.blocks.iter().enumerate().skip(1) {
            for (i, tx) in block.txdata.iter().enumerate() {
                for input in &tx.input {
                    utxos.retain(|(op, _, _)| *op != input.previous_output);
                }
                let txid = tx.compute_txid();
                for (vout, out) in tx.output.iter().enumerate() {
                    if out.script_pubkey == miner {
                        let born = if i == 0 { h } else { 0 };
                        utxos.push((OutPoint::new(txid, vout as u32), out.value.to_sat(), born));
                    }
                }
            }
        }
        self.utxos = utxos;
    }

    /// Mines empty blocks, e.g. to mature coinbases or to confirm.
    pub fn mine_empty(&mut self, n: usize) {
        for _ in 0..n {
            self.mine(Vec::new());
        }
    }

    /// Hands a mature output of the miner key (value >= `min_value`) to a
    /// caller that spends it in a transaction of its own, signed with the
    /// miner's secret (0x42 * 32); the chain forgets it.
    pub fn take_miner_coin(&mut self, min_value: u64) -> Option<(OutPoint, u64)> {
        let tip = self.height();
        let pick = self
            .utxos
            .iter()
            .position(|(_, v, h)| (*h == 0 || tip >= h + COINBASE_MATURITY) && *v >= min_value)?;
        let (outpoint, value, _) = self.utxos.remove(pick);
        Some((outpoint, value))
    }

    /// A signed transaction whose output 0 is `OP_RETURN payload`, followed
    /// by `outputs`, then change back to the miner. Input 0 spends a mature
    /// output of the miner key, so the sender is the miner's p2pkh script.
    pub fn bns_tx(&mut self, payload: &[u8], outputs: Vec<TxOut>) -> Option<Transaction> {
        let last = outputs.len() + 1;
        self.bns_tx_change_at(payload, outputs, last)
    }

    /// As `bns_tx`, with the change output at position `change_at` (after
    /// the OP_RETURN at 0): preorders burn at output 2, so their change
    /// goes to output 1.
    pub fn bns_tx_change_at(
        &mut self,
        payload: &[u8],
        outputs: Vec<TxOut>,
        change_at: usize,
    ) -> Option<Transaction> {
        let tip = self.height();
        let spent: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
        let pick = self.utxos.iter().position(|(_, v, h)| {
            (*h == 0 || tip >= h + COINBASE_MATURITY) && *v >= spent + FEE + DUST
        })?;
        let (outpoint, value, _) = self.utxos.remove(pick);
        let data = PushBytesBuf::try_from(payload.to_vec()).ok()?;
        let mut out = vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return(data),
        }];
        out.extend(outputs);
        let change_at = change_at.clamp(1, out.len());
        out.insert(
            change_at,
            TxOut {
                value: Amount::from_sat(value - spent - FEE),
                script_pubkey: self.miner_script(),
            },
        );
        let mut tx = Transaction {
            version: Version::ONE,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: out,
        };
        let sighash = SighashCache::new(&tx)
            .legacy_signature_hash(0, &self.miner_script(), EcdsaSighashType::All.to_u32())
            .ok()?;
        let msg = Message::from_digest(sighash.to_byte_array());
        let sig = bitcoin::ecdsa::Signature {
            signature: self.secp.sign_ecdsa(&msg, &self.key),
            sighash_type: EcdsaSighashType::All,
        };
        tx.input[0].script_sig = ScriptBuf::builder()
            .push_slice(sig.serialize())
            .push_key(&self.pubkey)
            .into_script();
        // The change may be spent by the next transaction in the same block
        // (a child after its parent is valid), so many operations fit in one.
        let vout = change_at;
        let change = tx.output[vout].value.to_sat();
        self.utxos
            .push((OutPoint::new(tx.compute_txid(), vout as u32), change, 0));
        Some(tx)
    }

    /// A dust output paying `script` (a new owner, or NAME_IMPORT's hash carrier).
    pub fn dust_to(script: ScriptBuf) -> TxOut {
        TxOut {
            value: Amount::from_sat(DUST),
            script_pubkey: script,
        }
    }
}

/// The zone-file hash a NAME_UPDATE or NAME_IMPORT in `tx` carries, as the
/// node's own parser (`bns_rules::extract`) reads it: the test rules, the
/// senders looked up in `chain`. `None` for anything else.
pub fn announced_hash(chain: &RegtestChain, tx: &Transaction) -> Option<Hash160> {
    let rules = bns_rules::params::RuleSet::test(None);
    let prevouts = bns_rules::replay::prevout_scripts(tx, |t| chain.find_tx(t).map(|(f, _, _)| f));
    let height = chain.height() as u64 + 1;
    let op = bns_rules::extract::parse_tx(&rules, height, 1, tx, &prevouts)?;
    match op.body {
        bns_rules::extract::Body::NameUpdate { value_hash, .. }
        | bns_rules::extract::Body::NameImport { value_hash, .. } => value_hash.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlas_chain::verify::{VerifyError, merkle_branch, verify_headers, verify_merkle_branch};
    use atlas_core::zonefile::Hash160;
    use bitcoin::consensus::{deserialize, serialize};
    use bns_rules::hashing::hash128;

    fn update_payload(name: &str, consensus_hex: &str, zonefile: Hash160) -> Vec<u8> {
        let mut p = b"id+".to_vec();
        p.extend_from_slice(&hash128(format!("{name}{consensus_hex}").as_bytes()));
        p.extend_from_slice(&zonefile.0);
        p
    }

    #[test]
    fn blocks_are_valid_and_bns_ops_verify_end_to_end() {
        let mut chain = RegtestChain::new();
        // Two mature coinbases: one per transaction below.
        chain.mine_empty(COINBASE_MATURITY + 2);
        let zf = Hash160::of(b"$ORIGIN jude.id\n");
        let tx = chain
            .bns_tx(
                &update_payload("jude.id", "8d8762c37d82360b84cf4d87f32f7754", zf),
                vec![RegtestChain::dust_to(chain.miner_script())],
            )
            .expect("a mature coinbase to spend");
        // The import's hash rides in output 2 as a p2pkh script hash.
        let mut import = b"id;".to_vec();
        import.extend_from_slice(b"muneeb.id");
        let carrier = ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_byte_array(zf.0));
        let tx2 = chain
            .bns_tx(
                &import,
                vec![
                    RegtestChain::dust_to(chain.miner_script()),
                    RegtestChain::dust_to(carrier),
                ],
            )
            .unwrap();
        let block = chain.mine(vec![tx.clone(), tx2.clone()]).clone();

        // Serialized bytes round-trip, and the block checks out.
        let bytes = serialize(&block);
        let back: Block = deserialize(&bytes).unwrap();
        assert_eq!(back.block_hash(), block.block_hash());
        assert!(block.check_merkle_root());
        assert!(block.bip34_block_height().is_ok());
        let headers = chain.headers();
        verify_headers(None, &headers, 0, Network::Regtest).unwrap();

        // Each BNS tx is proven in its block and parses to the announced hash.
        let txids: Vec<_> = block.txdata.iter().map(|t| t.compute_txid()).collect();
        for (pos, t) in block.txdata.iter().enumerate().skip(1) {
            verify_merkle_branch(
                txids[pos],
                &merkle_branch(&txids, pos),
                pos,
                block.header.merkle_root,
            )
            .unwrap();
            assert_eq!(announced_hash(&chain, t), Some(zf));
        }
        assert_eq!(
            announced_hash(&chain, &block.txdata[0]),
            None,
            "the coinbase is not BNS"
        );

        // The signature is a real p2pkh signature over the spent output.
        let sig_push = tx.input[0]
            .script_sig
            .instructions()
            .next()
            .unwrap()
            .unwrap();
        let sig_bytes = sig_push.push_bytes().unwrap().as_bytes();
        let sig = bitcoin::ecdsa::Signature::from_slice(sig_bytes).unwrap();
        let sighash = SighashCache::new(&tx)
            .legacy_signature_hash(0, &chain.miner_script(), EcdsaSighashType::All.to_u32())
            .unwrap();
        chain
            .secp
            .verify_ecdsa(
                &Message::from_digest(sighash.to_byte_array()),
                &sig.signature,
                &chain.pubkey.inner,
            )
            .unwrap();
    }

    #[test]
    fn lies_are_caught() {
        let mut chain = RegtestChain::new();
        chain.mine_empty(COINBASE_MATURITY + 1);
        let tx = chain.bns_tx(b"id!.id", vec![]).unwrap();
        let block = chain.mine(vec![tx]).clone();
        chain.mine_empty(3);
        let mut headers = chain.headers();
        // A header that does not link.
        headers[50].prev_blockhash = BlockHash::all_zeros();
        assert_eq!(
            verify_headers(None, &headers, 0, Network::Regtest),
            Err(VerifyError::Link { height: 50 })
        );
        // A header whose nonce no longer meets its target (regtest's target is
        // so easy that we search for a failing nonce).
        let mut h = chain.headers()[60];
        while h.validate_pow(h.target()).is_ok() {
            h.nonce = h.nonce.wrapping_add(1);
        }
        assert!(matches!(
            verify_headers(None, &[h], 60, Network::Regtest),
            Err(VerifyError::Pow { .. })
        ));
        // A regtest-difficulty header is far too easy for mainnet.
        assert!(matches!(
            verify_headers(None, &chain.headers()[1..2], 1, Network::Bitcoin),
            Err(VerifyError::Target { .. })
        ));
        // A merkle branch for the wrong position or transaction.
        let txids: Vec<_> = block.txdata.iter().map(|t| t.compute_txid()).collect();
        let branch = merkle_branch(&txids, 1);
        assert!(verify_merkle_branch(txids[1], &branch, 1, block.header.merkle_root).is_ok());
        assert!(verify_merkle_branch(txids[0], &branch, 1, block.header.merkle_root).is_err());
        assert!(verify_merkle_branch(txids[1], &branch, 0, block.header.merkle_root).is_err());
    }

    #[test]
    fn a_chain_rebuilt_from_its_blocks_indexes_and_mines_the_same() {
        let mut chain = RegtestChain::new();
        chain.mine_empty(COINBASE_MATURITY + 1);
        let tx = chain.bns_tx(b"id!.id", vec![]).unwrap();
        let txid = tx.compute_txid();
        chain.mine(vec![tx]);
        let blocks: Vec<Block> = (0..=chain.height())
            .map(|h| chain.block(h).unwrap().clone())
            .collect();

        let mut copy = RegtestChain::from_blocks(blocks.clone()).unwrap();
        assert_eq!(copy.tip_hash(), chain.tip_hash());
        assert_eq!(
            copy.find_tx(&txid).map(|(_, h, p)| (h, p)),
            Some((chain.height(), 1))
        );
        let miner = chain.miner_script();
        assert_eq!(copy.script_history(&miner), chain.script_history(&miner));
        // The miner's outputs were rebuilt: it can still spend and mine.
        let tx = copy.bns_tx(b"id!.id", vec![]).expect("a spendable output");
        copy.mine(vec![tx]);
        verify_headers(None, &copy.headers(), 0, Network::Regtest).unwrap();

        assert!(RegtestChain::from_blocks(Vec::new()).is_err());
        let mut unlinked = blocks.clone();
        unlinked.remove(5);
        assert!(
            RegtestChain::from_blocks(unlinked)
                .err()
                .expect("a gap is refused")
                .contains("block 5 does not link")
        );
        let mut tampered = blocks;
        tampered[7].txdata[0].output[0].value = Amount::from_sat(1);
        assert!(
            RegtestChain::from_blocks(tampered)
                .err()
                .expect("a changed transaction is refused")
                .contains("merkle root")
        );
    }
}
