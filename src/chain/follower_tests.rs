//! The follower against the in-process regtest chain: a namespace and names
//! scripted as real signed BNS transactions, discovered from the burn address.

use std::sync::{Arc, Mutex};

use bitcoin::{Network, ScriptBuf};

use super::backend::RegtestBackend;
use super::bns::{hash_name, hash128};
use super::follower::{Follower, burn_script};
use super::regtest::{COINBASE_MATURITY, RegtestChain};
use crate::zonefile::Hash160;

struct Script {
    chain: RegtestChain,
}

impl Script {
    fn miner(&self) -> ScriptBuf {
        self.chain.miner_script()
    }

    fn miner_addr(&self) -> String {
        bitcoin::Address::from_script(&self.miner(), Network::Regtest)
            .unwrap()
            .to_string()
    }

    fn tx(&mut self, payload: Vec<u8>, outputs: Vec<ScriptBuf>) -> bitcoin::Transaction {
        let outs = outputs.into_iter().map(RegtestChain::dust_to).collect();
        self.chain.bns_tx(&payload, outs).expect("coins to spend")
    }

    fn ns_preorder(&mut self, ns: &str) -> bitcoin::Transaction {
        let mut p = b"id*".to_vec();
        p.extend_from_slice(
            &hash_name(ns, self.miner().as_bytes(), &self.miner_addr())
                .unwrap()
                .0,
        );
        p.extend_from_slice(&[0; 16]);
        self.tx(p, vec![burn_script()])
    }

    fn ns_reveal(&mut self, ns: &str) -> bitcoin::Transaction {
        let mut p = b"id&".to_vec();
        p.extend_from_slice(&52595u32.to_be_bytes());
        p.extend_from_slice(&[
            250, 4, 0x65, 0x43, 0x21, 0x11, 0x11, 0x11, 0x11, 0x11, 0xa2, 0, 1,
        ]);
        p.extend_from_slice(ns.as_bytes());
        let m = self.miner();
        self.tx(p, vec![m])
    }

    fn ns_ready(&mut self, ns: &str) -> bitcoin::Transaction {
        self.tx([b"id!.".as_slice(), ns.as_bytes()].concat(), vec![])
    }

    fn preorder(&mut self, name: &str) -> bitcoin::Transaction {
        let mut p = b"id?".to_vec();
        p.extend_from_slice(
            &hash_name(name, self.miner().as_bytes(), &self.miner_addr())
                .unwrap()
                .0,
        );
        p.extend_from_slice(&[0; 16]);
        self.tx(p, vec![burn_script()])
    }

    fn register(&mut self, name: &str, zonefile: Hash160) -> bitcoin::Transaction {
        let mut p = b"id:".to_vec();
        let mut padded = name.as_bytes().to_vec();
        padded.resize(37, 0);
        p.extend_from_slice(&padded);
        p.extend_from_slice(&zonefile.0);
        let m = self.miner();
        self.tx(p, vec![m])
    }

    fn import(&mut self, name: &str, zonefile: Hash160) -> bitcoin::Transaction {
        let carrier = ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_raw_hash(
            bitcoin::hashes::hash160::Hash::from_byte_array(zonefile.0),
        ));
        let m = self.miner();
        self.tx(
            [b"id;".as_slice(), name.as_bytes()].concat(),
            vec![m, carrier],
        )
    }

    fn update(
        &mut self,
        name: &str,
        consensus: [u8; 16],
        zonefile: Hash160,
    ) -> bitcoin::Transaction {
        let mut p = b"id+".to_vec();
        p.extend_from_slice(&hash128(
            format!("{name}{}", hex::encode(consensus)).as_bytes(),
        ));
        p.extend_from_slice(&zonefile.0);
        self.tx(p, vec![])
    }
}

use bitcoin::hashes::Hash;

fn zf(i: u8) -> Hash160 {
    Hash160::of(format!("$ORIGIN z{i}.id\n").as_bytes())
}

/// A chain with namespace "imp" (revealed, for imports) and "id" (ready),
/// one import and one registration. Returns the script builder and the
/// height the registration is at.
fn scripted() -> (Script, u64) {
    let mut s = Script {
        chain: RegtestChain::new(),
    };
    s.chain.mine_empty(COINBASE_MATURITY + 8);
    let a = s.ns_preorder("id");
    let b = s.ns_preorder("imp");
    s.chain.mine(vec![a, b]);
    let a = s.ns_reveal("id");
    let b = s.ns_reveal("imp");
    s.chain.mine(vec![a, b]);
    let a = s.ns_ready("id");
    let b = s.import("alice.imp", zf(1));
    s.chain.mine(vec![a, b]);
    let a = s.preorder("bob.id");
    s.chain.mine(vec![a]);
    let a = s.register("bob.id", zf(2));
    s.chain.mine(vec![a]);
    let h = s.chain.height() as u64;
    (s, h)
}

fn follow(s: &Script, confirmations: u64) -> (Follower, RegtestBackend) {
    let backend = RegtestBackend {
        chain: Arc::new(Mutex::new(RegtestChain::new())),
    };
    let genesis = s.chain.block(0).unwrap().header;
    (
        Follower::new(Network::Regtest, genesis, 1, confirmations, []),
        backend,
    )
}

fn hashes(f: &Follower) -> Vec<Hash160> {
    f.announcements().iter().map(|a| a.zonefile_hash).collect()
}

/// Runs the follower against the chain as it is now.
fn poll(f: &mut Follower, backend: &mut RegtestBackend, s: &Script) {
    *backend.chain.lock().unwrap() = s.chain.clone();
    f.poll(backend).unwrap();
}

#[test]
fn imports_registrations_and_updates_become_announcements_in_chain_order() {
    let (mut s, _) = scripted();
    let (mut f, mut backend) = follow(&s, 1);
    poll(&mut f, &mut backend, &s);
    assert_eq!(
        hashes(&f),
        vec![zf(1), zf(2)],
        "rejected: {:?}",
        f.state.rejected
    );
    assert_eq!(f.announcements()[0].name, "alice.imp");
    assert_eq!(f.announcements()[1].name, "bob.id");

    // An update naming the name through a recent consensus hash.
    let ch = f.state.consensus_hash(s.chain.height() as u64);
    let good = s.update("bob.id", ch, zf(3));
    let stale = s.update("bob.id", [9; 16], zf(4));
    s.chain.mine(vec![good, stale]);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![zf(1), zf(2), zf(3)]);
    assert_eq!(
        f.state.rejected.len(),
        1,
        "the update with an unknown consensus hash is refused"
    );

    // Registering a taken name, or without a preorder, is refused.
    let again = s.register("bob.id", zf(5));
    s.chain.mine(vec![again]);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f).len(), 3);
}

#[test]
fn only_confirmed_operations_count() {
    let (mut s, reg_height) = scripted();
    let (mut f, mut backend) = follow(&s, 4);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![], "the import has 3 of 4 confirmations");
    s.chain.mine_empty(2);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![zf(1)], "the registration has 3 of 4");
    s.chain.mine_empty(1);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![zf(1), zf(2)]);
    assert_eq!(f.announcements()[1].height, reg_height);
}

#[test]
fn reorgs_above_the_confirmation_depth_change_nothing_and_deeper_ones_roll_back() {
    let (mut s, reg_height) = scripted();
    s.chain.mine_empty(6);
    let (mut f, mut backend) = follow(&s, 4);
    poll(&mut f, &mut backend, &s);
    let before = hashes(&f);
    assert_eq!(before, vec![zf(1), zf(2)]);

    // Replace the top 3 blocks (none of them confirmed): nothing changes.
    let tip = s.chain.height();
    s.chain.truncate(tip - 3);
    s.chain.mine_empty(4);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), before);

    // Replace everything from the registration's block: it is gone.
    s.chain.truncate(reg_height as usize - 1);
    s.chain.mine_empty(8);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![zf(1)]);
}
