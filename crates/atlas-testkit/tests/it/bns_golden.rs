//! Golden: the oracle's fixture chains (`crates/bns-rules/src/testdata/oracle/fixtures`, the
//! original indexer's verdicts on them) replayed through the follower's
//! rules give the same consensus hash at every block, the same accepted
//! operations, names, namespaces and whitelist.

use atlas_testkit::oracle::{fixture_blocks, fixture_report};
use atlas_testkit::regtest::RegtestChain;
use atlas_testkit::verdicts::{Verdicts, assert_same, follow};
use bns_rules::params::RuleSet;
use bns_rules::replay::{regtest_stx_genesis, replay};

#[test]
fn epoch1_fixture_replays_to_the_oracles_verdicts() {
    let blocks = fixture_blocks("epoch1");
    let (engine, outcomes) = replay(RuleSet::test(None), &[], &blocks);
    let ours = Verdicts::of_engine(&engine, &outcomes);
    let oracle = Verdicts::of_oracle(&fixture_report("epoch1"));
    assert_eq!(oracle.accepted.len(), 8, "the fixture's eight operations");
    assert_eq!(oracle.consensus.len(), 110, "blocks 1..=110");
    assert_eq!(oracle.inventory.len(), 4, "three imports and an update");
    assert_same("epoch1 fixture", &ours, &oracle);
    // The follower finds the same operations through script histories.
    let chain = RegtestChain::from_blocks(blocks).unwrap();
    let followed = follow(&chain, RuleSet::test(None), Vec::new());
    assert_same("epoch1 fixture, followed", &followed, &oracle);
}

#[test]
fn epoch6_fixture_replays_to_the_oracles_verdicts() {
    let blocks = fixture_blocks("epoch6");
    let rules = RuleSet::test(Some([1, 2, 3, 4, 5]));
    let (engine, outcomes) = replay(rules, &regtest_stx_genesis(), &blocks);
    let ours = Verdicts::of_engine(&engine, &outcomes);
    let oracle = Verdicts::of_oracle(&fixture_report("epoch6"));
    assert_eq!(oracle.accepted.len(), 8, "the fixture's eight operations");
    assert_same("epoch6 fixture", &ours, &oracle);
    let chain = RegtestChain::from_blocks(blocks).unwrap();
    let followed = follow(
        &chain,
        RuleSet::test(Some([1, 2, 3, 4, 5])),
        regtest_stx_genesis(),
    );
    assert_same("epoch6 fixture, followed", &followed, &oracle);
    // The namespace was paid in STX: 64,000 of the miner's 1,000,000.
    let account = engine
        .db
        .account("mhRETykpmXeTpXYq25x8ZsXZQ2YhejbqHj", "STACKS")
        .expect("the genesis account");
    assert_eq!(account.balance(), (1_000_000 - 64_000) * 1_000_000);
}
