//! Name preorders and registrations, each valid or broken in one chosen
//! way, with payments in BTC or STX at the original's prices and late
//! registrations at the preorder-expiry edges.

use bitcoin::ScriptBuf;
use rand::Rng;
use rand::seq::IndexedRandom;

use super::generator::{Gen, NameNote, min_pay};
use super::model::NameView;
use super::ops::{self, TokenPayment};
use super::stats::Expect;
use super::wallet::{DUST, KeyId, Out};
use bns_rules::hashing::address_script;
use bns_rules::params::Feature;
use bns_rules::payment::{
    PAY_TO_BURN, PAY_TO_CREATOR, PAY_WITH_STACKS, name_price, namespace_price,
};
use bns_rules::price::price_name_stacks;
use bns_rules::state::NamespaceRec;

/// What a name preorder or renewal pays: BTC to `burn` (the burn address,
/// or a pay-to-creator namespace's creator), and maybe STX.
#[derive(Debug, Clone)]
pub(super) struct NamePay {
    pub burn: ScriptBuf,
    pub btc: u64,
    pub tokens: Option<u64>,
    /// The price itself (in the units paid), which `btc` or `tokens` may
    /// exceed by a margin.
    pub price: u64,
}

impl NamePay {
    /// One unit below the price: the least underpayment.
    pub fn underpay(&mut self) -> bool {
        if self.price == 0 {
            return false;
        }
        match self.tokens.as_mut() {
            Some(t) => *t = self.price - 1,
            None => self.btc = self.price - 1,
        }
        true
    }
}

pub(super) fn namespace_of(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or("")
}

pub(super) fn label_of(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(l, _)| l)
}

impl Gen {
    /// What a name costs at the next block, paid in one of the ways `ns`
    /// takes (BTC, or STX from epoch 4 when the payer has them), at the
    /// price itself or a little above it.
    pub(super) fn name_payment(&mut self, ns: &NamespaceRec, label: &str, payer: KeyId) -> NamePay {
        let b = self.block();
        let mut burn = ops::burn_script();
        let btc_price = min_pay(&name_price(&self.rules, ns, label, b));
        let margin = |g: &mut Gen, p: u64| {
            if g.rng.random_bool(0.4) {
                p + g.rng.random_range(0..=p / 10 + 1)
            } else {
                p
            }
        };
        if ns.version == PAY_WITH_STACKS {
            let t = margin(self, btc_price);
            return NamePay {
                burn,
                btc: DUST,
                tokens: Some(t),
                price: btc_price,
            };
        }
        if ns.version == PAY_TO_CREATOR {
            let period = self.rules.receive_fees_period(b, &ns.namespace_id);
            if ns.reveal_block + period >= b {
                burn = address_script(&ns.address).unwrap_or(burn);
            }
        } else if self.has(Feature::NameopsCostTokens) && self.rng.random_bool(0.3) {
            let stx = price_name_stacks(
                &self.rules,
                &ns.namespace_id,
                &namespace_price(ns),
                label.as_bytes(),
                b,
            );
            let stx = min_pay(&stx);
            if self.stx_balance(payer) >= i128::from(stx) {
                let t = margin(self, stx);
                return NamePay {
                    burn,
                    btc: DUST,
                    tokens: Some(t),
                    price: stx,
                };
            }
        }
        let btc = margin(self, btc_price);
        NamePay {
            burn,
            btc,
            tokens: None,
            price: btc_price,
        }
    }

    /// Outstanding name preorders we know the plaintext of, oldest first.
    pub fn pending_name_preorders(&self) -> Vec<(String, NameNote)> {
        let mut v: Vec<(String, NameNote)> = self
            .name_notes
            .iter()
            .filter(|(h, _)| {
                self.cb
                    .engine
                    .db
                    .preorders
                    .get(*h)
                    .is_some_and(|p| p.op == '?')
            })
            .map(|(h, n)| (h.clone(), n.clone()))
            .collect();
        v.sort_by(|a, b| (a.1.block, &a.0).cmp(&(b.1.block, &b.0)));
        v
    }

    /// A name to preorder in `ns`: new, or one that expired (registrable
    /// again), or one still registered (its registration will fail).
    fn name_to_preorder(&mut self, ns: &str) -> String {
        let views = self.name_views();
        let in_ns: Vec<&NameView> = views
            .iter()
            .filter(|v| namespace_of(&v.name) == ns)
            .collect();
        let b = self.block();
        let expired: Vec<&&NameView> = in_ns
            .iter()
            .filter(|v| {
                self.cb
                    .engine
                    .db
                    .get_name(&self.rules, &v.name, b - 1, false)
                    .is_none()
            })
            .collect();
        let roll = self.rng.random_range(0..100);
        if roll < 20
            && let Some(v) = expired.choose(&mut self.rng)
        {
            return v.name.clone();
        }
        if roll < 28
            && let Some(v) = in_ns.choose(&mut self.rng)
        {
            return v.name.clone();
        }
        // now and then as long as a name may be (37 characters)
        let label = if self.rng.random_bool(0.05) {
            let len = 36 - ns.len();
            (0..len)
                .map(|_| char::from(b'a' + self.rng.random_range(0..26u8)))
                .collect()
        } else {
            self.label(36 - ns.len())
        };
        format!("{label}.{ns}")
    }

    /// The verdict a registration of the preorder `hash` should get now.
    fn expect_register(&self, hash: &str, note: &NameNote, recipient: KeyId) -> Expect {
        let b = self.block();
        let last = b - 1;
        let db = &self.cb.engine.db;
        let Some(p) = db.preorders.get(hash) else {
            return Expect::Reject;
        };
        let ns_id = namespace_of(&note.name);
        let Some(ns) = db.namespace_ready(ns_id) else {
            return Expect::Reject;
        };
        if db.is_revoked(&self.rules, &note.name, last)
            || db.get_name(&self.rules, &note.name, last, false).is_some()
        {
            return Expect::Reject;
        }
        let m = u128::from(self.rules.lifetime_multiplier(last, ns_id));
        if u128::from(p.block_number) + u128::from(ns.lifetime) * m <= u128::from(last) {
            return Expect::Reject;
        }
        if self.has(Feature::FixPreorderExpire) && p.block_number + 144 < b {
            return Expect::Reject;
        }
        if p.block_number < ns.ready_block || !note.paid_ok {
            return Expect::Reject;
        }
        let p2sh = self.cb.wallet.key(recipient).address.starts_with('2');
        if p2sh && !self.has(Feature::Multisig) {
            return Expect::Reject;
        }
        match self.names_owned(recipient) {
            n if n >= 25 => Expect::Reject,
            n if n >= 22 => Expect::Any,
            _ if self.registering.contains(&note.name) => Expect::Any,
            _ => Expect::Accept,
        }
    }

    pub fn name_preorder(&mut self) -> bool {
        let ready = self.ready_namespaces();
        let revealed = self.revealed_namespaces();
        let ns = if !revealed.is_empty() && (ready.is_empty() || self.rng.random_bool(0.08)) {
            revealed.choose(&mut self.rng).cloned()
        } else {
            ready.choose(&mut self.rng).cloned()
        };
        let Some(ns) = ns else { return false };
        let name = self.name_to_preorder(&ns.namespace_id);
        let mut sender = if self.rng.random_bool(0.05) {
            self.multisig
        } else if ns.version == PAY_WITH_STACKS && self.rng.random_bool(0.8) {
            self.stx_holder().unwrap_or(super::wallet::MINER)
        } else {
            self.pick_user()
        };
        let recipient = match self.rng.random_range(0..20) {
            0 => self.multisig,
            1..=5 => self.other_user(sender),
            _ => sender,
        };
        let mut pay = self.name_payment(&ns, label_of(&name), sender);
        let mut paid_ok = ns.is_ready();
        let mut ch = self.fresh_ch();
        let mut variant = "valid";
        let mut expect = Expect::Accept;
        let mut stx_units = "STACKS".to_string();
        let mut layout = 0;
        let epoch4 = self.has(Feature::NameopsCostTokens);
        match self.rng.random_range(0..100) {
            0..=7 => {
                let (c, v) = self.bad_ch();
                ch = c;
                variant = v;
                expect = Expect::Reject;
            }
            8..=12 if pay.tokens.is_none() && pay.underpay() => {
                paid_ok = false;
                variant = "underpaid";
            }
            13..=16 => {
                pay.burn = ops::p2pkh_of(self.rng.random());
                paid_ok = false;
                variant = "wrong-burn-address";
                if pay.tokens.is_some() {
                    expect = Expect::Reject;
                }
            }
            17..=19 => {
                layout = 1;
                paid_ok = false;
                variant = "burn-at-output-1";
                if pay.tokens.is_some() {
                    expect = Expect::Reject;
                }
            }
            20..=22 => {
                layout = 2;
                variant = "four-outputs";
                expect = Expect::Drop;
            }
            23 | 24 => {
                layout = 3;
                variant = "two-outputs";
                expect = Expect::Drop;
            }
            25..=28 if !epoch4 => {
                pay.tokens = Some(pay.btc);
                variant = "stx-payload-before-epoch-4";
                expect = Expect::Drop;
            }
            25..=28 => {
                layout = 4;
                variant = "62-byte-payload";
                expect = Expect::Drop;
            }
            29..=32 if epoch4 => {
                match self.rng.random_range(0..4) {
                    0 => {
                        // a key without STX pays in STX
                        sender = self.user_without_stx().unwrap_or(sender);
                        pay.tokens = Some(pay.tokens.unwrap_or(1000));
                        variant = "stx-without-account";
                        if self.stx_balance(sender) == 0 {
                            expect = Expect::Reject;
                        } else {
                            expect = Expect::Any;
                        }
                    }
                    1 => {
                        pay.tokens = Some(pay.tokens.unwrap_or(1000));
                        stx_units = "STACKZ".into();
                        variant = "stx-wrong-units";
                        expect = Expect::Reject;
                    }
                    2 if self.stx_balance(sender) > 0 => {
                        let over = self.stx_balance(sender) as u64 + 1;
                        pay.tokens = Some(over);
                        variant = "stx-overdraft";
                        expect = Expect::Reject;
                    }
                    _ => {
                        if pay.tokens.is_some() && pay.underpay() {
                            paid_ok = false;
                            variant = "stx-underpaid";
                        }
                    }
                }
            }
            33 | 34 if epoch4 && ns.version != PAY_TO_BURN => {
                // STX where the creator takes BTC, BTC where STX is due
                if ns.version == PAY_TO_CREATOR {
                    pay.tokens = Some(pay.price.max(1));
                    pay.burn = ops::burn_script();
                } else {
                    pay.tokens = None;
                    pay.btc = pay.price;
                }
                paid_ok = false;
                variant = "wrong-currency";
            }
            _ => {}
        }
        // Near the end of a pay-to-creator namespace's fee period (reached
        // only with short test timers), half the time pay the other side of
        // it: the registration's block decides which one was due.
        let b = self.block();
        let fees_end = ns.reveal_block + self.rules.receive_fees_period(b, &ns.namespace_id);
        if variant == "valid"
            && ns.version == PAY_TO_CREATOR
            && pay.tokens.is_none()
            && fees_end.abs_diff(b) <= 8
            && self.rng.random_bool(0.5)
        {
            let creator = address_script(&ns.address).unwrap_or_else(ops::burn_script);
            pay.burn = if pay.burn == creator {
                ops::burn_script()
            } else {
                creator
            };
            paid_ok = false;
            variant = "creator-fee-period-edge";
        }
        if let Some(t) = pay.tokens
            && epoch4
            && expect == Expect::Accept
            && self.stx_balance(sender) < i128::from(t)
        {
            expect = Expect::Reject;
        }
        let sender_script = self.cb.wallet.script(sender);
        let recipient_address = self.cb.wallet.address(recipient);
        let hash = ops::preorder_hash(&name, &sender_script, &recipient_address);
        let hash_hex = hex::encode(hash);
        if variant == "valid" || !matches!(expect, Expect::Reject | Expect::Drop) {
            let last = self.block() - 1;
            let outstanding = self
                .cb
                .engine
                .db
                .name_preorder(&self.rules, &hash_hex, last)
                .is_some()
                || self.block_preorders.contains(&hash_hex);
            if outstanding {
                variant = "duplicate-preorder";
                expect = Expect::Reject;
            } else if self.names_owned(sender) >= 25 {
                variant = "sender-over-quota";
                expect = Expect::Reject;
            } else if self.names_owned(sender) >= 22 {
                expect = Expect::Any;
            }
        }
        let tokens = pay.tokens.map(|amount| TokenPayment {
            amount,
            units: stx_units,
        });
        let tokens_paid = tokens.clone();
        let mut payload = ops::name_preorder_payload(hash, ch, tokens.as_ref());
        if layout == 4 {
            payload.truncate(payload.len().min(3 + 62));
            if payload.len() < 3 + 62 {
                payload.resize(3 + 62, 0);
            }
        }
        if !self.ensure(sender, pay.btc) {
            return false;
        }
        let mut spend = ops::preorder_tx(sender, payload, pay.burn.clone(), pay.btc);
        match layout {
            1 => spend.outs.swap(1, 2),
            2 => spend
                .outs
                .push(Out::Pay(self.cb.wallet.script(recipient), DUST)),
            3 => {
                spend.outs.remove(1);
            }
            _ => {}
        }
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        if self.emit(spend, "NAME_PREORDER", variant, expect).is_none() {
            return false;
        }
        self.block_preorders.insert(hash_hex.clone());
        if let Some(t) = tokens_paid.filter(|_| expect == Expect::Accept && epoch4) {
            self.move_stx(sender, -i128::from(t.amount));
        }
        if !matches!(expect, Expect::Reject | Expect::Drop) && variant != "duplicate-preorder" {
            let b = self.block();
            let note = NameNote {
                name,
                sender,
                recipient: self.cb.wallet.script(recipient),
                block: b,
                paid_ok,
            };
            self.name_notes.insert(hash_hex.clone(), note);
            if self.rng.random_bool(0.05) {
                // registered in the preorder's own block
                self.register_late(&hash_hex, Some(Expect::Any));
            } else if self.rng.random_bool(0.12) {
                // register at the edge of the preorder's life: 144 blocks in
                // epoch 4+, the namespace lifetime before it
                let m = self.rules.lifetime_multiplier(b, &ns.namespace_id);
                let life = if ns.lifetime == 0xffff_ffff {
                    144
                } else {
                    ns.lifetime * m
                };
                let at = b + life + self.rng.random_range(0..=2) - 1;
                if at <= self.end {
                    self.schedule_register(at, hash_hex, None);
                }
            }
        }
        true
    }

    /// A p2pkh user holding no STX, if there is one.
    fn user_without_stx(&mut self) -> Option<KeyId> {
        let without: Vec<KeyId> = self
            .users
            .iter()
            .copied()
            .filter(|u| self.stx_balance(*u) == 0)
            .collect();
        without.choose(&mut self.rng).copied()
    }

    /// A registration of `name` in the payload form the epoch allows,
    /// chosen at random among the valid ones.
    fn registration_payload(&mut self, name: &str) -> Vec<u8> {
        let vh: [u8; 20] = self.rng.random();
        let with_hash = self.has(Feature::OpRegisterUpdate) && self.rng.random_bool(0.7);
        let tokens =
            (self.has(Feature::NameopsCostTokens) && self.rng.random_bool(0.5)).then_some(0);
        ops::registration_payload(name, with_hash.then_some(vh), tokens)
    }

    /// Registers the outstanding preorder `hash` as it committed to, or with
    /// `expect` forced (same-block collisions).
    pub fn register_late(&mut self, hash: &str, forced: Option<Expect>) -> bool {
        let Some(note) = self.name_notes.get(hash).cloned() else {
            return false;
        };
        let Some(recipient) = self.cb.wallet.owner_of(&note.recipient) else {
            return false;
        };
        if forced.is_none() && self.registering.contains(&note.name) {
            // one scheduled registration of a name a block is enough
            return false;
        }
        let expect = forced.unwrap_or_else(|| self.expect_register(hash, &note, recipient));
        let payload = self.registration_payload(&note.name);
        self.ensure(note.sender, DUST);
        let spend = ops::recipient_tx(note.sender, payload, note.recipient.clone());
        let variant = match forced {
            None => "late",
            Some(Expect::Any) if self.block_preorders.contains(hash) => "same-block-as-preorder",
            Some(_) => "collision",
        };
        self.registering.insert(note.name.clone());
        let expect = self.touch(&note.name, expect);
        self.emit(spend, "NAME_REGISTRATION", variant, expect)
            .is_some()
    }

    pub fn name_register(&mut self) -> bool {
        let b = self.block();
        let pending = self.pending_name_preorders();
        // mostly preorders that can be registered now; the others (expired,
        // underpaid, for taken names) now and then
        let good: Vec<&(String, NameNote)> = pending
            .iter()
            .filter(|(h, n)| {
                self.cb
                    .wallet
                    .owner_of(&n.recipient)
                    .is_some_and(|r| self.expect_register(h, n, r) == Expect::Accept)
            })
            .collect();
        let recent: Vec<&(String, NameNote)> =
            pending.iter().filter(|(_, n)| n.block + 10 >= b).collect();
        let pick = if !good.is_empty() && self.rng.random_bool(0.75) {
            good.choose(&mut self.rng).map(|p| (*p).clone())
        } else if !recent.is_empty() && self.rng.random_bool(0.8) {
            recent.choose(&mut self.rng).map(|p| (*p).clone())
        } else {
            pending.choose(&mut self.rng).cloned()
        };
        let Some((hash, note)) = pick else {
            return false;
        };
        if self.registering.contains(&note.name) {
            return false;
        }
        let Some(recipient) = self.cb.wallet.owner_of(&note.recipient) else {
            return false;
        };
        let mut sender = note.sender;
        let mut to = note.recipient.clone();
        let mut payload = self.registration_payload(&note.name);
        let mut expect = self.expect_register(&hash, &note, recipient);
        let mut variant = "valid";
        let vh: [u8; 20] = self.rng.random();
        match self.rng.random_range(0..100) {
            0..=5 => {
                sender = self.other_user(sender);
                variant = "not-the-preorderer";
                expect = Expect::Reject;
            }
            6..=11 => {
                let other = self.other_user(recipient);
                to = self.cb.wallet.script(other);
                variant = "not-the-committed-recipient";
                expect = Expect::Reject;
            }
            12..=15 if !self.has(Feature::OpRegisterUpdate) => {
                // The original logs this payload as the invalid name it is;
                // printable bytes keep the oracle's report printable.
                let vh: [u8; 20] = std::array::from_fn(|_| self.rng.random_range(b'a'..=b'z'));
                payload = ops::registration_payload(&note.name, Some(vh), None);
                variant = "value-hash-before-epoch-3";
                expect = Expect::Drop;
            }
            12..=15 if self.has(Feature::NameopsCostTokens) => {
                payload = ops::registration_payload(&note.name, Some(vh), Some(1));
                variant = "tokens-in-registration";
                expect = Expect::Drop;
            }
            12..=15 => {
                payload = ops::registration_payload(&note.name, Some(vh), Some(0));
                variant = "65-byte-payload-in-epoch-3";
                expect = Expect::Drop;
            }
            16..=18 => {
                to = self.cb.wallet.script(self.segwit);
                variant = "segwit-recipient";
                expect = Expect::Drop;
            }
            _ => {}
        }
        if !self.ensure(sender, DUST) {
            return false;
        }
        let mut spend = ops::recipient_tx(sender, payload, to);
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        self.registering.insert(note.name.clone());
        let expect = self.touch(&note.name, expect);
        self.emit(spend, "NAME_REGISTRATION", variant, expect)
            .is_some()
    }
}
