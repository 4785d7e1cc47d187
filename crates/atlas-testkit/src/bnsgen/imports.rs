//! NAME_IMPORT: from the revealer (the first must be), from its keyring
//! children, from outsiders and p2sh senders, into ready namespaces.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::generator::Gen;
use super::keys::{Key, KeyKind, keyring_child_secret};
use super::ops;
use super::registration::label_of;
use super::stats::Expect;
use super::wallet::{DUST, KeyId, Out};
use bns_rules::payment::{PAY_WITH_STACKS, name_price};
use bns_rules::state::NamespaceRec;

/// How often the first user receives an import: it collects names up to
/// the quota.
const HOARDER_SHARE: f64 = 0.35;

impl Gen {
    /// Whether importing `name` into `ns` now would rewrite its row at
    /// another token fee, which halts the original (`bns_rules::engine::Halt`) and so
    /// ends the run. Left out but for one name in 16 (by the name, not by
    /// attempt). Reached where an STX namespace's prices change: at an
    /// epoch boundary, or revealed again with other prices.
    fn import_fee_halts(&self, ns: &NamespaceRec, name: &str) -> bool {
        let b = self.block();
        let Some(old) = self.cb.engine.db.get_name(&self.rules, name, b, true) else {
            return false;
        };
        let fee = if ns.version == PAY_WITH_STACKS {
            name_price(&self.rules, ns, label_of(name), b)
                .to_long()
                .to_string()
        } else {
            "0".to_string()
        };
        old.token_fee != fee && name.bytes().map(u32::from).sum::<u32>() % 16 != 0
    }

    /// The import keyring's five children of `revealer`, as our keys.
    fn keyring_keys(&mut self, revealer: KeyId) -> Vec<KeyId> {
        if let Some(k) = self.keyrings.get(&revealer) {
            return k.clone();
        }
        let secret = self.cb.wallet.key(revealer).secret();
        let size = self.rules.name_import_keyring_size;
        let keys: Vec<KeyId> = (0..size)
            .map(|i| {
                let sk = keyring_child_secret(&self.cb.wallet.secp, secret, i);
                let key = Key::new(&self.cb.wallet.secp, KeyKind::P2pkh, vec![sk]);
                self.cb.wallet.add(key)
            })
            .collect();
        self.keyrings.insert(revealer, keys.clone());
        keys
    }

    pub fn name_import(&mut self) -> bool {
        let revealed = self.revealed_namespaces();
        let ready = self.ready_namespaces();
        let into_ready = revealed.is_empty() || self.rng.random_bool(0.08);
        let ns = if into_ready {
            ready.choose(&mut self.rng).cloned()
        } else {
            revealed.choose(&mut self.rng).cloned()
        };
        let Some(ns) = ns else { return false };
        let Some(revealer) = self.owner_hex(&ns.recipient) else {
            return false;
        };
        let id = ns.namespace_id.clone();
        let single_key = matches!(
            self.cb.wallet.key(revealer).kind,
            KeyKind::P2pkh | KeyKind::P2pkhUncompressed
        );
        let ring_built =
            self.cb.engine.db.keyrings.contains_key(&id) || self.importing.contains(&id);
        let mut variant = "from-the-revealer";
        let roll = self.rng.random_range(0..100);
        let sender = if !single_key {
            variant = "multisig-revealer";
            revealer
        } else if roll < 5 {
            variant = "multisig-sender";
            self.multisig
        } else if roll < 15 {
            variant = "outsider";
            self.other_user(revealer)
        } else if (ring_built && roll < 65) || (!ring_built && roll < 22) {
            variant = if ring_built {
                "keyring-child"
            } else {
                "keyring-child-before-first-import"
            };
            let ring = self.keyring_keys(revealer);
            *ring.choose(&mut self.rng).expect("a keyring")
        } else {
            revealer
        };
        let sender_address = self.cb.wallet.address(sender);
        let allowed = match self.cb.engine.db.keyrings.get(&id) {
            Some(ring) => ring.contains(&sender_address),
            None if self.importing.contains(&id) => {
                sender == revealer
                    || self
                        .keyrings
                        .get(&revealer)
                        .is_some_and(|r| r.contains(&sender))
            }
            None => sender == revealer,
        };
        let readied = self.readying.contains(&id);
        let mut expect =
            if !readied && !into_ready && single_key && allowed && sender != self.multisig {
                Expect::Accept
            } else {
                Expect::Reject
            };
        if into_ready {
            variant = "into-a-ready-namespace";
        }
        let mut existing: Vec<String> = self
            .cb
            .engine
            .db
            .names()
            .map(|r| r.name.clone())
            .filter(|n| n.ends_with(&format!(".{id}")))
            .collect();
        // the state's maps iterate in a random order; the seed alone must
        // decide the chain
        existing.sort();
        let mut name = match existing.choose(&mut self.rng) {
            Some(n) if self.rng.random_bool(0.15) => n.clone(),
            _ => format!("{}.{id}", self.label(36 - id.len())),
        };
        // An import over an existing name in the block where the reveal
        // expires halts the original (`bns_rules::engine::Halt`), which ends the run:
        // mostly import a new name then. Only short test timers get here.
        let expires_now =
            !ns.is_ready() && ns.reveal_block + self.rules.namespace_reveal_expire == self.block();
        if expires_now && existing.contains(&name) && self.rng.random_bool(0.8) {
            name = format!("{}.{id}", self.label(36 - id.len()));
        }
        if self.import_fee_halts(&ns, &name) {
            name = format!("{}.{id}", self.label(36 - id.len()));
        }
        let hoarder = self.users[0];
        let recipient = if self.rng.random_bool(HOARDER_SHARE) && self.names_owned(hoarder) < 27 {
            hoarder
        } else if self.rng.random_bool(0.05) {
            self.multisig
        } else {
            self.pick_user()
        };
        let vh: [u8; 20] = self.rng.random();
        let mut p2sh_carrier = false;
        match self.rng.random_range(0..100) {
            0..=3 => {
                name = name.to_uppercase();
                variant = "invalid-name";
                expect = Expect::Drop;
            }
            4..=7 => {
                p2sh_carrier = true;
                variant = "p2sh-hash-carrier";
            }
            8 | 9 => {
                // one character more than a name may have
                let label: String = (0..37 - id.len()).map(|_| 'x').collect();
                name = format!("{label}.{id}");
                variant = "38-character-name";
                expect = Expect::Drop;
            }
            _ => {}
        }
        if !self.ensure(sender, 2 * DUST) {
            return false;
        }
        let mut spend = ops::import_tx(sender, &name, self.cb.wallet.script(recipient), vh);
        if p2sh_carrier {
            let script = bitcoin::ScriptBuf::new_p2sh(
                &<bitcoin::ScriptHash as bitcoin::hashes::Hash>::from_byte_array(vh),
            );
            spend.outs[2] = Out::Pay(script, DUST);
        }
        if let Some((v, e)) = self.mutate(&mut spend, expect) {
            variant = v;
            expect = e;
        }
        let expect = self.touch(&name, expect);
        if self.emit(spend, "NAME_IMPORT", variant, expect).is_none() {
            return false;
        }
        if sender == revealer && !into_ready && single_key && expect != Expect::Drop {
            self.importing.insert(id);
        }
        if expect == Expect::Accept && !expires_now && self.rng.random_bool(0.08) {
            // imported again in the same block, with another hash: imports
            // never collide, the later one overwrites
            let vh: [u8; 20] = self.rng.random();
            let to = self.cb.wallet.script(recipient);
            let again = ops::import_tx(sender, &name, to, vh);
            let expect = self.touch(&name, Expect::Accept);
            self.emit(again, "NAME_IMPORT", "twice-in-one-block", expect);
        }
        true
    }
}
