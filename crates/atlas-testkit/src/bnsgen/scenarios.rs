//! Operations staged over several blocks: same-block collisions of
//! registrations and of reveals, and preorders that reuse a live name's
//! preorder hash followed by registrations once the name has expired.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::generator::{Due, Gen, NameNote, NsNote, min_pay};
use super::ops::{self, TokenPayment};
use super::registration::{label_of, namespace_of};
use super::stats::Expect;
use super::wallet::{DUST, KeyId, MINER};
use bns_rules::params::{Feature, Units};
use bns_rules::payment::PAY_WITH_STACKS;
use bns_rules::price::price_namespace;

impl Gen {
    /// Two or three senders preorder one name now and register it in the
    /// same later block: all refused when at least two would pass.
    pub fn collision(&mut self) -> bool {
        let ready = self.ready_namespaces();
        let Some(ns) = ready.choose(&mut self.rng).cloned() else {
            return false;
        };
        let label = self.label(36 - ns.namespace_id.len());
        let name = format!("{label}.{}", ns.namespace_id);
        let n = self.rng.random_range(2..=3);
        let at = self.block() + self.rng.random_range(1..=2);
        let mut hashes = Vec::new();
        let mut all_paid = true;
        let mut senders: Vec<KeyId> = Vec::new();
        let stx_only = ns.version == PAY_WITH_STACKS;
        for _ in 0..20 {
            if senders.len() == n {
                break;
            }
            let u = if stx_only {
                self.stx_holder().unwrap_or(super::wallet::MINER)
            } else {
                self.pick_user()
            };
            if !senders.contains(&u) {
                senders.push(u);
            }
        }
        if senders.len() < 2 {
            return false;
        }
        for sender in senders {
            let mut pay = self.name_payment(&ns, &label, sender);
            // sometimes one underpays: then only the others count
            let paid_ok = !(self.rng.random_bool(0.2) && pay.underpay());
            all_paid &= paid_ok;
            let ch = self.fresh_ch();
            let script = self.cb.wallet.script(sender);
            let address = self.cb.wallet.address(sender);
            let hash = ops::preorder_hash(&name, &script, &address);
            let tokens = pay.tokens.map(TokenPayment::stacks);
            let payload = ops::name_preorder_payload(hash, ch, tokens.as_ref());
            if !self.ensure(sender, pay.btc) {
                return false;
            }
            let spend = ops::preorder_tx(sender, payload, pay.burn, pay.btc);
            let broke = pay
                .tokens
                .is_some_and(|t| self.stx_balance(sender) < i128::from(t));
            let expect = if broke {
                Expect::Reject
            } else if self.names_owned(sender) >= 22 {
                Expect::Any
            } else {
                Expect::Accept
            };
            all_paid &= expect == Expect::Accept;
            if self
                .emit(spend, "NAME_PREORDER", "collision", expect)
                .is_none()
            {
                return false;
            }
            if let Some(t) = pay.tokens.filter(|_| expect == Expect::Accept) {
                self.move_stx(sender, -i128::from(t));
            }
            let hex = hex::encode(hash);
            self.block_preorders.insert(hex.clone());
            self.name_notes.insert(
                hex.clone(),
                NameNote {
                    name: name.clone(),
                    sender,
                    recipient: script,
                    block: self.block(),
                    paid_ok,
                },
            );
            hashes.push(hex);
        }
        let forced = if all_paid {
            Expect::Reject
        } else {
            Expect::Any
        };
        for h in hashes {
            self.schedule_register(at, h, Some(forced));
        }
        true
    }

    /// Names whose record carries the preorder hash of a note we hold
    /// (registered from our preorder) and whose lifetime ends soon.
    fn live_names_with_notes(&self) -> Vec<(String, i64)> {
        let b = self.block();
        self.name_views()
            .into_iter()
            .filter(|v| (0..=30).contains(&v.to_expiry))
            .filter_map(|v| {
                let rec = self
                    .cb
                    .engine
                    .db
                    .get_name(&self.rules, &v.name, b - 1, true)?;
                let note = self.name_notes.get(&rec.preorder_hash)?;
                (note.name == v.name).then(|| (rec.preorder_hash.clone(), v.to_expiry))
            })
            .collect()
    }

    /// A preorder of a live name with the very hash it was registered from
    /// (same name, sender and recipient). The original accepts it (the hash
    /// belongs to an unexpired name) and keeps every such preorder as a row
    /// of its own; a registration once the name has expired reads the
    /// oldest. Given `hash`, sends that one again.
    pub fn repreorder(&mut self, hash: Option<String>) -> bool {
        let (hash, to_expiry) = match hash {
            Some(h) => (h, None),
            None => {
                let live = self.live_names_with_notes();
                match live.choose(&mut self.rng) {
                    Some((h, e)) => (h.clone(), Some(*e)),
                    None => return false,
                }
            }
        };
        let Some(note) = self.name_notes.get(&hash).cloned() else {
            return false;
        };
        let Some(ns) = self
            .cb
            .engine
            .db
            .namespace_ready(namespace_of(&note.name))
            .cloned()
        else {
            return false;
        };
        let b = self.block();
        let pay = self.name_payment(&ns, label_of(&note.name), note.sender);
        let ch = self.fresh_ch();
        let raw: [u8; 20] = hex::decode(&hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .expect("a preorder hash");
        let tokens = pay.tokens.map(TokenPayment::stacks);
        let payload = ops::name_preorder_payload(raw, ch, tokens.as_ref());
        let taken = self
            .cb
            .engine
            .db
            .name_preorder(&self.rules, &hash, b - 1)
            .is_some()
            || self.block_preorders.contains(&hash);
        let broke = pay
            .tokens
            .is_some_and(|t| self.stx_balance(note.sender) < i128::from(t));
        let expect = if taken || broke {
            Expect::Reject
        } else if self.names_owned(note.sender) >= 22 {
            Expect::Any
        } else {
            Expect::Accept
        };
        if !self.ensure(note.sender, pay.btc) {
            return false;
        }
        let spend = ops::preorder_tx(note.sender, payload, pay.burn.clone(), pay.btc);
        let variant = "same-hash-as-a-live-name";
        if self.emit(spend, "NAME_PREORDER", variant, expect).is_none() {
            return false;
        }
        self.block_preorders.insert(hash.clone());
        if let Some(t) = pay.tokens.filter(|_| expect == Expect::Accept) {
            self.move_stx(note.sender, -i128::from(t));
        }
        if let Some(e) = to_expiry {
            if self.rng.random_bool(0.5) {
                let again = b + self.rng.random_range(1..=3);
                self.due.push((again, Due::Repreorder(hash.clone())));
            }
            // once the name has expired and left its grace period (when
            // that ends within a run), by the preorderer: from the oldest row
            let grace = self.rules.grace_period(b, namespace_of(&note.name));
            for d in (1..=2).filter(|_| grace <= 30) {
                let at = b + e as u64 + grace + d;
                if at <= self.end {
                    self.schedule_register(at, hash.clone(), None);
                }
            }
        }
        true
    }

    /// Two senders preorder one namespace now and reveal it in the same
    /// later block: both reveals are refused when both would pass.
    pub fn reveal_collision(&mut self) -> bool {
        let b = self.block();
        let ns = self.namespace_id();
        let stx = self.has(Feature::StacksBuyNamespaces);
        let units = if stx { Units::Stacks } else { Units::Btc };
        let price = price_namespace(&self.rules, &ns, b, units).map_or(0, |p| min_pay(&p));
        if !stx && price > 500_000_000 {
            return false;
        }
        let at = b + self.rng.random_range(1..=2);
        let mut hashes = Vec::new();
        let mut all_ok = true;
        let mut senders: Vec<KeyId> = Vec::new();
        for _ in 0..2 {
            let mut pick = None;
            for _ in 0..8 {
                let s = if stx {
                    self.stx_holder().unwrap_or(MINER)
                } else {
                    self.pick_user()
                };
                if !senders.contains(&s) {
                    pick = Some(s);
                    break;
                }
            }
            let Some(sender) = pick else {
                return false;
            };
            senders.push(sender);
            let recipient = self.pick_user();
            let reveal = self.random_reveal(ns.clone());
            let (fee, tokens) = if stx {
                (DUST, Some(price))
            } else {
                (price, None)
            };
            let broke = tokens.is_some_and(|t| self.stx_balance(sender) < i128::from(t));
            let expect = if broke {
                Expect::Reject
            } else {
                Expect::Accept
            };
            all_ok &= !broke;
            let ch = self.fresh_ch();
            let hash = ops::preorder_hash(
                &ns,
                &self.cb.wallet.script(sender),
                &self.cb.wallet.address(recipient),
            );
            let payload = ops::namespace_preorder_payload(hash, ch, tokens);
            if !self.ensure(sender, fee) {
                return false;
            }
            let spend = ops::preorder_tx(sender, payload, ops::burn_script(), fee);
            if self
                .emit(spend, "NAMESPACE_PREORDER", "reveal-collision", expect)
                .is_none()
            {
                return false;
            }
            if let Some(t) = tokens.filter(|_| !broke) {
                self.move_stx(sender, -i128::from(t));
            }
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
            hashes.push(hex);
        }
        let forced = if all_ok { Expect::Reject } else { Expect::Any };
        for h in hashes {
            self.schedule_reveal(at, h, Some(forced));
        }
        true
    }
}
