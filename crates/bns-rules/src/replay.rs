//! Every transaction of every block through the rules, as the original
//! indexer sees a chain (it reads whole blocks; the follower reads script
//! histories). Tests compare both against the oracle.

use std::collections::HashMap;

use bitcoin::{Block, Transaction, Txid};

use super::engine::{Allocation, BlockOutcome, Engine};
use super::extract::{ParsedOp, parse_tx};
use super::params::RuleSet;

/// The scripts a transaction's inputs spend, their funding transactions found
/// by `funding`; a coinbase or an unknown funding transaction gives an empty
/// script.
pub fn prevout_scripts<'a>(
    tx: &Transaction,
    funding: impl Fn(&Txid) -> Option<&'a Transaction>,
) -> Vec<Vec<u8>> {
    tx.input
        .iter()
        .map(|i| {
            funding(&i.previous_output.txid)
                .and_then(|f| f.output.get(i.previous_output.vout as usize))
                .map(|o| o.script_pubkey.to_bytes())
                .unwrap_or_default()
        })
        .collect()
}

/// The BNS operations of `block` at `height`, in transaction order, as the
/// original sees them; `txs` must hold every transaction its inputs spend.
pub fn block_ops(
    rules: &RuleSet,
    height: u64,
    block: &Block,
    txs: &HashMap<Txid, Transaction>,
) -> Vec<ParsedOp> {
    block
        .txdata
        .iter()
        .enumerate()
        .filter(|(_, tx)| !tx.is_coinbase())
        .filter_map(|(i, tx)| {
            parse_tx(
                rules,
                height,
                i as u32,
                tx,
                &prevout_scripts(tx, |t| txs.get(t)),
            )
        })
        .collect()
}

/// Processes `blocks` (genesis first, so index = height) from the rules'
/// first block on, returning each processed block's outcome by height. Where
/// the original would abort, the outcomes stop (`Engine::halted` says why).
pub fn replay(
    rules: RuleSet,
    genesis: &[Allocation],
    blocks: &[Block],
) -> (Engine, Vec<(u64, BlockOutcome)>) {
    let mut engine = Engine::new(rules, genesis);
    let mut txs: HashMap<Txid, Transaction> = HashMap::new();
    let mut out = Vec::new();
    for (height, block) in blocks.iter().enumerate() {
        let height = height as u64;
        for tx in &block.txdata {
            txs.insert(tx.compute_txid(), tx.clone());
        }
        if height < engine.rules.first_block {
            continue;
        }
        let ops = block_ops(&engine.rules, height, block, &txs);
        match engine.process_block(height, &ops) {
            Ok(outcome) => out.push((height, outcome)),
            Err(_) => break,
        }
    }
    (engine, out)
}

/// The oracle's test genesis with tokens (`oracle/genesis_stx.py`):
/// 1,000,000 STX, unlocked, for the regtest miner key (secret 0x42 * 32).
pub fn regtest_stx_genesis() -> Vec<Allocation> {
    vec![Allocation {
        address: "mhRETykpmXeTpXYq25x8ZsXZQ2YhejbqHj".into(),
        token_type: "STACKS".into(),
        value: 1_000_000 * 1_000_000,
        lock_send: 0,
        receive_whitelisted: true,
        vesting: Vec::new(),
    }]
}
