//! A regtest chain built block by block with our rule engine alongside, so
//! that each next operation can quote a consensus hash the original will
//! take and pay the price it will ask. The generator drives one; a test can
//! script one by hand.

use std::collections::HashMap;

use bitcoin::{Transaction, Txid};

use super::wallet::{KeyId, Spend, Wallet};
use crate::regtest::{COINBASE_MATURITY, RegtestChain};
use bns_rules::engine::{Allocation, BlockOutcome, Engine};
use bns_rules::params::RuleSet;
use bns_rules::replay::block_ops;

pub struct ChainBuilder {
    pub rules: RuleSet,
    pub chain: RegtestChain,
    pub wallet: Wallet,
    /// Has processed every mined block.
    pub engine: Engine,
    txs: HashMap<Txid, Transaction>,
    /// The next block's transactions so far.
    pending: Vec<Transaction>,
}

impl ChainBuilder {
    /// The regtest genesis block; `genesis` is the token genesis the
    /// indexer starts from.
    pub fn new(rules: RuleSet, genesis: &[Allocation]) -> ChainBuilder {
        ChainBuilder {
            engine: Engine::new(rules.clone(), genesis),
            rules,
            chain: RegtestChain::new(),
            wallet: Wallet::new(),
            txs: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Mines empty blocks until the first coinbase can be spent.
    pub fn mature(&mut self) {
        while self.chain.height() <= COINBASE_MATURITY {
            self.mine();
        }
    }

    /// The height of the block being built.
    pub fn next_block(&self) -> u64 {
        self.chain.height() as u64 + 1
    }

    /// The consensus hash of the block `back` blocks below the tip (all
    /// zeros below the first).
    pub fn consensus_hash_back(&self, back: u64) -> [u8; 16] {
        let tip = self.chain.height() as u64;
        tip.checked_sub(back)
            .and_then(|h| self.engine.consensus_hash(h))
            .and_then(|c| hex::decode(c).ok()?.try_into().ok())
            .unwrap_or([0; 16])
    }

    /// Adds a transaction to the next block.
    pub fn add(&mut self, tx: Transaction) {
        self.pending.push(tx);
    }

    /// Builds `spend` into the next block; None when its keys cannot pay.
    pub fn send(&mut self, spend: &Spend) -> Option<Txid> {
        let tx = self.wallet.build(&mut self.chain, spend)?;
        let txid = tx.compute_txid();
        self.pending.push(tx);
        Some(txid)
    }

    /// A miner payment to keys, into the next block (its outputs can be
    /// spent by later transactions of the same block).
    pub fn fund(&mut self, payments: &[(KeyId, u64)]) -> bool {
        match self.wallet.fund(&mut self.chain, payments) {
            Some(tx) => {
                self.pending.push(tx);
                true
            }
            None => false,
        }
    }

    /// Mines the next block and runs it through the engine (from the rules'
    /// first block on). Once the original would have aborted
    /// (`engine.halted()`), blocks are still mined but get empty outcomes.
    pub fn mine(&mut self) -> BlockOutcome {
        let height = self.next_block();
        let block = self.chain.mine(std::mem::take(&mut self.pending)).clone();
        for tx in &block.txdata {
            self.txs.insert(tx.compute_txid(), tx.clone());
        }
        if height < self.rules.first_block {
            return BlockOutcome::default();
        }
        let ops = block_ops(&self.rules, height, &block, &self.txs);
        self.engine.process_block(height, &ops).unwrap_or_default()
    }
}
