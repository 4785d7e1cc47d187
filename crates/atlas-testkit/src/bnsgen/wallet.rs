//! Coins of the generator's keys: funded by the miner, spent by signed
//! transactions with any number of inputs (the original checks every
//! input's funding script), each output paying one of our keys kept as a
//! coin of that key (change, dust to a recipient, a same-block parent's
//! outputs).

use std::collections::HashMap;

use bitcoin::script::PushBytesBuf;
use bitcoin::secp256k1::{All, Secp256k1, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, Script, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness, absolute,
};

use super::keys::{Key, KeyKind, MINER_SECRET};
use crate::regtest::RegtestChain;

/// An index into the wallet's keys.
pub type KeyId = usize;

/// The miner's key: its coins come from the chain's mature coinbases.
pub const MINER: KeyId = 0;

/// Miner fee per transaction, and the least change worth an output.
pub const FEE: u64 = 10_000;
pub const DUST: u64 = 5_500;

/// One output of a transaction being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// `OP_RETURN <push data>`.
    Data(Vec<u8>),
    /// Any script and value.
    Pay(ScriptBuf, u64),
    /// What the inputs hold beyond the other outputs and the fee.
    Change,
}

/// A transaction to build: input 0 spends a coin of `inputs[0]` (the
/// sender as the original sees it), then one coin of each further key in
/// order, then more of the sender's coins as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub inputs: Vec<KeyId>,
    pub outs: Vec<Out>,
    /// Where `Out::Change` goes; the sender when None.
    pub change_to: Option<ScriptBuf>,
}

impl Spend {
    pub fn new(sender: KeyId, outs: Vec<Out>) -> Spend {
        Spend {
            inputs: vec![sender],
            outs,
            change_to: None,
        }
    }
}

pub struct Wallet {
    pub secp: Secp256k1<All>,
    keys: Vec<Key>,
    by_script: HashMap<ScriptBuf, KeyId>,
    coins: Vec<Vec<(OutPoint, u64)>>,
}

impl Default for Wallet {
    fn default() -> Self {
        Self::new()
    }
}

impl Wallet {
    /// A wallet holding the miner's key (id [`MINER`]).
    pub fn new() -> Wallet {
        let secp = Secp256k1::new();
        let miner = SecretKey::from_slice(&MINER_SECRET).expect("a valid secret");
        let mut w = Wallet {
            keys: Vec::new(),
            by_script: HashMap::new(),
            coins: Vec::new(),
            secp,
        };
        let key = Key::new(&w.secp, KeyKind::P2pkh, vec![miner]);
        w.add(key);
        w
    }

    pub fn add(&mut self, key: Key) -> KeyId {
        let id = self.keys.len();
        self.by_script.entry(key.script.clone()).or_insert(id);
        self.keys.push(key);
        self.coins.push(Vec::new());
        id
    }

    pub fn key(&self, id: KeyId) -> &Key {
        &self.keys[id]
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn script(&self, id: KeyId) -> ScriptBuf {
        self.keys[id].script.clone()
    }

    pub fn address(&self, id: KeyId) -> String {
        self.keys[id].address.clone()
    }

    /// The key whose script this is.
    pub fn owner_of(&self, script: &Script) -> Option<KeyId> {
        self.by_script.get(script).copied()
    }

    /// What a key holds in confirmed and same-block coins (the miner's
    /// mature coinbases not included).
    pub fn balance(&self, id: KeyId) -> u64 {
        self.coins[id].iter().map(|(_, v)| v).sum()
    }

    /// Picks coins for `spend`; None (and nothing spent) when the keys
    /// cannot pay for it.
    fn select(
        &mut self,
        chain: &mut RegtestChain,
        spend: &Spend,
        need: u64,
        has_change: bool,
    ) -> Option<Vec<(KeyId, OutPoint, u64)>> {
        let sender = *spend.inputs.first()?;
        let mut picked: Vec<(KeyId, OutPoint, u64)> = Vec::new();
        let mut own = self.coins[sender].clone();
        own.sort_by_key(|c| std::cmp::Reverse(c.1));
        // Without a change output, the smallest coin that covers it all, so
        // that no large coin is burnt as fee.
        let first = if has_change || own.is_empty() {
            (!own.is_empty()).then_some(0)
        } else {
            Some(own.iter().rposition(|c| c.1 >= need).unwrap_or(0))
        };
        match first {
            Some(i) => {
                let c = own.remove(i);
                picked.push((sender, c.0, c.1));
            }
            None if sender == MINER => {
                let (op, v) = chain.take_miner_coin(0)?;
                picked.push((MINER, op, v));
            }
            None => return None,
        }
        for &extra in &spend.inputs[1..] {
            let coin = self.coins[extra]
                .iter()
                .filter(|c| !picked.iter().any(|p| p.1 == c.0))
                .min_by_key(|c| c.1)
                .copied();
            let Some(c) = coin else {
                self.keep_chain_coins(&picked);
                return None;
            };
            picked.push((extra, c.0, c.1));
        }
        let mut total: u64 = picked.iter().map(|p| p.2).sum();
        for c in own {
            if total >= need {
                break;
            }
            if !picked.iter().any(|p| p.1 == c.0) {
                picked.push((sender, c.0, c.1));
                total += c.1;
            }
        }
        while total < need && sender == MINER {
            let Some((op, v)) = chain.take_miner_coin(0) else {
                break;
            };
            picked.push((MINER, op, v));
            total += v;
        }
        if total < need {
            self.keep_chain_coins(&picked);
            return None;
        }
        for (id, op, _) in &picked {
            self.coins[*id].retain(|(o, _)| o != op);
        }
        Some(picked)
    }

    /// Coins taken from the chain's miner outputs are ours from then on.
    fn keep_chain_coins(&mut self, picked: &[(KeyId, OutPoint, u64)]) {
        for (id, op, v) in picked {
            if *id == MINER && !self.coins[MINER].iter().any(|c| c.0 == *op) {
                self.coins[MINER].push((*op, *v));
            }
        }
    }

    /// Builds and signs `spend`, spending the coins it needs; None when the
    /// keys lack the funds. Outputs paying our keys become their coins.
    pub fn build(&mut self, chain: &mut RegtestChain, spend: &Spend) -> Option<Transaction> {
        let pays: u64 = spend
            .outs
            .iter()
            .map(|o| match o {
                Out::Pay(_, v) => *v,
                _ => 0,
            })
            .sum();
        let has_change = spend.outs.contains(&Out::Change);
        let need = pays + FEE + if has_change { DUST } else { 0 };
        let inputs = self.select(chain, spend, need, has_change)?;
        let total: u64 = inputs.iter().map(|(_, _, v)| v).sum();
        let change_script = spend
            .change_to
            .clone()
            .unwrap_or_else(|| self.script(spend.inputs[0]));
        let output = spend
            .outs
            .iter()
            .map(|o| match o {
                Out::Data(d) => TxOut {
                    value: Amount::ZERO,
                    script_pubkey: ScriptBuf::new_op_return(
                        PushBytesBuf::try_from(d.clone()).expect("a payload fits a push"),
                    ),
                },
                Out::Pay(s, v) => TxOut {
                    value: Amount::from_sat(*v),
                    script_pubkey: s.clone(),
                },
                Out::Change => TxOut {
                    value: Amount::from_sat(total - pays - FEE),
                    script_pubkey: change_script.clone(),
                },
            })
            .collect();
        let mut tx = Transaction {
            version: Version::ONE,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|(_, op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        };
        for (i, (id, _, value)) in inputs.iter().enumerate() {
            let key = self.keys[*id].clone();
            key.sign_input(&self.secp, &mut tx, i, *value);
        }
        let txid = tx.compute_txid();
        for (vout, o) in tx.output.iter().enumerate() {
            if let Some(id) = self.owner_of(&o.script_pubkey)
                && o.value.to_sat() > 0
            {
                self.coins[id].push((OutPoint::new(txid, vout as u32), o.value.to_sat()));
            }
        }
        Some(tx)
    }

    /// A miner payment of `value` to each key listed.
    pub fn fund(
        &mut self,
        chain: &mut RegtestChain,
        payments: &[(KeyId, u64)],
    ) -> Option<Transaction> {
        let mut outs: Vec<Out> = payments
            .iter()
            .map(|(id, v)| Out::Pay(self.script(*id), *v))
            .collect();
        outs.push(Out::Change);
        self.build(chain, &Spend::new(MINER, outs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bnsgen::keys::derive_secret;
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::Message;
    use bitcoin::sighash::{EcdsaSighashType, SighashCache};

    fn sig_of(push: &[u8]) -> bitcoin::secp256k1::ecdsa::Signature {
        bitcoin::ecdsa::Signature::from_slice(push)
            .unwrap()
            .signature
    }

    #[test]
    fn spends_of_every_key_kind_carry_valid_signatures() {
        let mut chain = RegtestChain::new();
        chain.mine_empty(crate::regtest::COINBASE_MATURITY + 1);
        let mut w = Wallet::new();
        let kinds = [
            KeyKind::P2pkh,
            KeyKind::P2pkhUncompressed,
            KeyKind::P2sh2of2,
            KeyKind::P2wpkh,
        ];
        let ids: Vec<KeyId> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let n = if *k == KeyKind::P2sh2of2 { 2 } else { 1 };
                let secrets = (0..n)
                    .map(|j| derive_secret(1, "t", 10 * i as u32 + j))
                    .collect();
                let key = Key::new(&w.secp, *k, secrets);
                w.add(key)
            })
            .collect();
        let pay: Vec<(KeyId, u64)> = ids.iter().map(|id| (*id, 1_000_000)).collect();
        let funding = w.fund(&mut chain, &pay).expect("the miner pays");
        // one input of each kind; change to the first
        let spend = Spend {
            inputs: ids.clone(),
            outs: vec![Out::Data(b"id+".to_vec()), Out::Change],
            change_to: None,
        };
        let tx = w.build(&mut chain, &spend).expect("the keys pay");
        chain.mine(vec![funding.clone(), tx.clone()]);
        assert_eq!(tx.input.len(), 4);
        for (i, id) in ids.iter().enumerate() {
            let key = w.key(*id);
            let prev = &funding.output[tx.input[i].previous_output.vout as usize];
            assert_eq!(
                prev.script_pubkey, key.script,
                "input {i} spends its key's coin"
            );
            let mut cache = SighashCache::new(&tx);
            let all = EcdsaSighashType::All;
            let pushes: Vec<Vec<u8>> = tx.input[i]
                .script_sig
                .instructions()
                .filter_map(|ins| ins.ok()?.push_bytes().map(|p| p.as_bytes().to_vec()))
                .filter(|p| !p.is_empty())
                .collect();
            let (digest, sigs, pubs): ([u8; 32], Vec<Vec<u8>>, Vec<Vec<u8>>) = match key.kind {
                KeyKind::P2wpkh => {
                    let h = cache
                        .p2wpkh_signature_hash(i, &key.script, prev.value, all)
                        .unwrap();
                    let wit: Vec<Vec<u8>> =
                        tx.input[i].witness.iter().map(|x| x.to_vec()).collect();
                    (
                        h.to_byte_array(),
                        vec![wit[0].clone()],
                        vec![wit[1].clone()],
                    )
                }
                KeyKind::P2sh2of2 => {
                    let redeem = bitcoin::ScriptBuf::from_bytes(pushes[2].clone());
                    let h = cache
                        .legacy_signature_hash(i, &redeem, all.to_u32())
                        .unwrap();
                    let keys: Vec<Vec<u8>> = redeem
                        .instructions()
                        .filter_map(|ins| ins.ok()?.push_bytes().map(|p| p.as_bytes().to_vec()))
                        .collect();
                    (h.to_byte_array(), pushes[..2].to_vec(), keys)
                }
                _ => {
                    let h = cache
                        .legacy_signature_hash(i, &key.script, all.to_u32())
                        .unwrap();
                    (
                        h.to_byte_array(),
                        vec![pushes[0].clone()],
                        vec![pushes[1].clone()],
                    )
                }
            };
            for (sig, pk) in sigs.iter().zip(&pubs) {
                let pk = bitcoin::secp256k1::PublicKey::from_slice(pk).unwrap();
                w.secp
                    .verify_ecdsa(&Message::from_digest(digest), &sig_of(sig), &pk)
                    .unwrap_or_else(|e| panic!("{:?} input {i}: {e}", key.kind));
            }
        }
        // the block commits to its witness data
        let block = chain.block(chain.height()).unwrap();
        assert!(block.check_witness_commitment());
    }
}
