//! What follows a namespace reveal that expired unreadied (reachable when
//! the rule set's `namespace_reveal_expire` is short, see
//! `RuleSet::with_timers`): the namespace preordered and revealed again,
//! possibly by someone else, and the old revealer's late readies and imports.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::generator::Gen;
use super::ops;
use super::stats::Expect;
use super::wallet::DUST;
use bns_rules::state::NamespaceRec;

impl Gen {
    /// Namespaces revealed, never readied, whose reveal has expired by the
    /// block being built.
    pub fn expired_reveals(&self) -> Vec<NamespaceRec> {
        let b = self.block();
        let expire = self.rules.namespace_reveal_expire;
        self.namespaces_where(|n| !n.is_ready() && n.reveal_block + expire <= b)
    }

    pub fn after_expired_reveal(&mut self) -> bool {
        let Some(ns) = self.expired_reveals().choose(&mut self.rng).cloned() else {
            return false;
        };
        let id = ns.namespace_id.clone();
        if self.revealing.contains(&id) || self.readying.contains(&id) {
            return false;
        }
        let Some(revealer) = self.owner_hex(&ns.recipient) else {
            return false;
        };
        match self.rng.random_range(0..100) {
            // A fresh preorder of the ID; the generator's reveals pick it
            // up. Its reveal only succeeds in the original when it burns the
            // first preorder's fee again: with another fee, the original
            // aborts (`bns_rules::engine::Halt`), which ends the run, so that is rare.
            0..=49 => {
                let first_fee = u64::try_from(ns.op_fee.as_int()).unwrap_or(0);
                let burn = self.rng.random_bool(0.95).then_some(first_fee);
                self.namespace_preorder_of(id, burn)
            }
            50..=74 => {
                if !self.ensure(revealer, DUST) {
                    return false;
                }
                let spend = ops::plain_tx(revealer, ops::ready_payload(&id));
                self.emit(spend, "NAMESPACE_READY", "reveal-expired", Expect::Reject)
                    .is_some()
            }
            _ => {
                if !self.ensure(revealer, 2 * DUST) {
                    return false;
                }
                let name = format!("{}.{id}", self.label(36 - id.len()));
                let user = self.pick_user();
                let to = self.cb.wallet.script(user);
                let spend = ops::import_tx(revealer, &name, to, self.rng.random());
                let expect = self.touch(&name, Expect::Reject);
                self.emit(spend, "NAME_IMPORT", "reveal-expired", expect)
                    .is_some()
            }
        }
    }
}
