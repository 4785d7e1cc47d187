//! The original BNS indexer ("the oracle", `../shared/oracle`) run from the
//! tests: the harness reproduces the oracle's recorded verdicts on the shared
//! fixture chains, and reports its verdict on the chains the project builds.

mod common;

use std::time::Instant;

use atlas::chain::regtest::RegtestChain;
use atlas::zonefile::Hash160;
use common::oracle::{
    OracleReport, OracleRules, fixture_blocks, fixture_report, provision, run_oracle,
};

/// Requires `got` to agree with `want` on everything a follower must
/// reproduce. Timings and warnings are left out: they are not verdicts.
fn assert_same_verdict(name: &str, got: &OracleReport, want: &OracleReport) {
    assert_eq!(got.first_block, want.first_block, "{name}: first block");
    assert_eq!(got.indexed_to, want.indexed_to, "{name}: tip");
    assert_eq!(
        got.consensus.len(),
        want.consensus.len(),
        "{name}: consensus rows"
    );
    for (g, w) in got.consensus.iter().zip(&want.consensus) {
        assert_eq!(g, w, "{name}: consensus at block {}", w.block_id);
    }
    assert_eq!(got.accepted, want.accepted, "{name}: accepted operations");
    assert_eq!(got.rejected, want.rejected, "{name}: rejected operations");
    assert_eq!(got.namespaces, want.namespaces, "{name}: namespaces");
    assert_eq!(got.names, want.names, "{name}: names");
    assert_eq!(
        got.zonefile_inventory, want.zonefile_inventory,
        "{name}: zone-file inventory"
    );
}

fn fixture_reproduces(name: &str, rules: OracleRules) -> OracleReport {
    provision();
    let blocks = fixture_blocks(name);
    let chain = RegtestChain::from_blocks(blocks.clone())
        .unwrap_or_else(|e| panic!("fixture {name} is a valid chain: {e}"));
    assert_eq!(chain.height(), blocks.len() - 1);
    let started = Instant::now();
    let got = run_oracle(&chain, &rules);
    eprintln!(
        "oracle on fixture {name}: {} blocks in {:.1?} (indexing {} s)",
        chain.height(),
        started.elapsed(),
        got.index_seconds
    );
    let want = fixture_report(name);
    assert_same_verdict(name, &got, &want);
    got
}

/// The fixtures' eight operations, in chain order (README "Files").
const FIXTURE_OPS: [(u64, &str); 8] = [
    (102, "NAMESPACE_PREORDER"),
    (103, "NAMESPACE_REVEAL"),
    (104, "NAME_IMPORT"),
    (104, "NAME_IMPORT"),
    (104, "NAME_IMPORT"),
    (107, "NAMESPACE_READY"),
    (108, "NAME_UPDATE"),
    (109, "NAME_TRANSFER"),
];

fn assert_fixture_ops(report: &OracleReport) {
    let ops: Vec<(u64, &str)> = report
        .accepted
        .iter()
        .map(|a| (a.block_id, a.op.as_str()))
        .collect();
    assert_eq!(ops, FIXTURE_OPS);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.names.len(), 3);
    assert_eq!(report.zonefile_inventory.len(), 4);
}

#[test]
fn the_harness_reproduces_the_oracle_on_the_epoch1_fixture() {
    let report = fixture_reproduces("epoch1", OracleRules::epoch1());
    assert_fixture_ops(&report);
    // Epoch 1 prices `id` in satoshis only.
    assert_eq!(report.namespaces[0].op_fee, 4_000_000_000);
    assert_eq!(report.namespaces[0].token_fee, "0");
}

#[test]
fn the_harness_reproduces_the_oracle_on_the_epoch6_fixture() {
    let report = fixture_reproduces("epoch6", OracleRules::epoch6());
    assert_fixture_ops(&report);
    // Epoch 6 prices `id` in STX, paid from the genesis allocation.
    assert_eq!(report.namespaces[0].token_fee, "64000000000");
}

/// The chain the project's builder makes (the devnet's: a namespace
/// preordered, revealed, and names imported into it): the original accepts
/// every operation, and its whitelist is the follower's.
#[test]
fn the_oracle_accepts_the_builders_chain() {
    let mut chain = RegtestChain::new();
    chain.setup_import_namespace("id");
    let hashes: Vec<Hash160> = (0..3)
        .map(|i| Hash160::of(format!("$ORIGIN n{i}.id\n").as_bytes()))
        .collect();
    let txs = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| chain.name_import(&format!("n{i}.id"), *h))
        .collect();
    chain.mine(txs);
    chain.mine_empty(1);

    let started = Instant::now();
    let report = run_oracle(&chain, &OracleRules::epoch1());
    eprintln!(
        "oracle on the builder's chain: {} blocks in {:.1?}",
        chain.height(),
        started.elapsed(),
    );
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let ops: Vec<&str> = report.accepted.iter().map(|a| a.op.as_str()).collect();
    assert_eq!(
        ops,
        [
            "NAMESPACE_PREORDER",
            "NAMESPACE_REVEAL",
            "NAME_IMPORT",
            "NAME_IMPORT",
            "NAME_IMPORT"
        ]
    );
    let whitelist: Vec<String> = report
        .zonefile_inventory
        .iter()
        .map(|z| z.value_hash.clone())
        .collect();
    let expected: Vec<String> = hashes.iter().map(|h| hex::encode(h.0)).collect();
    assert_eq!(whitelist, expected);
    // And the follower's rules agree with the oracle on every block.
    let blocks: Vec<_> = (0..=chain.height())
        .map(|h| chain.block(h).unwrap().clone())
        .collect();
    let (engine, outcomes) = atlas::chain::rules::replay::replay(
        atlas::chain::rules::params::RuleSet::test(None),
        &[],
        &blocks,
    );
    common::bns::assert_same(
        "the builder's chain",
        &common::bns::Verdicts::of_engine(&engine, &outcomes),
        &common::bns::Verdicts::of_oracle(&report),
    );
}
