//! Namespace operations (preorder, reveal, ready), NAME_IMPORT from the
//! revealer, its keyring children and outsiders, and TOKEN_TRANSFER, each
//! valid or broken in one chosen way.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::generator::{Gen, NsNote, min_pay};
use super::ops::{self, Reveal};
use super::stats::Expect;
use super::wallet::{DUST, MINER, Out};
use bns_rules::params::{Feature, Units};
use bns_rules::price::price_namespace;

impl Gen {
    /// Outstanding namespace preorders we know the plaintext of, oldest first.
    pub fn pending_ns_preorders(&self) -> Vec<(String, NsNote)> {
        let mut v: Vec<(String, NsNote)> = self
            .ns_notes
            .iter()
            .filter(|(h, _)| self.cb.engine.db.namespace_preorder(h).is_some())
            .map(|(h, n)| (h.clone(), n.clone()))
            .collect();
        v.sort_by(|a, b| (a.1.block, &a.0).cmp(&(b.1.block, &b.0)));
        v
    }

    /// Rules for a new namespace: short lifetimes (so names expire and
    /// enter their grace period within a run), sometimes infinite ones, and
    /// prices kept to about 0.1 BTC a name.
    pub(super) fn random_reveal(&mut self, namespace_id: String) -> Reveal {
        let version = match self.epoch() {
            1 | 2 => 1,
            3 => *[1, 1, 2].choose(&mut self.rng).expect("versions"),
            _ => *[1, 1, 2, 3].choose(&mut self.rng).expect("versions"),
        };
        let lifetime = match self.rng.random_range(0..20) {
            0..=11 => self.rng.random_range(5..=20),
            12..=16 => self.rng.random_range(21..=60),
            _ => 0xffff_ffff,
        };
        let base: u8 = match self.rng.random_range(0..20) {
            0 => 0,
            1 => 1,
            _ => self.rng.random_range(2..=5),
        };
        let coeff: u8 = if self.rng.random_bool(0.05) {
            0
        } else {
            self.rng.random_range(1..=255)
        };
        let mut buckets = [0u8; 16];
        for b in &mut buckets {
            let mut e = self.rng.random_range(0..=15u32);
            while e > 0 && u64::from(coeff) * u64::from(base).pow(e) > 100_000 {
                e -= 1;
            }
            *b = e as u8;
        }
        Reveal {
            namespace_id,
            lifetime,
            coeff,
            base,
            buckets,
            nonalpha_discount: self.rng.random_range(1..=15),
            no_vowel_discount: self.rng.random_range(1..=15),
            version,
        }
    }

    pub fn namespace_preorder(&mut self) -> bool {
        let ns = self.namespace_id();
        self.namespace_preorder_of(ns, None)
    }

    /// A preorder of `ns` (new, or one whose reveal expired), valid or
    /// broken in one chosen way; `burn` sets the BTC burnt (its `op_fee`).
    pub(super) fn namespace_preorder_of(&mut self, ns: String, burn: Option<u64>) -> bool {
        let b = self.block();
        let reveal = self.random_reveal(ns.clone());
        let stx = self.has(Feature::StacksBuyNamespaces);
        let units = if stx { Units::Stacks } else { Units::Btc };
        let price = price_namespace(&self.rules, &ns, b, units).map_or(0, |p| min_pay(&p));
        let margin = if self.rng.random_bool(0.4) {
            self.rng.random_range(0..=price / 20 + 1)
        } else {
            0
        };
        let recipient = if self.rng.random_bool(0.04) {
            self.multisig
        } else {
            self.pick_user()
        };
        let mut sender = if stx {
            self.stx_holder().unwrap_or(MINER)
        } else if price > 500_000_000 {
            MINER
        } else if self.rng.random_bool(0.05) {
            self.multisig
        } else if self.rng.random_bool(0.6) && recipient != self.multisig {
            recipient
        } else {
            self.pick_user()
        };
        let (mut fee, mut tokens) = if stx {
            (DUST, Some(price + margin))
        } else {
            (price + margin, None)
        };
        if let Some(burn) = burn {
            fee = burn;
        }
        let mut burn = ops::burn_script();
        let mut ch = self.fresh_ch();
        let mut variant = "valid";
        let mut expect = Expect::Accept;
        let mut burn_at_1 = false;
        match self.rng.random_range(0..100) {
            0..=7 => {
                let (c, v) = self.bad_ch();
                ch = c;
                variant = v;
                expect = Expect::Reject;
            }
            8..=11 => {
                burn = self.cb.wallet.script(sender);
                variant = "wrong-burn-address";
                expect = Expect::Reject;
            }
            12..=14 => {
                burn_at_1 = true;
                variant = "burn-at-output-1";
                expect = Expect::Reject;
            }
            15..=20 if price > 0 => {
                match tokens.as_mut() {
                    Some(t) => *t = price - 1,
                    None => fee = price - 1,
                }
                variant = "underpaid";
            }
            21..=24 => {
                tokens = if stx { None } else { Some(price) };
                variant = if stx {
                    "36-byte-payload-in-epoch-4"
                } else {
                    "44-byte-payload-before-epoch-4"
                };
                expect = Expect::Drop;
            }
            25..=27 if stx => {
                let over = self.stx_balance(sender).max(0) as u64 + 1;
                tokens = Some(over);
                variant = "stx-overdraft";
                expect = Expect::Reject;
            }
            28..=30 if stx => {
                if let Some(poor) = self
                    .users
                    .iter()
                    .copied()
                    .find(|u| self.stx_balance(*u) == 0)
                {
                    sender = poor;
                    variant = "stx-without-account";
                    expect = Expect::Reject;
                }
            }
            31..=33 => {
                if let Some((_, note)) = self.pending_ns_preorders().first().cloned() {
                    return self.resend_ns_preorder(note);
                }
            }
            _ => {}
        }
        if expect == Expect::Accept
            && let Some(t) = tokens
            && self.stx_balance(sender) < i128::from(t)
        {
            expect = Expect::Reject;
        }
        let hash = ops::preorder_hash(
            &ns,
            &self.cb.wallet.script(sender),
            &self.cb.wallet.address(recipient),
        );
        let payload = ops::namespace_preorder_payload(hash, ch, tokens);
        if !self.ensure(sender, fee) {
            return false;
        }
        let mut spend = ops::preorder_tx(sender, payload, burn, fee);
        if burn_at_1 {
            spend.outs.swap(1, 2);
        }
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        if self
            .emit(spend, "NAMESPACE_PREORDER", variant, expect)
            .is_none()
        {
            return false;
        }
        if let Some(t) = tokens.filter(|_| expect == Expect::Accept) {
            self.move_stx(sender, -i128::from(t));
        }
        if matches!(expect, Expect::Accept | Expect::Any) {
            let hex = hex::encode(hash);
            self.ns_notes.insert(
                hex.clone(),
                NsNote {
                    reveal,
                    sender,
                    recipient,
                    block: b,
                },
            );
            if self.rng.random_bool(0.35) {
                let at = b + self.rng.random_range(1..=3);
                self.schedule_reveal(at, hex, None);
            }
        }
        true
    }

    /// The same namespace preorder again while the first is outstanding.
    fn resend_ns_preorder(&mut self, note: NsNote) -> bool {
        let b = self.block();
        let stx = self.has(Feature::StacksBuyNamespaces);
        let ns = &note.reveal.namespace_id;
        let units = if stx { Units::Stacks } else { Units::Btc };
        let price = price_namespace(&self.rules, ns, b, units).map_or(0, |p| min_pay(&p));
        let hash = ops::preorder_hash(
            ns,
            &self.cb.wallet.script(note.sender),
            &self.cb.wallet.address(note.recipient),
        );
        let ch = self.fresh_ch();
        let (fee, tokens) = if stx {
            (DUST, Some(price))
        } else {
            (price, None)
        };
        let payload = ops::namespace_preorder_payload(hash, ch, tokens);
        if !self.ensure(note.sender, fee) {
            return false;
        }
        let spend = ops::preorder_tx(note.sender, payload, ops::burn_script(), fee);
        // a reveal earlier in this block may have used the preorder up
        let expect = if self.revealing.contains(ns) {
            Expect::Any
        } else {
            Expect::Reject
        };
        self.emit(spend, "NAMESPACE_PREORDER", "duplicate-preorder", expect)
            .is_some()
    }

    /// The verdict a reveal of the outstanding preorder `hash` should get.
    fn expect_reveal(&self, hash: &str, note: &NsNote) -> Expect {
        let b = self.block();
        let db = &self.cb.engine.db;
        let ns = &note.reveal.namespace_id;
        if db.namespace_reveal(&self.rules, ns, b - 1).is_some() || db.namespace_ready(ns).is_some()
        {
            return Expect::Reject;
        }
        let Some(p) = db.namespace_preorder(hash) else {
            return Expect::Reject;
        };
        let version_ok = match note.reveal.version {
            1 => true,
            2 => self.has(Feature::NamespaceBurnToCreator),
            3 => self.has(Feature::NamespacePayWithStacks),
            _ => false,
        };
        let paid = if p.token_units == "STACKS" {
            price_namespace(&self.rules, ns, b, Units::Stacks)
                .is_some_and(|price| p.token_fee.unwrap_or(0) >= i128::from(min_pay(&price)))
        } else {
            price_namespace(&self.rules, ns, b, Units::Btc)
                .is_none_or(|price| p.op_fee >= i128::from(min_pay(&price)))
        };
        if !version_ok || !paid {
            return Expect::Reject;
        }
        if self.revealing.contains(ns) {
            return Expect::Any;
        }
        Expect::Accept
    }

    /// Whether revealing preorder `hash` should be left out: it would
    /// re-reveal an expired namespace with another fee than its first
    /// preorder's, which halts the original (`bns_rules::engine::Halt`) and so ends the
    /// run. One such preorder in 16 (by its hash, not by attempt: reveals
    /// are tried again and again) is revealed all the same. Only short test
    /// timers get here.
    fn reveal_halts(&self, hash: &str, namespace_id: &str) -> bool {
        let db = &self.cb.engine.db;
        let old = db.namespaces.get(namespace_id).filter(|n| !n.is_ready());
        let fee = db.namespace_preorder(hash).map(|p| p.op_fee);
        matches!((old, fee), (Some(old), Some(fee)) if old.op_fee.as_int() != fee)
            && !hash.ends_with('0')
    }

    /// Reveals the outstanding namespace preorder `hash` as committed, or
    /// with `forced` as the expectation (same-block collisions).
    pub fn reveal_now(&mut self, hash: &str, forced: Option<Expect>) -> bool {
        let Some(note) = self.ns_notes.get(hash).cloned() else {
            return false;
        };
        if self.reveal_halts(hash, &note.reveal.namespace_id) {
            return false;
        }
        let expect = forced.unwrap_or_else(|| self.expect_reveal(hash, &note));
        if !self.ensure(note.sender, DUST) {
            return false;
        }
        let to = self.cb.wallet.script(note.recipient);
        let spend = ops::recipient_tx(note.sender, ops::reveal_payload(&note.reveal), to);
        let variant = if forced.is_some() {
            "collision"
        } else {
            "scheduled"
        };
        self.revealing.insert(note.reveal.namespace_id.clone());
        self.emit(spend, "NAMESPACE_REVEAL", variant, expect)
            .is_some()
    }

    pub fn namespace_reveal(&mut self) -> bool {
        let pending = self.pending_ns_preorders();
        let good: Vec<&(String, NsNote)> = pending
            .iter()
            .filter(|(h, n)| self.expect_reveal(h, n) == Expect::Accept)
            .collect();
        let pick = if !good.is_empty() && self.rng.random_bool(0.8) {
            good.choose(&mut self.rng).map(|p| (*p).clone())
        } else {
            pending.choose(&mut self.rng).cloned()
        };
        let Some((hash, note)) = pick else {
            return false;
        };
        if self.revealing.contains(&note.reveal.namespace_id) {
            return false;
        }
        if self.reveal_halts(&hash, &note.reveal.namespace_id) {
            return false;
        }
        let mut expect = self.expect_reveal(&hash, &note);
        let mut sender = note.sender;
        let mut recipient = note.recipient;
        let mut reveal = note.reveal.clone();
        let mut variant = "valid";
        let mut four = false;
        match self.rng.random_range(0..100) {
            0..=5 => {
                recipient = self.other_user(recipient);
                variant = "not-the-committed-recipient";
                expect = Expect::Reject;
            }
            6..=11 => {
                sender = self.other_user(sender);
                variant = "not-the-preorderer";
                expect = Expect::Reject;
            }
            12..=14 => {
                four = true;
                variant = "four-outputs";
                expect = Expect::Drop;
            }
            15..=18 if !self.has(Feature::NamespacePayWithStacks) => {
                reveal.version = if self.has(Feature::NamespaceBurnToCreator) {
                    3
                } else {
                    *[2, 3].choose(&mut self.rng).expect("versions")
                };
                variant = "version-of-a-later-epoch";
                expect = Expect::Reject;
            }
            19..=20 => {
                reveal.version = *[0, 4].choose(&mut self.rng).expect("versions");
                variant = "unknown-version";
                expect = Expect::Drop;
            }
            21..=22 => {
                reveal.no_vowel_discount = 0;
                variant = "zero-discount";
                expect = Expect::Drop;
            }
            _ => {}
        }
        if !self.ensure(sender, DUST) {
            return false;
        }
        let to = self.cb.wallet.script(recipient);
        let mut spend = ops::recipient_tx(sender, ops::reveal_payload(&reveal), to);
        if four {
            spend
                .outs
                .push(Out::Pay(self.cb.wallet.script(sender), DUST));
        }
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        self.revealing.insert(reveal.namespace_id.clone());
        self.emit(spend, "NAMESPACE_REVEAL", variant, expect)
            .is_some()
    }

    pub fn namespace_ready(&mut self) -> bool {
        let revealed = self.revealed_namespaces();
        let b = self.block();
        let Some(ns) = revealed.choose(&mut self.rng).cloned() else {
            return false;
        };
        let Some(revealer) = self.owner_hex(&ns.recipient) else {
            return false;
        };
        // leave time for imports first
        if ns.reveal_block + 2 > b && self.rng.random_bool(0.8) {
            return false;
        }
        let mut sender = revealer;
        let mut id = ns.namespace_id.clone();
        let mut variant = "valid";
        let mut expect = if self.readying.contains(&id) {
            Expect::Reject
        } else {
            Expect::Accept
        };
        let mut twice = false;
        match self.rng.random_range(0..100) {
            0..=14 => {
                sender = self.other_user(revealer);
                variant = "not-the-revealer";
                expect = Expect::Reject;
            }
            15..=19 => {
                id = self.namespace_id();
                variant = "never-revealed";
                expect = Expect::Reject;
            }
            20..=24 => twice = true,
            _ => {}
        }
        if !self.ensure(sender, DUST) {
            return false;
        }
        let mut spend = ops::plain_tx(sender, ops::ready_payload(&id));
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        let accepted = expect == Expect::Accept;
        if self
            .emit(spend, "NAMESPACE_READY", variant, expect)
            .is_none()
        {
            return false;
        }
        if accepted {
            self.readying.insert(id.clone());
            if twice && self.ensure(sender, DUST) {
                let spend = ops::plain_tx(sender, ops::ready_payload(&id));
                self.emit(spend, "NAMESPACE_READY", "second-in-block", Expect::Reject);
            }
        }
        true
    }
}
