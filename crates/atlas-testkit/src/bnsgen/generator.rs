//! The generator's loop: per block, a random mix of operations chosen from
//! what the chain holds so far (our own rule engine runs alongside, so the
//! generator knows which names exist, who owns them, what is expired, the
//! recent consensus hashes and the prices), mined into a real block.

use std::collections::{HashMap, HashSet};

use bitcoin::{ScriptBuf, Txid};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::chain_builder::ChainBuilder;
use super::keys::{Key, KeyKind, derive_secret};
use super::ops::Reveal;
use super::stats::{Expect, Intent, Stats, Verdict};
use super::wallet::{FEE, KeyId, MINER, Out, Spend};
use crate::regtest::{COINBASE_MATURITY, RegtestChain};
use bns_rules::engine::{Allocation, BlockOutcome};
use bns_rules::params::{Feature, RuleSet};
use bns_rules::price::Price;

/// A generated chain and what each of its operations was meant to be.
pub struct Generated {
    pub chain: RegtestChain,
    pub stats: Stats,
}

/// Builds a regtest chain: 101 empty blocks to mature the miner's first
/// coinbase, then `blocks` blocks of BNS operations, valid and invalid,
/// chosen by `seed` under `rules` (`genesis` as the token genesis the
/// indexer starts from). The same arguments give the same chain. It ends
/// early at a block where the original would abort (`Engine::halted`).
pub fn generate(seed: u64, rules: &RuleSet, genesis: &[Allocation], blocks: usize) -> Generated {
    let mut g = Gen::new(seed, rules.clone(), genesis);
    g.end = (COINBASE_MATURITY + 1 + blocks) as u64;
    for _ in 0..=COINBASE_MATURITY {
        g.mine();
    }
    for _ in 0..blocks {
        g.step();
        // the original indexes nothing past a halt, so neither can anything
        // built after it be compared
        if g.cb.engine.halted().is_some() {
            break;
        }
    }
    Generated {
        chain: g.cb.chain,
        stats: g.stats,
    }
}

/// What a name preorder committed to, by its hash (the chain only shows
/// the hash).
#[derive(Debug, Clone)]
pub(super) struct NameNote {
    pub name: String,
    pub sender: KeyId,
    pub recipient: ScriptBuf,
    pub block: u64,
    /// Paid enough, to the right place, in the right units.
    pub paid_ok: bool,
}

/// What a namespace preorder committed to, by its hash.
#[derive(Debug, Clone)]
pub(super) struct NsNote {
    pub reveal: Reveal,
    pub sender: KeyId,
    pub recipient: KeyId,
    pub block: u64,
}

/// Something to send in a given block.
#[derive(Debug, Clone)]
pub(super) enum Due {
    /// Register a preorder (by hash); a forced expectation for collisions.
    Register(String, Option<Expect>),
    /// Reveal a namespace preorder (by hash).
    Reveal(String, Option<Expect>),
    /// Preorder a live name again with its registration's hash.
    Repreorder(String),
}

pub(super) struct Gen {
    pub rng: StdRng,
    pub rules: RuleSet,
    pub cb: ChainBuilder,
    block_intents: Vec<Intent>,
    pub stats: Stats,
    /// Ordinary p2pkh senders; the first collects names up to the quota.
    pub users: Vec<KeyId>,
    pub multisig: KeyId,
    pub segwit: KeyId,
    pub name_notes: HashMap<String, NameNote>,
    pub ns_notes: HashMap<String, NsNote>,
    /// Keyring children's keys by the revealer whose key seeds them.
    pub keyrings: HashMap<KeyId, Vec<KeyId>>,
    pub used: HashSet<String>,
    pub due: Vec<(u64, Due)>,
    /// The last block generated.
    pub end: u64,
    /// This block's registrations, reveals, readies, first imports and
    /// preorder hashes so far: later operations of the block depend on them.
    pub registering: HashSet<String>,
    pub revealing: HashSet<String>,
    pub readying: HashSet<String>,
    pub importing: HashSet<String>,
    pub block_preorders: HashSet<String>,
    /// Names an operation of this block already concerns: a later one
    /// sees the state that one leaves, which the generator does not model.
    pub touched: HashSet<String>,
    /// STX moved by this block's operations so far, per key.
    pub stx_delta: HashMap<KeyId, i128>,
}

/// The smallest payment Python's `paid < price` lets through.
pub(super) fn min_pay(p: &Price) -> u64 {
    match p {
        Price::Int(l) => l.to_u64().unwrap_or(u64::MAX),
        Price::Float(f) if *f <= 0.0 => 0,
        Price::Float(f) => f.ceil() as u64,
    }
}

impl Gen {
    fn new(seed: u64, rules: RuleSet, genesis: &[Allocation]) -> Gen {
        let mut cb = ChainBuilder::new(rules.clone(), genesis);
        let wallet = &mut cb.wallet;
        let mut users = Vec::new();
        for i in 0..12u32 {
            // two of them sign with uncompressed keys: other addresses, and
            // a keyring whose "own address" entry is the uncompressed one
            let kind = if i % 6 == 5 {
                KeyKind::P2pkhUncompressed
            } else {
                KeyKind::P2pkh
            };
            let key = Key::new(&wallet.secp, kind, vec![derive_secret(seed, "user", i)]);
            users.push(wallet.add(key));
        }
        let ms = vec![
            derive_secret(seed, "multisig", 0),
            derive_secret(seed, "multisig", 1),
        ];
        let multisig = wallet.add(Key::new(&wallet.secp, KeyKind::P2sh2of2, ms));
        let sw = vec![derive_secret(seed, "segwit", 0)];
        let segwit = wallet.add(Key::new(&wallet.secp, KeyKind::P2wpkh, sw));
        Gen {
            rng: StdRng::seed_from_u64(seed),
            rules,
            cb,
            block_intents: Vec::new(),
            stats: Stats::default(),
            users,
            multisig,
            segwit,
            name_notes: HashMap::new(),
            ns_notes: HashMap::new(),
            keyrings: HashMap::new(),
            used: HashSet::new(),
            due: Vec::new(),
            end: 0,
            registering: HashSet::new(),
            revealing: HashSet::new(),
            readying: HashSet::new(),
            importing: HashSet::new(),
            block_preorders: HashSet::new(),
            touched: HashSet::new(),
            stx_delta: HashMap::new(),
        }
    }

    /// The block the next transactions go into.
    pub fn block(&self) -> u64 {
        self.cb.chain.height() as u64 + 1
    }

    pub fn has(&self, f: Feature) -> bool {
        self.rules.has_feature(self.block(), f)
    }

    pub fn epoch(&self) -> u8 {
        self.rules.epoch(self.block())
    }

    fn step(&mut self) {
        let b = self.block();
        let due: Vec<Due> = self
            .due
            .iter()
            .filter(|(at, _)| *at == b)
            .map(|(_, d)| d.clone())
            .collect();
        self.due.retain(|(at, _)| *at > b);
        for d in due {
            match d {
                Due::Register(hash, forced) => self.register_late(&hash, forced),
                Due::Reveal(hash, forced) => self.reveal_now(&hash, forced),
                Due::Repreorder(hash) => self.repreorder(Some(hash)),
            };
        }
        // mostly a few operations a block, sometimes none, now and then many
        let n = match self.rng.random_range(0..100) {
            0..=14 => 0,
            15..=69 => self.rng.random_range(1..=3),
            70..=91 => self.rng.random_range(4..=8),
            _ => self.rng.random_range(12..=24),
        };
        for _ in 0..n {
            for _attempt in 0..4 {
                if self.random_action() {
                    break;
                }
            }
        }
        self.mine();
    }

    /// Mines the block being built, runs it through the engine, and records
    /// how each intended operation came out.
    pub fn mine(&mut self) {
        self.registering.clear();
        self.revealing.clear();
        self.readying.clear();
        self.importing.clear();
        self.block_preorders.clear();
        self.touched.clear();
        self.stx_delta.clear();
        let outcome = self.cb.mine();
        let intents = std::mem::take(&mut self.block_intents);
        if self.cb.engine.halted().is_some() {
            // undecided: the block never completes
            self.stats.intents.extend(intents);
            return;
        }
        for mut intent in intents {
            let (verdict, reason) = verdict_of(&outcome, &intent.txid);
            intent.verdict = Some(verdict);
            intent.reason = reason;
            self.stats.intents.push(intent);
        }
    }

    pub fn schedule_register(&mut self, at: u64, hash: String, forced: Option<Expect>) {
        self.due.push((at, Due::Register(hash, forced)));
    }

    pub fn schedule_reveal(&mut self, at: u64, hash: String, forced: Option<Expect>) {
        self.due.push((at, Due::Reveal(hash, forced)));
    }

    /// Builds `spend` into the block; None when the keys cannot pay.
    pub fn emit(
        &mut self,
        spend: Spend,
        op: &'static str,
        variant: &'static str,
        expect: Expect,
    ) -> Option<Txid> {
        let Some(txid) = self.cb.send(&spend) else {
            *self.stats.skipped.entry((op, variant)).or_default() += 1;
            return None;
        };
        self.block_intents.push(Intent {
            block: self.block(),
            txid: txid.to_string(),
            op,
            variant,
            expect,
            verdict: None,
            reason: None,
        });
        Some(txid)
    }

    /// Makes sure `key` can spend `amount` plus fees in this block, with a
    /// miner payment (a parent in the same block) if it cannot yet.
    pub fn ensure(&mut self, key: KeyId, amount: u64) -> bool {
        if key == MINER {
            return true;
        }
        let need = amount + 4 * FEE;
        if self.cb.wallet.balance(key) >= need {
            return true;
        }
        // sometimes two coins, so that a spend needs several inputs
        let top = if need > 1_000_000_000 {
            need / 2 + FEE
        } else {
            need.max(2_000_000)
        };
        let pay = if self.rng.random_bool(0.3) {
            vec![(key, top / 2 + FEE), (key, top / 2 + FEE)]
        } else {
            vec![(key, top * 2)]
        };
        self.cb.fund(&pay)
    }

    /// The consensus hash of `back` blocks before the tip.
    pub fn ch_back(&self, back: u64) -> [u8; 16] {
        self.cb.consensus_hash_back(back)
    }

    /// A consensus hash the next block accepts: one of the last 24,
    /// often the newest, sometimes the oldest still valid.
    pub fn fresh_ch(&mut self) -> [u8; 16] {
        // just after the first block, the oldest valid ones are the genesis
        // snapshot's four rows
        let tip = self.cb.chain.height() as u64;
        let oldest = 23.min(tip + 4 - self.rules.first_block.min(tip + 4));
        let back = match self.rng.random_range(0..4) {
            0 | 1 => 0,
            2 => oldest,
            _ => self.rng.random_range(0..=oldest),
        };
        self.ch_back(back)
    }

    /// One block too old (the 25th back), never seen, or all zeros.
    pub fn bad_ch(&mut self) -> ([u8; 16], &'static str) {
        match self.rng.random_range(0..3) {
            0 => (self.ch_back(24), "stale-consensus-hash"),
            1 => (self.rng.random(), "unknown-consensus-hash"),
            _ => ([0; 16], "zero-consensus-hash"),
        }
    }

    /// Applies a transaction-level variant to a spend built as valid: a
    /// segwit sender or input (dropped), an extra p2pkh or multisig input
    /// (same verdict), or a later OP_RETURN that takes over the payload
    /// (dropped). Returns the variant and the expectation it leaves.
    pub fn mutate(&mut self, spend: &mut Spend, expect: Expect) -> Option<(&'static str, Expect)> {
        if !self.rng.random_bool(0.08) {
            return None;
        }
        Some(match self.rng.random_range(0..6) {
            0 => {
                let sw = self.segwit;
                self.ensure(sw, 1_000_000);
                spend.inputs[0] = sw;
                ("segwit-sender", Expect::Drop)
            }
            1 => {
                let sw = self.segwit;
                self.ensure(sw, 1_000_000);
                spend.inputs.push(sw);
                ("segwit-second-input", Expect::Drop)
            }
            2 => {
                let ms = self.multisig;
                self.ensure(ms, 1_000_000);
                spend.inputs.push(ms);
                ("multisig-second-input", expect)
            }
            3 => {
                let other = self.pick_user();
                self.ensure(other, 1_000_000);
                spend.inputs.push(other);
                ("second-p2pkh-input", expect)
            }
            4 => {
                spend.outs.push(Out::Data(b"xx".to_vec()));
                ("later-op-return", Expect::Drop)
            }
            _ => {
                // the payload in a non-minimal OP_PUSHDATA1 push
                for out in &mut spend.outs {
                    if let Out::Data(d) = out {
                        let mut script = vec![0x6a, 0x4c, d.len() as u8];
                        script.extend_from_slice(d);
                        *out = Out::Pay(ScriptBuf::from_bytes(script), 0);
                    }
                }
                ("pushdata1-payload", expect)
            }
        })
    }

    fn random_action(&mut self) -> bool {
        let ready = !self.ready_namespaces().is_empty();
        let revealed = !self.revealed_namespaces().is_empty();
        let pending_ns = !self.pending_ns_preorders().is_empty();
        let pending_names = !self.pending_name_preorders().is_empty();
        let names = self.cb.engine.db.names().next().is_some();
        // never drawn unless a reveal can expire within the run, so other
        // runs' random streams stay as they were
        let expired = !self.expired_reveals().is_empty();
        let weights: [(u32, u8); 16] = [
            (if ready { 6 } else { 30 }, 0),
            (if pending_ns { 12 } else { 0 }, 1),
            (if revealed { 4 } else { 0 }, 2),
            (if revealed { 12 } else { 0 }, 3),
            (if ready { 22 } else { 0 }, 4),
            (if pending_names { 20 } else { 0 }, 5),
            (if names { 7 } else { 0 }, 6),
            (if names { 10 } else { 0 }, 7),
            (if names { 8 } else { 0 }, 8),
            (if names { 3 } else { 0 }, 9),
            (
                if self.has(Feature::TokenTransfer) {
                    6
                } else {
                    1
                },
                10,
            ),
            (if ready { 3 } else { 0 }, 11),
            (if names { 3 } else { 0 }, 12),
            (1, 13),
            (1, 14),
            (if expired { 4 } else { 0 }, 15),
        ];
        let total: u32 = weights.iter().map(|w| w.0).sum();
        let mut roll = self.rng.random_range(0..total);
        let mut which = 0;
        for (w, id) in weights {
            if roll < w {
                which = id;
                break;
            }
            roll -= w;
        }
        match which {
            0 => self.namespace_preorder(),
            1 => self.namespace_reveal(),
            2 => self.namespace_ready(),
            3 => self.name_import(),
            4 => self.name_preorder(),
            5 => self.name_register(),
            6 => self.name_renew(),
            7 => self.name_update(),
            8 => self.name_transfer(),
            9 => self.name_revoke(),
            10 => self.token_transfer(),
            11 => self.collision(),
            12 => self.repreorder(None),
            13 => self.reveal_collision(),
            15 => self.after_expired_reveal(),
            _ => self.announce(),
        }
    }
}

/// How the engine decided a transaction of the block it processed.
fn verdict_of(outcome: &BlockOutcome, txid: &str) -> (Verdict, Option<&'static str>) {
    if outcome.accepted.iter().any(|a| a.txid == txid) {
        return (Verdict::Accepted, None);
    }
    match outcome.rejected.iter().find(|r| r.0 == txid) {
        Some(r) => (Verdict::Rejected, Some(r.2)),
        None => (Verdict::Dropped, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bns_rules::replay::{regtest_stx_genesis, replay};

    #[test]
    fn a_seed_gives_one_chain_and_the_engine_agrees_with_itself() {
        let rules = RuleSet::test(Some([1, 2, 3, 4, 5]));
        let genesis = regtest_stx_genesis();
        // long enough for choices among existing names, which the state's
        // randomly ordered maps once made differ from run to run
        let a = generate(7, &rules, &genesis, 150);
        let b = generate(7, &rules, &genesis, 150);
        assert_eq!(a.chain.tip_hash(), b.chain.tip_hash());
        assert_ne!(
            a.chain.tip_hash(),
            generate(8, &rules, &genesis, 40).chain.tip_hash()
        );
        assert_eq!(a.chain.height(), COINBASE_MATURITY + 1 + 150);
        // the generator's engine and a replay of the finished chain decide
        // every operation alike
        let blocks: Vec<_> = (0..=a.chain.height())
            .map(|h| a.chain.block(h).unwrap().clone())
            .collect();
        let (_, outcomes) = replay(rules, &genesis, &blocks);
        for i in &a.stats.intents {
            let (_, o) = outcomes.iter().find(|(h, _)| *h == i.block).unwrap();
            assert_eq!(Some(verdict_of(o, &i.txid).0), i.verdict, "{i}");
        }
        assert!(a.stats.intents.len() > 40, "operations in most blocks");
    }
}
