//! STX: balances as the next operation of this block will find them, and
//! TOKEN_TRANSFER, valid or broken in one chosen way.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::generator::Gen;
use super::ops;
use super::stats::Expect;
use super::wallet::{DUST, KeyId, MINER};
use bns_rules::params::Feature;

impl Gen {
    /// STX a key holds (0 without an account), this block's operations
    /// so far included.
    pub fn stx_balance(&self, key: KeyId) -> i128 {
        let held = self
            .cb
            .engine
            .db
            .account(&self.cb.wallet.address(key), "STACKS")
            .map_or(0, |a| a.balance());
        held + self.stx_delta.get(&key).copied().unwrap_or(0)
    }

    /// Books STX an operation of this block pays (negative) or receives.
    pub fn move_stx(&mut self, key: KeyId, amount: i128) {
        *self.stx_delta.entry(key).or_default() += amount;
    }

    /// A key holding STX: the miner (the genesis account) or a user it paid.
    pub fn stx_holder(&mut self) -> Option<KeyId> {
        let mut holders: Vec<KeyId> = self
            .users
            .iter()
            .copied()
            .filter(|u| self.stx_balance(*u) > 1_000_000_000)
            .collect();
        if self.stx_balance(MINER) > 0 {
            holders.push(MINER);
        }
        holders.choose(&mut self.rng).copied()
    }

    pub fn token_transfer(&mut self) -> bool {
        let enabled = self.has(Feature::TokenTransfer);
        let Some(mut sender) = self.stx_holder() else {
            return false;
        };
        let mut recipient = match self.rng.random_range(0..10) {
            0 => self.multisig,
            _ => self.other_user(sender),
        };
        let balance = self.stx_balance(sender).max(0) as u64;
        let mut amount = self.rng.random_range(1..=(balance / 3).max(1));
        let optional = self.has(Feature::TokenTransferConsensusHashOptional);
        let mut ch = if optional && self.rng.random_bool(0.3) {
            [0; 16]
        } else {
            self.fresh_ch()
        };
        let mut units = "STACKS";
        let mut variant = "valid";
        let mut expect = Expect::Accept;
        match self.rng.random_range(0..100) {
            0..=5 => {
                amount = 0;
                variant = "zero-amount";
                expect = Expect::Reject;
            }
            6..=10 => {
                recipient = sender;
                variant = "to-self";
                expect = Expect::Reject;
            }
            11..=18 => {
                let (c, v) = self.bad_ch();
                ch = c;
                variant = v;
                expect = if v == "zero-consensus-hash" && optional {
                    Expect::Accept
                } else {
                    Expect::Reject
                };
            }
            19..=23 => {
                amount = balance + 1;
                variant = "overdraft";
                expect = Expect::Reject;
            }
            24..=27 => {
                if let Some(poor) = self
                    .users
                    .iter()
                    .copied()
                    .find(|u| self.stx_balance(*u) == 0)
                {
                    sender = poor;
                    if recipient == poor {
                        recipient = MINER;
                    }
                    variant = "without-account";
                    expect = Expect::Reject;
                }
            }
            28..=30 => {
                units = "STACKZ";
                variant = "unknown-units";
                expect = Expect::Reject;
            }
            _ => {}
        }
        if !enabled {
            expect = Expect::Drop;
        }
        let scratch: Vec<u8> = (0..self.rng.random_range(0..=8))
            .map(|_| self.rng.random())
            .collect();
        if !self.ensure(sender, DUST) {
            return false;
        }
        let payload = ops::token_transfer_payload(ch, units, amount, &scratch);
        let mut spend = ops::recipient_tx(sender, payload, self.cb.wallet.script(recipient));
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        if expect == Expect::Accept {
            self.move_stx(sender, -i128::from(amount));
            self.move_stx(recipient, i128::from(amount));
        }
        self.emit(spend, "TOKEN_TRANSFER", variant, expect)
            .is_some()
    }
}
