//! Operations on registered names, each valid or broken in one chosen
//! way: renewals (also in the grace period), updates, transfers, revokes.

use bitcoin::ScriptBuf;
use rand::Rng;

use super::generator::Gen;
use super::model::NameView;
use super::ops;
use super::registration::{label_of, namespace_of};
use super::stats::Expect;
use super::wallet::{DUST, MINER, Out};
use bns_rules::params::Feature;

impl Gen {
    /// Renewals: by the owner (also in the grace period), paying the price
    /// at this block; or by another key, underpaid, to the wrong address,
    /// to another recipient before epoch 3, in the wrong payload form.
    pub fn name_renew(&mut self) -> bool {
        let views = self.name_views();
        let owned: Vec<NameView> = views.into_iter().filter(|v| v.owner.is_some()).collect();
        let preferred: Vec<bool> = owned.iter().map(|v| v.registered && v.ready).collect();
        let Some(view) = self.pick_name(&owned, &preferred) else {
            return false;
        };
        let owner = view.owner.expect("filtered");
        let Some(ns) = self
            .cb
            .engine
            .db
            .namespaces
            .get(namespace_of(&view.name))
            .cloned()
        else {
            return false;
        };
        let label = label_of(&view.name).to_string();
        let mut pay = self.name_payment(&ns, &label, owner);
        let rtu = self.has(Feature::OpRenewTransferUpdate);
        let mut sender = owner;
        let mut recipient = if rtu && self.rng.random_bool(0.2) {
            self.other_user(owner)
        } else {
            owner
        };
        let vh: [u8; 20] = self.rng.random();
        let tokens = self.has(Feature::NameopsCostTokens);
        // epoch 4+: 65 bytes with the tokens burnt (0 = paid in BTC), or the
        // bare name when paying BTC; epoch 3: 57 bytes or the bare name
        let with_hash = if tokens {
            pay.tokens.is_some() || self.rng.random_bool(0.85)
        } else {
            rtu && self.rng.random_bool(0.5)
        };
        let mut form_57 = false;
        let mut expect = if view.registered && view.ready {
            Expect::Accept
        } else {
            Expect::Reject
        };
        let mut variant = "valid";
        match self.rng.random_range(0..100) {
            0..=9 => {
                sender = self.other_user(owner);
                variant = "not-the-owner";
                expect = Expect::Reject;
            }
            10..=15 if pay.underpay() => {
                variant = "underpaid";
                expect = Expect::Reject;
            }
            16..=19 => {
                pay.burn = ops::p2pkh_of(self.rng.random());
                variant = "wrong-burn-address";
                expect = Expect::Reject;
            }
            20..=24 if !rtu => {
                recipient = self.other_user(owner);
                variant = "recipient-not-sender-before-epoch-3";
                expect = Expect::Reject;
            }
            25..=28 if tokens => {
                form_57 = true;
                variant = "57-byte-renewal-in-epoch-4";
                expect = Expect::Drop;
            }
            _ => {}
        }
        if variant == "valid" && view.grace {
            variant = "in-grace-period";
        }
        let payload = match (with_hash || form_57, tokens && !form_57) {
            (true, true) => {
                ops::registration_payload(&view.name, Some(vh), Some(pay.tokens.unwrap_or(0)))
            }
            (true, false) => ops::registration_payload(&view.name, Some(vh), None),
            _ => ops::registration_payload(&view.name, None, None),
        };
        if expect == Expect::Accept {
            let quota = self.names_owned(recipient);
            if quota >= 25 {
                expect = Expect::Reject;
            } else if quota >= 22 {
                expect = Expect::Any;
            }
            if pay
                .tokens
                .is_some_and(|t| self.stx_balance(sender) < i128::from(t))
            {
                expect = Expect::Reject;
            }
        }
        if !self.ensure(sender, pay.btc) {
            return false;
        }
        let to = self.cb.wallet.script(recipient);
        let mut spend = ops::renewal_tx(sender, payload, to, pay.burn, pay.btc);
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        if let Some(t) = pay.tokens.filter(|_| expect == Expect::Accept) {
            self.move_stx(sender, -i128::from(t));
        }
        let expect = self.touch(&view.name, expect);
        self.emit(spend, "NAME_RENEWAL", variant, expect).is_some()
    }

    /// Whether the owner may change `view` now (update, transfer): unexpired,
    /// unrevoked, readied, and out of the grace period (unless it never
    /// expires).
    fn may_change(&self, view: &NameView) -> bool {
        let infinite = self
            .cb
            .engine
            .db
            .namespaces
            .get(namespace_of(&view.name))
            .is_some_and(|n| n.lifetime == 0xffff_ffff);
        view.registered && view.ready && (!view.grace || infinite)
    }

    pub fn name_update(&mut self) -> bool {
        let views = self.name_views();
        let owned: Vec<NameView> = views.into_iter().filter(|v| v.owner.is_some()).collect();
        let preferred: Vec<bool> = owned.iter().map(|v| self.may_change(v)).collect();
        let Some(view) = self.pick_name(&owned, &preferred) else {
            return false;
        };
        let owner = view.owner.expect("filtered");
        let mut sender = owner;
        let mut ch = self.fresh_ch();
        let vh: [u8; 20] = self.rng.random();
        let mut variant = "valid";
        let mut expect = if self.may_change(&view) {
            Expect::Accept
        } else {
            Expect::Reject
        };
        let mut short = false;
        match self.rng.random_range(0..100) {
            0..=9 => {
                let (c, v) = self.bad_ch();
                ch = c;
                variant = v;
                expect = Expect::Reject;
            }
            10..=17 => {
                sender = self.other_user(owner);
                variant = "not-the-owner";
                expect = Expect::Reject;
            }
            18..=20 => {
                short = true;
                variant = "35-byte-payload";
                expect = Expect::Drop;
            }
            _ => {}
        }
        if expect == Expect::Accept {
            let held = self.names_owned(sender);
            if held > 25 {
                expect = Expect::Reject;
            } else if held >= 24 {
                expect = Expect::Any;
            }
        }
        let mut payload = ops::update_payload(&view.name, ch, vh);
        if short {
            payload.pop();
        }
        if !self.ensure(sender, DUST) {
            return false;
        }
        let mut spend = ops::plain_tx(sender, payload);
        match self.rng.random_range(0..20) {
            // the payload need not be output 0, and the last OP_RETURN counts
            0 | 1 => spend.outs.swap(0, 1),
            2 => spend.outs.insert(0, Out::Data(b"zz".to_vec())),
            _ => {}
        }
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        let expect = self.touch(&view.name, expect);
        self.emit(spend, "NAME_UPDATE", variant, expect).is_some()
    }

    pub fn name_transfer(&mut self) -> bool {
        let views = self.name_views();
        let owned: Vec<NameView> = views.into_iter().filter(|v| v.owner.is_some()).collect();
        let preferred: Vec<bool> = owned.iter().map(|v| self.may_change(v)).collect();
        let Some(view) = self.pick_name(&owned, &preferred) else {
            return false;
        };
        let owner = view.owner.expect("filtered");
        let mut sender = owner;
        let mut recipient = match self.rng.random_range(0..10) {
            0 => self.multisig,
            1 if owner != self.users[0] => self.users[0],
            _ => self.other_user(owner),
        };
        if recipient == owner {
            recipient = self.other_user(owner);
        }
        let mut ch = self.fresh_ch();
        let keep = self.rng.random_bool(0.5);
        let mut variant = "valid";
        let mut expect = if self.may_change(&view) {
            Expect::Accept
        } else {
            Expect::Reject
        };
        let mut to = None;
        match self.rng.random_range(0..100) {
            0..=7 => {
                recipient = owner;
                variant = "to-self";
                expect = Expect::Reject;
            }
            8..=15 => {
                let (c, v) = self.bad_ch();
                ch = c;
                variant = v;
                expect = Expect::Reject;
            }
            16..=22 => {
                sender = self.other_user(owner);
                variant = "not-the-owner";
                expect = Expect::Reject;
            }
            23..=25 => {
                to = Some(self.cb.wallet.script(self.segwit));
                variant = "segwit-recipient";
                expect = Expect::Drop;
            }
            26 | 27 => {
                // a bare public key: not an output type the original takes
                let mut p2pk = vec![0x21];
                p2pk.extend_from_slice(
                    &self.cb.wallet.key(MINER).pubkey_bytes(&self.cb.wallet.secp),
                );
                p2pk.push(0xac);
                to = Some(ScriptBuf::from_bytes(p2pk));
                variant = "p2pk-recipient";
                expect = Expect::Drop;
            }
            _ => {}
        }
        if expect == Expect::Accept {
            let held = self.names_owned(recipient);
            let p2sh = self.cb.wallet.key(sender).address.starts_with('2');
            if held >= 25 || (p2sh && !self.has(Feature::Multisig)) {
                expect = Expect::Reject;
            } else if held >= 22 {
                expect = Expect::Any;
            }
        }
        if !self.ensure(sender, DUST) {
            return false;
        }
        let to = to.unwrap_or_else(|| self.cb.wallet.script(recipient));
        let payload = ops::transfer_payload(&view.name, keep, ch);
        let mut spend = ops::recipient_tx(sender, payload, to);
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        let expect = self.touch(&view.name, expect);
        self.emit(spend, "NAME_TRANSFER", variant, expect).is_some()
    }

    pub fn name_revoke(&mut self) -> bool {
        let views = self.name_views();
        let owned: Vec<NameView> = views.into_iter().filter(|v| v.owner.is_some()).collect();
        let preferred: Vec<bool> = owned
            .iter()
            .map(|v| v.registered && v.ready && !v.grace)
            .collect();
        let Some(view) = self.pick_name(&owned, &preferred) else {
            return false;
        };
        let owner = view.owner.expect("filtered");
        let b = self.block();
        // revokes test expiry and grace at this block, not the last
        let live_now = self
            .cb
            .engine
            .db
            .get_name(&self.rules, &view.name, b, false)
            .is_some();
        let grace_now = self
            .cb
            .engine
            .db
            .in_grace_period(&self.rules, &view.name, b);
        let mut expect = if view.registered && view.ready && live_now && !grace_now {
            Expect::Accept
        } else {
            Expect::Reject
        };
        let mut sender = owner;
        let mut name = view.name.clone();
        let mut variant = "valid";
        match self.rng.random_range(0..100) {
            0..=14 => {
                sender = self.other_user(owner);
                variant = "not-the-owner";
                expect = Expect::Reject;
            }
            15..=18 => {
                name = name.to_uppercase();
                variant = "invalid-name";
                expect = Expect::Drop;
            }
            _ => {}
        }
        if !self.ensure(sender, DUST) {
            return false;
        }
        let mut spend = ops::plain_tx(sender, ops::revoke_payload(&name));
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        let expect = self.touch(&view.name, expect);
        self.emit(spend, "NAME_REVOKE", variant, expect).is_some()
    }

    /// ANNOUNCE: stateless, never hashed; with no announcers configured
    /// nothing comes of it.
    pub fn announce(&mut self) -> bool {
        let sender = self.pick_user();
        let message: [u8; 20] = self.rng.random();
        let payload = [b"id#".as_slice(), &message].concat();
        if !self.ensure(sender, DUST) {
            return false;
        }
        let spend = ops::plain_tx(sender, payload);
        self.emit(spend, "ANNOUNCE", "valid", Expect::Drop)
            .is_some()
    }
}
