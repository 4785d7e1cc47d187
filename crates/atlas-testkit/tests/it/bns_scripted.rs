//! BNS cases scripted against the original indexer (the oracle): each
//! pins a rule the differential (`bns_differential.rs`) reaches only at
//! random, or found once, so that a change of the generator cannot lose it.

use atlas_testkit::bnsgen::ChainBuilder;
use atlas_testkit::bnsgen::keys::{Key, KeyKind};
use atlas_testkit::bnsgen::ops::{self, Reveal};
use atlas_testkit::bnsgen::wallet::MINER;
use atlas_testkit::oracle::{OracleRules, run_oracle, run_oracle_until_abort};
use atlas_testkit::regtest::RegtestChain;
use atlas_testkit::verdicts::{Verdicts, assert_same, blocks_of, follow_with_status};
use bitcoin::secp256k1::SecretKey;
use bns_rules::engine::Allocation;
use bns_rules::engine::BlockOutcome;
use bns_rules::params::Units;
use bns_rules::params::{RuleSet, TestTimers};
use bns_rules::price::price_namespace;
use bns_rules::replay::{regtest_stx_genesis, replay};

const TIMERS: TestTimers = TestTimers {
    namespace_reveal_expire: 5,
    grace_period: 6,
    receive_fees_period: 40,
};
/// What a 9-character namespace costs in epoch 1.
const FEE: u64 = 40_000_000;

/// Preorders `ns` for `recipient` burning `fee` (and paying `tokens` STX),
/// mines, reveals it as `version`, mines; returns the reveal's txid.
fn reveal_as(
    b: &mut ChainBuilder,
    ns: &str,
    recipient: usize,
    fee: u64,
    tokens: Option<u64>,
    version: u16,
) -> String {
    let script = b.wallet.script(MINER);
    let hash = ops::preorder_hash(ns, &script, &b.wallet.address(recipient));
    let payload = ops::namespace_preorder_payload(hash, b.consensus_hash_back(0), tokens);
    b.send(&ops::preorder_tx(MINER, payload, ops::burn_script(), fee))
        .expect("the miner pays");
    b.mine();
    let reveal = Reveal {
        namespace_id: ns.into(),
        lifetime: 10,
        coeff: 1,
        base: 2,
        buckets: [1; 16],
        nonalpha_discount: 1,
        no_vowel_discount: 1,
        version,
    };
    let to = b.wallet.script(recipient);
    let txid = b
        .send(&ops::recipient_tx(MINER, ops::reveal_payload(&reveal), to))
        .expect("the miner pays");
    b.mine();
    txid.to_string()
}

fn preorder_and_reveal(b: &mut ChainBuilder, ns: &str, recipient: usize, fee: u64) -> String {
    reveal_as(b, ns, recipient, fee, None, 1)
}

fn new_keys(b: &mut ChainBuilder, n: u8) -> Vec<usize> {
    (1..=n)
        .map(|i| {
            let sk = SecretKey::from_slice(&[i; 32]).expect("a valid secret");
            let key = Key::new(&b.wallet.secp, KeyKind::P2pkh, vec![sk]);
            b.wallet.add(key)
        })
        .collect()
}

fn expire_reveal(b: &mut ChainBuilder) {
    let revealed = b.next_block() - 1;
    while b.next_block() < revealed + TIMERS.namespace_reveal_expire {
        b.mine();
    }
}

/// Our halt, replayed and followed, against the oracle's abort; and
/// everything before the halting block against the oracle.
fn check_halt(b: &ChainBuilder, rules: RuleSet, genesis: &[Allocation], oracle: &OracleRules) {
    let halt = b
        .engine
        .halted()
        .cloned()
        .expect("the chain ends in a halt");
    let blocks = blocks_of(&b.chain);
    let (engine, outcomes) = replay(rules.clone(), genesis, &blocks);
    assert_eq!(engine.halted(), Some(&halt));
    assert_eq!(
        run_oracle_until_abort(&b.chain, oracle),
        (halt.block, halt.vtxindex),
        "the oracle aborts at the operation we halt at"
    );
    let (followed, status) = follow_with_status(&b.chain, rules, genesis.to_vec());
    assert_eq!(status.halted.as_ref(), Some(&halt));
    let before = RegtestChain::from_blocks(blocks[..halt.block as usize].to_vec())
        .expect("a prefix of a valid chain");
    let theirs = Verdicts::of_oracle(&run_oracle(&before, oracle));
    assert_same(
        "replayed up to the halt",
        &Verdicts::of_engine(&engine, &outcomes),
        &theirs,
    );
    assert_same("followed up to the halt", &followed, &theirs);
}

/// Where the original stops for good: a namespace whose reveal expired is
/// revealed again, first with its first preorder's fee (accepted), then
/// with another fee, where the original's write matches no row and it
/// aborts. Our rules, replayed and followed, must accept the first, halt
/// at the same operation as the oracle, and agree with it on everything
/// before that block.
#[test]
fn a_re_reveal_with_another_fee_halts_us_where_the_original_aborts() {
    let rules = RuleSet::test(None).with_timers(TIMERS);
    let mut b = ChainBuilder::new(rules.clone(), &[]);
    b.mature();
    let recipients = new_keys(&mut b, 3);
    let ns = "rereveal1";

    preorder_and_reveal(&mut b, ns, recipients[0], FEE);
    expire_reveal(&mut b);
    preorder_and_reveal(&mut b, ns, recipients[1], FEE);
    let accepted_at = b.next_block() - 1;
    assert!(b.engine.halted().is_none(), "the same fee re-reveals");
    assert_eq!(
        b.engine.db.namespaces[ns].reveal_block, accepted_at,
        "revealed again at {accepted_at}"
    );
    expire_reveal(&mut b);
    let halting = preorder_and_reveal(&mut b, ns, recipients[2], FEE + 1);
    assert_eq!(b.engine.halted().map(|h| &h.txid), Some(&halting));
    // the re-reveal is in what the oracle and we must agree on
    let oracle = OracleRules {
        timers: Some(TIMERS),
        ..OracleRules::epoch1()
    };
    check_halt(&b, rules, &[], &oracle);
}

/// Where the original stops for good: a name imported into a namespace
/// whose reveal then expires, the namespace revealed again paying names in
/// STX, and the name imported again (by the first importer: the keyring is
/// derived once): its row's token fee ("0") is not the new one, so the
/// original's update matches no row and it aborts.
#[test]
fn an_import_at_another_token_fee_halts_us_where_the_original_aborts() {
    let rules = RuleSet::test(Some([1, 2, 3, 4, 5])).with_timers(TIMERS);
    let genesis = regtest_stx_genesis();
    let mut b = ChainBuilder::new(rules.clone(), &genesis);
    b.mature();
    let revealers = new_keys(&mut b, 2);
    assert!(b.fund(&[(revealers[0], 5_000_000), (revealers[1], 5_000_000)]));
    b.mine();
    let ns = "refee1234";
    let stx = |b: &ChainBuilder| {
        let p = price_namespace(&b.engine.rules, ns, b.next_block(), Units::Stacks)
            .expect("a price in STX");
        p.to_long().to_string().parse::<u64>().expect("fits")
    };
    let import = |b: &mut ChainBuilder, from: usize| {
        let to = b.wallet.script(MINER);
        let tx = ops::import_tx(from, "n.refee1234", to, [7; 20]);
        let txid = b.send(&tx).expect("the revealer pays").to_string();
        b.mine();
        txid
    };

    let tokens = stx(&b);
    reveal_as(&mut b, ns, revealers[0], 5_500, Some(tokens), 1);
    let first = import(&mut b, revealers[0]);
    assert!(b.engine.halted().is_none());
    assert_eq!(
        b.engine
            .db
            .get_name(&rules, "n.refee1234", b.next_block(), true)
            .map(|r| r.token_fee.as_str()),
        Some("0")
    );
    expire_reveal(&mut b);
    let tokens = stx(&b);
    reveal_as(&mut b, ns, revealers[1], 5_500, Some(tokens), 3);
    assert_eq!(b.engine.db.namespaces[ns].version, 3, "revealed again");
    // the import keyring is derived once, from the first importer's key
    let halting = import(&mut b, revealers[0]);
    assert_eq!(b.engine.halted().map(|h| &h.txid), Some(&halting));
    assert_ne!(first, halting);
    check_halt(
        &b,
        rules,
        &genesis,
        &OracleRules {
            timers: Some(TIMERS),
            ..OracleRules::epoch6()
        },
    );
}

/// Regression (found by epoch1 seeds 1-4): a name's preorder hash sent again
/// while the name lives is accepted each time, and the original keeps each
/// as a row of its own. Once the name expires, a registration reads the
/// oldest row, which has outlived the namespace lifetime here, so it fails;
/// our rules once kept the newest and accepted it.
#[test]
fn a_hash_preordered_again_registers_from_its_oldest_preorder() {
    let rules = RuleSet::test(None);
    let mut b = ChainBuilder::new(rules, &[]);
    b.mature();
    let (script, address) = (b.wallet.script(MINER), b.wallet.address(MINER));
    let ns = "regressn";
    preorder_and_reveal(&mut b, ns, MINER, FEE);
    b.send(&ops::plain_tx(MINER, ops::ready_payload(ns)));
    b.mine();

    let name = "n.regressn";
    let hash = ops::preorder_hash(name, &script, &address);
    let preorder = |b: &mut ChainBuilder| {
        let ch = b.consensus_hash_back(0);
        let payload = ops::name_preorder_payload(hash, ch, None);
        let txid = b.send(&ops::preorder_tx(MINER, payload, ops::burn_script(), 200));
        txid.expect("the miner pays").to_string()
    };
    let register = |b: &mut ChainBuilder| {
        let payload = ops::registration_payload(name, None, None);
        let txid = b.send(&ops::recipient_tx(MINER, payload, script.clone()));
        txid.expect("the miner pays").to_string()
    };
    let accepted = |o: &BlockOutcome, txid: &str| o.accepted.iter().any(|a| a.txid == txid);

    preorder(&mut b);
    b.mine();
    let txid = register(&mut b);
    let registered = b.next_block();
    assert!(accepted(&b.mine(), &txid), "the first registration");
    // two more preorders of the same hash while the name lives
    for at in [registered + 1, registered + 4] {
        while b.next_block() < at {
            b.mine();
        }
        let txid = preorder(&mut b);
        assert!(
            accepted(&b.mine(), &txid),
            "a preorder of a live name's hash"
        );
    }
    // the name has expired at registered + 11; the oldest preorder (at
    // registered + 1) is then 10 blocks old, the namespace lifetime
    while b.next_block() < registered + 12 {
        b.mine();
    }
    let txid = register(&mut b);
    let late = b.mine();
    assert!(
        late.rejected.iter().any(|r| r.0 == txid),
        "the registration reads the oldest preorder: {late:?}"
    );

    let blocks = blocks_of(&b.chain);
    let (engine, outcomes) = replay(RuleSet::test(None), &[], &blocks);
    let report = run_oracle(&b.chain, &OracleRules::epoch1());
    assert!(report.rejected.iter().any(|r| r.txid == txid));
    assert_same(
        "a preorder hash sent three times",
        &Verdicts::of_engine(&engine, &outcomes),
        &Verdicts::of_oracle(&report),
    );
}
