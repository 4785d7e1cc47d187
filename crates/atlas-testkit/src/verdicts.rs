//! The follower's verdicts in the oracle's shape, and one comparison for
//! every test that holds them against the original indexer.

#![allow(dead_code)]

use std::collections::HashMap;

use std::sync::{Arc, Mutex};

use crate::backend::RegtestBackend;
use crate::regtest::RegtestChain;
use atlas_chain::follower::{Follower, FollowerStatus};
use bns_rules::engine::{Allocation, BlockOutcome, Engine};
use bns_rules::params::RuleSet;

use crate::oracle::OracleReport;

/// Everything the oracle reports that the rules decide.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdicts {
    /// (block, consensus hash, ops hash)
    pub consensus: Vec<(u64, String, String)>,
    /// (block, vtxindex, txid, opcode name, history id)
    pub accepted: Vec<(u64, u64, String, String, String)>,
    /// (name, value hash, owner address, block_number, last_renewed, revoked)
    pub names: Vec<(String, Option<String>, String, u64, u64, bool)>,
    /// (namespace id, op, reveal block, ready block, address, recipient address)
    pub namespaces: Vec<(String, String, u64, u64, String, String)>,
    /// (block, name, value hash, txid): the whitelist, in order.
    pub inventory: Vec<(u64, String, String, String)>,
}

impl Verdicts {
    pub fn of_oracle(r: &OracleReport) -> Self {
        let mut v = Verdicts {
            consensus: r
                .consensus
                .iter()
                .filter(|c| c.block_id >= i64::try_from(r.first_block).unwrap_or(1))
                .map(|c| {
                    (
                        c.block_id as u64,
                        c.consensus_hash.clone(),
                        c.ops_hash.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            accepted: r
                .accepted
                .iter()
                .map(|a| {
                    (
                        a.block_id,
                        a.vtxindex,
                        a.txid.clone(),
                        a.op.clone(),
                        a.history_id.clone(),
                    )
                })
                .collect(),
            names: r
                .names
                .iter()
                .map(|n| {
                    (
                        n.name.clone(),
                        n.value_hash.clone(),
                        n.address.clone(),
                        n.block_number,
                        n.last_renewed,
                        n.revoked,
                    )
                })
                .collect(),
            namespaces: r
                .namespaces
                .iter()
                .map(|n| {
                    (
                        n.namespace_id.clone(),
                        n.op.clone(),
                        n.reveal_block,
                        n.ready_block,
                        n.address.clone(),
                        n.recipient_address.clone(),
                    )
                })
                .collect(),
            inventory: r
                .zonefile_inventory
                .iter()
                .map(|z| {
                    (
                        z.block_id,
                        z.name.clone(),
                        z.value_hash.clone(),
                        z.txid.clone(),
                    )
                })
                .collect(),
        };
        v.sort();
        v
    }

    /// From an engine and the outcomes of the blocks it processed.
    pub fn of_engine(engine: &Engine, outcomes: &[(u64, BlockOutcome)]) -> Self {
        // A consumed preorder is listed under the name or namespace it
        // became, as the original's history table files it. A hash can be
        // preordered again while a name carrying it lives: the original
        // keeps one row per preorder, a registration consumes the oldest
        // and deletes the others, which then appear nowhere in its report.
        let mut v = Verdicts::default();
        let mut outstanding: HashMap<String, Vec<usize>> = HashMap::new();
        let mut vanished = Vec::new();
        for (block, o) in outcomes {
            v.consensus
                .push((*block, o.consensus_hash.clone(), o.ops_hash.clone()));
            // Registrations and reveals consume preorders, in the order they
            // were accepted: one `consumed_preorders` entry each.
            let mut consumed = o.consumed_preorders.iter();
            for a in &o.accepted {
                if matches!(a.opcode, "NAME_PREORDER" | "NAMESPACE_PREORDER") {
                    outstanding
                        .entry(a.history_id.clone())
                        .or_default()
                        .push(v.accepted.len());
                }
                v.accepted.push((
                    *block,
                    u64::from(a.vtxindex),
                    a.txid.clone(),
                    a.opcode.to_string(),
                    a.history_id.clone(),
                ));
                if matches!(a.opcode, "NAME_REGISTRATION" | "NAMESPACE_REVEAL")
                    && let Some((hash, id)) = consumed.next()
                    && let Some(rows) = outstanding.remove(hash)
                {
                    v.accepted[rows[0]].4 = id.clone();
                    vanished.extend_from_slice(&rows[1..]);
                }
            }
            for z in &o.announced {
                v.inventory
                    .push((*block, z.name.clone(), z.value_hash.clone(), z.txid.clone()));
            }
        }
        vanished.sort_unstable();
        for i in vanished.into_iter().rev() {
            v.accepted.remove(i);
        }
        for n in engine.db.names() {
            v.names.push((
                n.name.clone(),
                n.value_hash.clone(),
                n.address.clone(),
                n.block_number,
                n.last_renewed,
                n.revoked,
            ));
        }
        for n in engine.db.namespaces.values() {
            v.namespaces.push((
                n.namespace_id.clone(),
                n.op.clone(),
                n.reveal_block,
                n.ready_block,
                n.address.clone(),
                n.recipient_address.clone(),
            ));
        }
        v.sort();
        v
    }

    /// Inventory order is the whitelist order and stays as it is.
    fn sort(&mut self) {
        self.consensus.sort();
        self.accepted.sort();
        self.names.sort();
        self.namespaces.sort();
    }
}

/// The follower's verdicts on `chain`, found as from an Electrum server:
/// through script histories and merkle proofs, confirmed to the tip.
pub fn follow(chain: &RegtestChain, rules: RuleSet, genesis: Vec<Allocation>) -> Verdicts {
    follow_with_status(chain, rules, genesis).0
}

/// `follow`, with the status of the follower's round.
pub fn follow_with_status(
    chain: &RegtestChain,
    rules: RuleSet,
    genesis: Vec<Allocation>,
) -> (Verdicts, FollowerStatus) {
    let start = rules.first_block;
    let checkpoint = chain
        .block(start as usize - 1)
        .expect("the block before the first one indexed")
        .header;
    let mut f = Follower::with_rules(
        bitcoin::Network::Regtest,
        rules,
        genesis,
        checkpoint,
        start,
        1,
        [],
    );
    f.record_outcomes();
    let mut backend = RegtestBackend {
        chain: Arc::new(Mutex::new(chain.clone())),
    };
    let status = f.poll(&mut backend).expect("the follower reads the chain");
    (Verdicts::of_engine(&f.state, f.outcomes()), status)
}

/// Every block of `chain`, genesis first (index = height).
pub fn blocks_of(chain: &RegtestChain) -> Vec<bitcoin::Block> {
    (0..=chain.height())
        .map(|h| chain.block(h).expect("in range").clone())
        .collect()
}

/// Panics with the first difference of each kind, naming the block.
pub fn assert_same(what: &str, ours: &Verdicts, oracle: &Verdicts) {
    let mut problems = Vec::new();
    let ours_ch: HashMap<u64, &(u64, String, String)> =
        ours.consensus.iter().map(|c| (c.0, c)).collect();
    if let Some(first) = oracle
        .consensus
        .iter()
        .find(|c| ours_ch.get(&c.0).is_none_or(|o| *o != *c))
    {
        problems.push(format!(
            "first consensus difference at block {}: oracle {:?}, ours {:?}",
            first.0,
            first,
            ours_ch.get(&first.0)
        ));
    }
    if ours.consensus.len() != oracle.consensus.len() {
        problems.push(format!(
            "blocks: oracle {} ours {}",
            oracle.consensus.len(),
            ours.consensus.len()
        ));
    }
    let diff = |name: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
        format!("{name} differ:\n oracle: {a:?}\n ours:   {b:?}")
    };
    if ours.accepted != oracle.accepted {
        let only_oracle: Vec<_> = oracle
            .accepted
            .iter()
            .filter(|a| !ours.accepted.contains(a))
            .collect();
        let only_ours: Vec<_> = ours
            .accepted
            .iter()
            .filter(|a| !oracle.accepted.contains(a))
            .collect();
        problems.push(diff("accepted operations", &only_oracle, &only_ours));
    }
    if ours.names != oracle.names {
        problems.push(diff("names", &oracle.names, &ours.names));
    }
    if ours.namespaces != oracle.namespaces {
        problems.push(diff("namespaces", &oracle.namespaces, &ours.namespaces));
    }
    if ours.inventory != oracle.inventory {
        problems.push(diff("whitelists", &oracle.inventory, &ours.inventory));
    }
    assert!(
        problems.is_empty(),
        "{what}: the follower disagrees with the original indexer:\n{}",
        problems.join("\n")
    );
}
