//! What the generator knows before each block: its users, fresh labels
//! and namespace IDs, and the names and namespaces as the next block will
//! find them (read from our rule engine's state).

use rand::Rng;
use rand::seq::IndexedRandom;

use super::generator::Gen;
use super::stats::Expect;
use super::wallet::KeyId;
use bns_rules::state::NamespaceRec;

const LABEL_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
const CONSONANTS: &[u8] = b"bcdfghjklmnpqrstvwxz";

/// A name as the generator sees it before the next block.
#[derive(Debug, Clone)]
pub(super) struct NameView {
    pub name: String,
    pub owner: Option<KeyId>,
    /// Unexpired at the last block and not revoked.
    pub registered: bool,
    /// In its renewal grace period at the next block.
    pub grace: bool,
    pub ready: bool,
    /// Blocks from the next block to the end of the name's lifetime.
    pub to_expiry: i64,
    /// Blocks from the next block to the end of its grace period.
    pub to_grace_end: i64,
}

impl Gen {
    pub fn pick_user(&mut self) -> KeyId {
        *self.users.choose(&mut self.rng).expect("users")
    }

    /// Another user than `not`.
    pub fn other_user(&mut self, not: KeyId) -> KeyId {
        loop {
            let u = self.pick_user();
            if u != not {
                return u;
            }
        }
    }

    /// A fresh label: random base-40 text, sometimes without vowels or
    /// with digits (the price discounts), 1 to 16 characters.
    pub fn label(&mut self, max_len: usize) -> String {
        loop {
            let len = match self.rng.random_range(0..10) {
                0 => 1,
                1 | 2 => self.rng.random_range(2..=4),
                _ => self.rng.random_range(5..=16),
            }
            .min(max_len)
            .max(1);
            let alphabet = if self.rng.random_bool(0.2) {
                CONSONANTS
            } else {
                LABEL_CHARS
            };
            let s: String = (0..len)
                .map(|_| char::from(*alphabet.choose(&mut self.rng).expect("letters")))
                .collect();
            if self.used.insert(s.clone()) || len <= 2 {
                return s;
            }
        }
    }

    /// A new namespace ID, mostly 4 to 19 characters (cheap), rarely 1 to 3
    /// (tens of BTC), sometimes `test` (which takes `id`'s rules).
    pub fn namespace_id(&mut self) -> String {
        if self.rng.random_bool(0.03) && !self.used.contains("test") {
            self.used.insert("test".into());
            return "test".into();
        }
        loop {
            let len = match self.rng.random_range(0..40) {
                0 => self.rng.random_range(1..=3),
                1..=14 => self.rng.random_range(4..=7),
                _ => self.rng.random_range(8..=19),
            };
            let s: String = (0..len)
                .map(|_| char::from(*LABEL_CHARS.choose(&mut self.rng).expect("letters")))
                .collect();
            if self.cb.engine.db.namespaces.contains_key(&s) {
                continue;
            }
            if self.used.insert(format!("ns:{s}")) {
                return s;
            }
        }
    }

    /// The key owning a script given as hex (the engine's `sender` fields).
    pub fn owner_hex(&self, script_hex: &str) -> Option<KeyId> {
        let bytes = hex::decode(script_hex).ok()?;
        self.cb.wallet.owner_of(bitcoin::Script::from_bytes(&bytes))
    }

    pub fn script_hex(&self, key: KeyId) -> String {
        hex::encode(self.cb.wallet.script(key).as_bytes())
    }

    /// Names a key holds as the rules count them for quotas.
    pub fn names_owned(&self, key: KeyId) -> usize {
        let last = self.block() - 1;
        self.cb
            .engine
            .db
            .names_by_sender(&self.rules, &self.script_hex(key), last)
            .len()
    }

    /// The namespaces `keep` selects, by ID (the state's map has no order;
    /// the seed alone must decide the chain).
    pub fn namespaces_where(&self, keep: impl Fn(&NamespaceRec) -> bool) -> Vec<NamespaceRec> {
        let mut v: Vec<NamespaceRec> = self
            .cb
            .engine
            .db
            .namespaces
            .values()
            .filter(|n| keep(n))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.namespace_id.cmp(&b.namespace_id));
        v
    }

    pub fn ready_namespaces(&self) -> Vec<NamespaceRec> {
        self.namespaces_where(NamespaceRec::is_ready)
    }

    pub fn revealed_namespaces(&self) -> Vec<NamespaceRec> {
        let last = self.block() - 1;
        let db = &self.cb.engine.db;
        self.namespaces_where(|n| {
            db.namespace_reveal(&self.rules, &n.namespace_id, last)
                .is_some()
        })
    }

    /// Every name the engine knows, as the next block will see it.
    pub fn name_views(&self) -> Vec<NameView> {
        let b = self.block();
        let db = &self.cb.engine.db;
        let mut v: Vec<NameView> = db
            .names()
            .map(|r| {
                let ns = db.namespaces.get(&r.namespace_id);
                let ready = ns.is_some_and(|n| n.is_ready());
                let to_expiry = ns.filter(|n| n.is_ready()).map_or(i64::MAX, |n| {
                    let m = self.rules.lifetime_multiplier(b, &n.namespace_id);
                    let end = n.ready_block.max(r.last_renewed) as i64
                        + (n.lifetime as i64).saturating_mul(m as i64);
                    end - b as i64
                });
                let grace = self.rules.grace_period(b, &r.namespace_id) as i64;
                let live = db.get_name(&self.rules, &r.name, b - 1, false).is_some();
                NameView {
                    name: r.name.clone(),
                    owner: self.owner_hex(&r.sender),
                    registered: live && !r.revoked,
                    grace: db.in_grace_period(&self.rules, &r.name, b),
                    ready,
                    to_expiry,
                    to_grace_end: to_expiry.saturating_add(grace),
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Picks one of `views`: often one within two blocks of the end of its
    /// lifetime or of its grace period (expiry and grace edges), else mostly
    /// one marked `preferred` (where the operation can pass).
    pub fn pick_name(&mut self, views: &[NameView], preferred: &[bool]) -> Option<NameView> {
        let edge: Vec<&NameView> = views
            .iter()
            .filter(|v| v.to_expiry.abs() <= 2 || v.to_grace_end.abs() <= 2)
            .collect();
        if !edge.is_empty() && self.rng.random_bool(0.35) {
            return edge.choose(&mut self.rng).map(|v| (*v).clone());
        }
        let good: Vec<&NameView> = views
            .iter()
            .zip(preferred)
            .filter(|(_, p)| **p)
            .map(|(v, _)| v)
            .collect();
        if !good.is_empty() && self.rng.random_bool(0.75) {
            return good.choose(&mut self.rng).map(|v| (*v).clone());
        }
        views.choose(&mut self.rng).cloned()
    }

    /// Marks `name` as concerned by an operation of this block; a second
    /// one's verdict depends on the first's, as does any after its
    /// namespace was readied in this block.
    pub fn touch(&mut self, name: &str, expect: Expect) -> Expect {
        let again = !self.touched.insert(name.to_string());
        let readied = name
            .rsplit_once('.')
            .is_some_and(|(_, ns)| self.readying.contains(ns));
        if (again || readied) && expect != Expect::Drop {
            Expect::Any
        } else {
            expect
        }
    }
}
