//! Differential: seeded BNS histories (`atlas_testkit::bnsgen`) indexed by the
//! original indexer (the oracle), replayed through our rules, and found by
//! our follower through script histories must get the same verdicts: consensus hash of every block, accepted operations,
//! rejected operations, names, namespaces and the zone-file whitelist.
//!
//! CI runs 10 seeds x 200 blocks under epoch-1 rules, 10 under epoch-6
//! rules (STX genesis), 2 crossing every epoch boundary, 1 indexed
//! from block 100 and 3 with year-long timers cut to blocks. More locally:
//! `BNS_DIFF_SEEDS=1000` (seeds per run kind), `BNS_DIFF_FIRST_SEED`,
//! `BNS_DIFF_BLOCKS`, `BNS_DIFF_THREADS`,
//! `BNS_DIFF_RUNS=epoch1,epoch6,crossing,first-block-100,short-timers`,
//! and `BNS_DIFF_VERBOSE=1` for timings, each variant's tally and every
//! operation our rules decided otherwise than the generator meant.
//! A failing chain is saved as `target/bns-differential/<run>-<seed>.blocks.hex`
//! (as the oracle read it); the message names block, txid, what the
//! generator meant, and both verdicts with their reasons.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use atlas_testkit::bnsgen::{Generated, Stats, Verdict, generate};
use atlas_testkit::oracle::{OracleReport, OracleRules, run_oracle, run_oracle_until_abort};
use atlas_testkit::regtest::RegtestChain;
use atlas_testkit::verdicts::{Verdicts, assert_same, blocks_of};
use bitcoin::Witness;
use bns_rules::engine::BlockOutcome;
use bns_rules::params::{RuleSet, TestTimers};
use bns_rules::replay::{regtest_stx_genesis, replay};

#[derive(Clone, Copy, Debug)]
struct RunKind {
    name: &'static str,
    epoch_ends: Option<[u64; 5]>,
    stx_genesis: bool,
    /// The first block indexed (`FIRST_BLOCK`).
    first_block: u64,
    /// Shortened reveal expiry, grace and receive-fees periods.
    timers: Option<TestTimers>,
    ci_seeds: u64,
}

impl RunKind {
    fn rules(&self) -> RuleSet {
        let mut rules = RuleSet::test(self.epoch_ends);
        rules.first_block = self.first_block;
        match self.timers {
            Some(t) => rules.with_timers(t),
            None => rules,
        }
    }
}

const EPOCH1: RunKind = RunKind {
    name: "epoch1",
    epoch_ends: None,
    stx_genesis: false,
    first_block: 1,
    timers: None,
    ci_seeds: 10,
};
const EPOCH6: RunKind = RunKind {
    name: "epoch6",
    epoch_ends: Some([1, 2, 3, 4, 5]),
    stx_genesis: true,
    first_block: 1,
    timers: None,
    ci_seeds: 10,
};
/// Blocks 102-150 epoch 1, then 20 blocks of each later epoch, epoch 6 from 231.
const CROSSING: RunKind = RunKind {
    name: "crossing",
    epoch_ends: Some([150, 170, 190, 210, 230]),
    stx_genesis: true,
    first_block: 1,
    timers: None,
    ci_seeds: 2,
};
/// Indexing from block 100: the skip lists start there, and the first
/// operations may quote the genesis snapshot (blocks 96-99).
const LATE_START: RunKind = RunKind {
    name: "first-block-100",
    epoch_ends: None,
    stx_genesis: false,
    first_block: 100,
    timers: None,
    ci_seeds: 1,
};
/// Mainnet's year-long timers cut to blocks, with most of the run in
/// epochs 3-6 (where grace and receive-fees periods exist): namespace
/// reveals expire unreadied and are revealed again, names pass their grace
/// period, pay-to-creator namespaces stop receiving fees.
const TIMERS: RunKind = RunKind {
    name: "short-timers",
    epoch_ends: Some([120, 130, 140, 170, 200]),
    stx_genesis: true,
    first_block: 1,
    timers: Some(TestTimers {
        namespace_reveal_expire: 15,
        grace_period: 6,
        receive_fees_period: 40,
    }),
    ci_seeds: 3,
};

/// Seeds kept in every CI run: those that found a disagreement, and those
/// that reach a path the CI range does not. A seed means a chain only for
/// one version of the generator, so each bug found also gets a scripted
/// test (`tests/it/bns_scripted.rs`); the seeds that found the first were
/// epoch1 1-4, inside the CI range anyway.
const REGRESSION_SEEDS: &[(&str, u64)] = &[
    // ends where the original aborts: an import over an existing name in
    // the block where its namespace's reveal expires
    ("short-timers", 1006),
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one seed compared.
#[derive(Default)]
struct Counts {
    seeds: usize,
    blocks: usize,
    /// Per operation name: (accepted, rejected) by both.
    ops: BTreeMap<String, (usize, usize)>,
    /// Transactions built as operations that both parsers dropped.
    dropped: usize,
    /// Generated operations our rules decided otherwise than meant.
    surprises: usize,
    /// Seeds whose chain ends where the original aborts (both agreed).
    halted: usize,
    /// Year-long timers reached: namespaces revealed again after their
    /// reveal expired, renewals in a grace period, payments near the end of
    /// a creator's fee period (all as the oracle decided them).
    re_reveals: usize,
    grace_renewals: usize,
    fee_period_edges: usize,
    failures: Vec<String>,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.seeds += other.seeds;
        self.blocks += other.blocks;
        for (op, (a, r)) in other.ops {
            let e = self.ops.entry(op).or_default();
            e.0 += a;
            e.1 += r;
        }
        self.dropped += other.dropped;
        self.surprises += other.surprises;
        self.halted += other.halted;
        self.re_reveals += other.re_reveals;
        self.grace_renewals += other.grace_renewals;
        self.fee_period_edges += other.fee_period_edges;
        self.failures.extend(other.failures);
    }

    fn compared(&self) -> usize {
        self.ops.values().map(|(a, r)| a + r).sum::<usize>() + self.dropped
    }
}

/// The chain as a bitcoind with `rpcserialversion=0` serves it, which the
/// original needs (it aborts on witness-serialized transactions, and its
/// P2P block download never asks for witnesses): witnesses stripped.
fn without_witnesses(chain: &RegtestChain) -> RegtestChain {
    let mut blocks = blocks_of(chain);
    for tx in blocks.iter_mut().flat_map(|b| b.txdata.iter_mut()) {
        for input in &mut tx.input {
            input.witness = Witness::new();
        }
    }
    RegtestChain::from_blocks(blocks).expect("stripping witnesses keeps txids")
}

/// Saves the chain as the oracle indexed it (witnesses stripped, which our
/// rules read the same), and as mined (`.witness.blocks.hex`).
fn save_chain(run: &str, seed: u64, chain: &RegtestChain) -> String {
    let dir = atlas_testkit::paths::target_dir().join("bns-differential");
    std::fs::create_dir_all(&dir).expect("target/ is writable");
    let write = |name: String, chain: &RegtestChain| {
        let text: String = blocks_of(chain)
            .iter()
            .map(|b| hex::encode(bitcoin::consensus::serialize(b)) + "\n")
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, text).expect("writing the failing chain");
        path
    };
    write(format!("{run}-{seed}.witness.blocks.hex"), chain);
    write(
        format!("{run}-{seed}.blocks.hex"),
        &without_witnesses(chain),
    )
    .display()
    .to_string()
}

/// Our verdict on each transaction, by txid: (block, verdict, reason). The
/// accepted ones as `Verdicts` lists them, i.e. as the oracle can report
/// them (a preorder deleted unconsumed leaves no trace there).
fn our_verdicts(
    ours: &Verdicts,
    outcomes: &[(u64, BlockOutcome)],
) -> HashMap<String, (u64, Verdict, String)> {
    let mut out = HashMap::new();
    for (b, o) in outcomes {
        for (txid, _, reason) in &o.rejected {
            out.insert(txid.clone(), (*b, Verdict::Rejected, reason.to_string()));
        }
    }
    for (b, _, txid, op, _) in &ours.accepted {
        out.insert(txid.clone(), (*b, Verdict::Accepted, op.clone()));
    }
    out
}

/// The oracle's verdict on each transaction: (block, verdict, op and reason).
fn oracle_verdicts(r: &OracleReport) -> HashMap<String, (u64, Verdict, String)> {
    let mut out = HashMap::new();
    for a in &r.accepted {
        out.insert(
            a.txid.clone(),
            (a.block_id, Verdict::Accepted, a.op.clone()),
        );
    }
    for x in &r.rejected {
        let why = format!("{} {}", x.opname, x.reason.clone().unwrap_or_default());
        out.insert(x.txid.clone(), (x.block_id, Verdict::Rejected, why));
    }
    out
}

/// One line per transaction the two indexers decided differently, with
/// what the generator meant it to be and both reasons.
fn disagreements(
    stats: &Stats,
    ours: &HashMap<String, (u64, Verdict, String)>,
    oracle: &HashMap<String, (u64, Verdict, String)>,
) -> Vec<(u64, String)> {
    let txids: BTreeSet<&String> = ours.keys().chain(oracle.keys()).collect();
    let mut out = Vec::new();
    for txid in txids {
        let (o, t) = (ours.get(txid), oracle.get(txid));
        if o.map(|v| v.1) == t.map(|v| v.1) {
            continue;
        }
        // ANNOUNCE is stateless and never hashed: our rules leave it out,
        // the original logs its refusal (no announcers are configured).
        if o.is_none() && t.is_some_and(|v| v.2.starts_with("ANNOUNCE ")) {
            continue;
        }
        let block = o.or(t).map_or(0, |v| v.0);
        let meant = stats
            .intent(txid)
            .map_or("?".to_string(), |i| format!("{}/{}", i.op, i.variant));
        let show = |v: Option<&(u64, Verdict, String)>| {
            v.map_or("dropped".to_string(), |(_, v, why)| {
                format!("{v:?} ({why})")
            })
        };
        out.push((
            block,
            format!(
                "block {block} tx {txid} [{meant}]: oracle {} / ours {}",
                show(t),
                show(o)
            ),
        ));
    }
    out.sort();
    out
}

/// Set differences of everything `assert_same` compares, briefly.
fn state_differences(ours: &Verdicts, oracle: &Verdicts) -> Vec<String> {
    fn diff<T: std::fmt::Debug + Ord + Clone>(what: &str, a: &[T], b: &[T]) -> Option<String> {
        let (sa, sb): (BTreeSet<&T>, BTreeSet<&T>) = (a.iter().collect(), b.iter().collect());
        let only_oracle: Vec<_> = sb.difference(&sa).take(5).collect();
        let only_ours: Vec<_> = sa.difference(&sb).take(5).collect();
        (!only_oracle.is_empty() || !only_ours.is_empty())
            .then(|| format!("{what}: only the oracle's {only_oracle:?}; only ours {only_ours:?}"))
    }
    let mut out = Vec::new();
    if let Some(first) = oracle
        .consensus
        .iter()
        .zip(&ours.consensus)
        .find(|(a, b)| a != b)
    {
        out.push(format!(
            "first consensus hash difference at block {}: oracle {} ours {}",
            first.0.0, first.0.1, first.1.1
        ));
    }
    if ours.consensus.len() != oracle.consensus.len() {
        out.push(format!(
            "blocks indexed: oracle {} ours {}",
            oracle.consensus.len(),
            ours.consensus.len()
        ));
    }
    out.extend(diff(
        "accepted operations",
        &ours.accepted,
        &oracle.accepted,
    ));
    out.extend(diff("names", &ours.names, &oracle.names));
    out.extend(diff("namespaces", &ours.namespaces, &oracle.namespaces));
    if ours.inventory != oracle.inventory {
        out.extend(diff("whitelist", &ours.inventory, &oracle.inventory));
        out.push("whitelist order differs".into());
    }
    out
}

fn check_seed(kind: RunKind, seed: u64, blocks: usize) -> Counts {
    let rules = kind.rules();
    let genesis = if kind.stx_genesis {
        regtest_stx_genesis()
    } else {
        Vec::new()
    };
    let t0 = Instant::now();
    let Generated { chain, stats } = generate(seed, &rules, &genesis, blocks);
    let t1 = Instant::now();
    let (engine, outcomes) = replay(kind.rules(), &genesis, &blocks_of(&chain));
    let t2 = Instant::now();
    let oracle_rules = OracleRules {
        epoch_ends: kind.epoch_ends,
        stx_genesis: kind.stx_genesis,
        first_block: kind.first_block,
        timers: kind.timers,
    };
    // Where our rules say the original aborts, it must abort at the same
    // operation, and agree on everything before that block.
    let mut halt_disagrees = None;
    let report = match engine.halted() {
        None => run_oracle(&without_witnesses(&chain), &oracle_rules),
        Some(halt) => {
            let meant = stats
                .intent(&halt.txid)
                .map_or("?".to_string(), |i| format!("{}/{}", i.op, i.variant));
            eprintln!("  {} seed {seed}: [{meant}] {halt}", kind.name);
            let at = run_oracle_until_abort(&without_witnesses(&chain), &oracle_rules);
            if at != (halt.block, halt.vtxindex) {
                halt_disagrees = Some(format!(
                    "ours halt at {halt:?}, the oracle aborted checking block {} vtxindex {}",
                    at.0, at.1
                ));
            }
            let before = (halt.block - 1) as usize;
            let truncated = RegtestChain::from_blocks(blocks_of(&chain)[..=before].to_vec())
                .expect("a prefix of a valid chain");
            run_oracle(&without_witnesses(&truncated), &oracle_rules)
        }
    };
    if std::env::var_os("BNS_DIFF_VERBOSE").is_some() {
        eprintln!(
            "  {} seed {seed}: generated in {:.1?}, replayed in {:.1?}, oracle {:.1?} (indexing {} s)",
            kind.name,
            t1 - t0,
            t2 - t1,
            t2.elapsed(),
            report.index_seconds
        );
    }
    let ours = Verdicts::of_engine(&engine, &outcomes);
    let theirs = Verdicts::of_oracle(&report);
    let our_v = our_verdicts(&ours, &outcomes);
    let oracle_v = oracle_verdicts(&report);

    let mut counts = Counts {
        seeds: 1,
        blocks: engine
            .halted()
            .map_or(chain.height(), |h| h.block as usize - 1),
        surprises: stats.surprises().len(),
        ..Counts::default()
    };
    for a in &report.accepted {
        counts.ops.entry(a.op.clone()).or_default().0 += 1;
    }
    for r in &report.rejected {
        // the original logs a refused renewal as a registration
        let op = stats
            .intent(&r.txid)
            .map_or(r.opname.clone(), |i| i.op.to_string());
        counts.ops.entry(op).or_default().1 += 1;
    }
    counts.dropped = stats
        .intents
        .iter()
        .filter(|i| i.verdict == Some(Verdict::Dropped) && !oracle_v.contains_key(&i.txid))
        .count();

    if std::env::var_os("BNS_DIFF_VERBOSE").is_some() {
        for i in stats.surprises() {
            eprintln!("  {} seed {seed}: surprise: {i}", kind.name);
        }
        for ((op, variant), t) in stats.tally() {
            eprintln!("  {} seed {seed}: {op}/{variant}: {t:?}", kind.name);
        }
    }
    let per_tx = disagreements(&stats, &our_v, &oracle_v);
    let mut state = state_differences(&ours, &theirs);
    state.extend(halt_disagrees);
    counts.halted = usize::from(engine.halted().is_some());
    let mut revealed = BTreeSet::new();
    for a in report
        .accepted
        .iter()
        .filter(|a| a.op == "NAMESPACE_REVEAL")
    {
        counts.re_reveals += usize::from(!revealed.insert(&a.history_id));
    }
    let meant = |op: &str, variant: &str| {
        stats
            .intents
            .iter()
            .filter(|i| i.op == op && i.variant == variant && oracle_v.contains_key(&i.txid))
            .count()
    };
    counts.grace_renewals = meant("NAME_RENEWAL", "in-grace-period");
    counts.fee_period_edges = meant("NAME_PREORDER", "creator-fee-period-edge");
    // The follower must find the same through script histories, as it
    // would from an Electrum server.
    let followed = atlas_testkit::verdicts::follow(&chain, kind.rules(), genesis.clone());
    if followed != theirs {
        state.push("the follower (script histories) disagrees:".into());
        state.extend(state_differences(&followed, &theirs));
    }
    if !per_tx.is_empty() || !state.is_empty() || ours != theirs {
        let saved = save_chain(kind.name, seed, &chain);
        let mut msg = format!(
            "{} seed {seed}: the original indexer and our rules disagree (chain saved to {saved})\n",
            kind.name
        );
        for (_, line) in per_tx.iter().take(12) {
            msg += &format!("  {line}\n");
        }
        if per_tx.len() > 12 {
            msg += &format!("  ... {} more transactions\n", per_tx.len() - 12);
        }
        for line in state {
            msg += &format!("  {line}\n");
        }
        counts.failures.push(msg);
    } else {
        // the canonical comparison the other BNS tests use, for certainty
        assert_same(&format!("{} seed {seed}", kind.name), &ours, &theirs);
        assert_same(
            &format!("{} seed {seed}, followed", kind.name),
            &followed,
            &theirs,
        );
    }
    counts
}

/// The (kind, seed) pairs to check: `BNS_DIFF_SEEDS` seeds per kind from
/// `BNS_DIFF_FIRST_SEED` (CI: each kind's own count from 1), of the kinds in
/// `BNS_DIFF_RUNS`, plus the regression seeds.
fn jobs() -> Vec<(RunKind, u64)> {
    let wanted = |k: &RunKind| {
        std::env::var("BNS_DIFF_RUNS")
            .map_or(true, |runs| runs.split(',').any(|r| r.trim() == k.name))
    };
    let first = env_u64("BNS_DIFF_FIRST_SEED", 1);
    let mut jobs = Vec::new();
    for kind in [EPOCH1, EPOCH6, CROSSING, LATE_START, TIMERS]
        .into_iter()
        .filter(wanted)
    {
        let n = env_u64("BNS_DIFF_SEEDS", kind.ci_seeds);
        jobs.extend((first..first + n).map(|s| (kind, s)));
        for (run, seed) in REGRESSION_SEEDS {
            if *run == kind.name && !jobs.iter().any(|(k, s)| k.name == *run && s == seed) {
                jobs.push((kind, *seed));
            }
        }
    }
    // seed by seed across the kinds, so a long run stopped early has
    // covered every kind alike
    jobs.sort_by_key(|(_, seed)| *seed);
    jobs
}

fn summary(what: &str, c: &Counts, elapsed: std::time::Duration) -> String {
    let per_op: Vec<String> = c
        .ops
        .iter()
        .map(|(op, (a, r))| format!("{op} {a}/{r}"))
        .collect();
    format!(
        "bns differential {what}: {} seeds ({} ending where the original aborts), {} blocks, {} operations compared ({} dropped by both parsers; accepted/rejected: {}), {} surprises; {} namespaces revealed again, {} renewals in a grace period, {} payments near a fee period's end; {elapsed:.1?}",
        c.seeds,
        c.halted,
        c.blocks,
        c.compared(),
        c.dropped,
        per_op.join(", "),
        c.surprises,
        c.re_reveals,
        c.grace_renewals,
        c.fee_period_edges,
    )
}

/// Every generated history, on `BNS_DIFF_THREADS` threads (default 2: the
/// oracle, which takes nearly all the time, is single-threaded).
#[test]
fn generated_histories_match_the_original_indexer() {
    let jobs = jobs();
    let blocks = env_u64("BNS_DIFF_BLOCKS", 200) as usize;
    let threads = env_u64("BNS_DIFF_THREADS", 2).max(1) as usize;
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let totals: Mutex<BTreeMap<&str, Counts>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..threads.min(jobs.len()) {
            s.spawn(|| {
                while let Some(&(kind, seed)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let t = Instant::now();
                    // An oracle that fails on one chain (its panic names the
                    // workdir) is that seed's failure; the run goes on.
                    let c = std::panic::catch_unwind(|| check_seed(kind, seed, blocks))
                        .unwrap_or_else(|panic| {
                            let why = panic
                                .downcast_ref::<String>()
                                .map(String::as_str)
                                .or_else(|| panic.downcast_ref::<&str>().copied())
                                .unwrap_or("a panic");
                            Counts {
                                seeds: 1,
                                failures: vec![format!("{} seed {seed}: {why}", kind.name)],
                                ..Counts::default()
                            }
                        });
                    eprintln!(
                        "bns differential {} seed {seed}: {} blocks, {} operations, {} surprises, {}{} in {:.1?}",
                        kind.name,
                        c.blocks,
                        c.compared(),
                        c.surprises,
                        if c.failures.is_empty() { "agree" } else { "DISAGREE" },
                        if c.halted > 0 { " (both abort at the next block)" } else { "" },
                        t.elapsed()
                    );
                    totals.lock().unwrap().entry(kind.name).or_default().add(c);
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap();
    let mut all = Counts::default();
    for (name, c) in totals {
        eprintln!("{}", summary(name, &c, started.elapsed()));
        all.add(c);
    }
    eprintln!("{}", summary("total", &all, started.elapsed()));
    assert!(
        all.failures.is_empty(),
        "{} of {} seeds disagree:\n{}",
        all.failures.len(),
        all.seeds,
        all.failures.join("\n")
    );
    assert!(jobs.is_empty() || all.compared() > 0);
}
