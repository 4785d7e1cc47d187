//! The follower against the in-process regtest chain: a namespace and names
//! scripted as real signed BNS transactions, discovered from the burn address.

use std::sync::{Arc, Mutex};

use bitcoin::Network;

use bitcoin::block::Header;

use atlas_chain::backend::{BackendError, ChainBackend};
use atlas_chain::follower::Follower;
use atlas_chain::{ChainStore, MemoryChainStore};
use atlas_core::zonefile::Hash160;
use atlas_testkit::backend::RegtestBackend;
use atlas_testkit::regtest::{COINBASE_MATURITY, RegtestChain};

/// The scripted chain; operations come from `atlas_testkit::builder`.
struct Script {
    chain: RegtestChain,
}

fn zf(i: u8) -> Hash160 {
    Hash160::of(format!("$ORIGIN z{i}.id\n").as_bytes())
}

/// A chain with namespace "imp" (revealed, for imports) and "id" (ready),
/// one import, and one registration followed by an update (epoch 1:
/// registrations carry no zone-file hash). Returns the script builder and
/// the height the update is at.
fn scripted() -> (Script, u64) {
    let mut s = Script {
        chain: RegtestChain::new(),
    };
    s.chain.mine_empty(COINBASE_MATURITY + 8);
    let c = &mut s.chain;
    let a = c.namespace_preorder("id");
    let b = c.namespace_preorder("imp");
    c.mine(vec![a, b]);
    let a = c.namespace_reveal("id");
    let b = c.namespace_reveal("imp");
    c.mine(vec![a, b]);
    let a = c.namespace_ready("id");
    let b = c.name_import("alice.imp", zf(1));
    c.mine(vec![a, b]);
    let a = c.name_preorder("bob.id");
    c.mine(vec![a]);
    let a = c.name_register("bob.id", None);
    c.mine(vec![a]);
    let a = c.name_update("bob.id", zf(2));
    c.mine(vec![a]);
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
    assert_eq!(hashes(&f), vec![zf(1), zf(2)], "rejected: {:?}", f.rejected);
    assert_eq!(f.announcements()[0].name, "alice.imp");
    assert_eq!(f.announcements()[1].name, "bob.id");

    // An update naming the name through a recent consensus hash; one
    // quoting a hash that no block has is refused.
    let good = s.chain.name_update("bob.id", zf(3));
    let stale = s.chain.name_update_quoting("bob.id", [9; 16], zf(4));
    s.chain.mine(vec![good, stale]);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![zf(1), zf(2), zf(3)]);
    assert_eq!(
        f.rejected.len(),
        1,
        "the update with an unknown consensus hash is refused"
    );
    // The follower's consensus hash is the one the builder's rules compute.
    assert_eq!(
        f.consensus_hash(s.chain.height() as u64),
        Some(s.chain.tip_consensus_hash())
    );

    // Registering a taken name, or without a preorder, is refused.
    let again = s.chain.name_register("bob.id", None);
    s.chain.mine(vec![again]);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f).len(), 3);
    assert_eq!(f.rejected.len(), 2);
}

#[test]
fn only_confirmed_operations_count() {
    let (mut s, reg_height) = scripted();
    let (mut f, mut backend) = follow(&s, 4);
    poll(&mut f, &mut backend, &s);
    assert_eq!(
        hashes(&f),
        vec![zf(1)],
        "the import has 4 of 4 confirmations"
    );
    s.chain.mine_empty(2);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![zf(1)], "the update has 3 of 4");
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

#[test]
fn renewals_announce_and_transfers_move_ownership() {
    let (mut s, _) = scripted();
    let (mut f, mut backend) = follow(&s, 1);
    poll(&mut f, &mut backend, &s);
    // In epoch 1 a renewal carries no hash; it re-announces the current one.
    let renew = s.chain.name_renew("bob.id", None);
    s.chain.mine(vec![renew]);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![zf(1), zf(2), zf(2)], "{:?}", f.rejected);

    let stranger = bitcoin::ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_raw_hash(
        bitcoin::hashes::Hash::from_byte_array([5; 20]),
    ));
    let give = s.chain.name_transfer("bob.id", false, stranger);
    s.chain.mine(vec![give]);
    poll(&mut f, &mut backend, &s);
    // The miner no longer owns bob.id: its update and renewal are refused.
    let update = s.chain.name_update("bob.id", zf(7));
    let renew = s.chain.name_renew("bob.id", None);
    s.chain.mine(vec![update, renew]);
    poll(&mut f, &mut backend, &s);
    assert_eq!(hashes(&f), vec![zf(1), zf(2), zf(2)]);
    let reasons: Vec<&str> = f.rejected.iter().map(|(_, r)| *r).collect();
    assert_eq!(
        reasons,
        vec![
            "no name of the sender matches the name consensus hash",
            // Before epoch 3 a renewal's recipient must own the name too.
            "name is not owned by the recipient"
        ]
    );
}

/// Counts what a follower asks of its server.
struct Counting {
    inner: RegtestBackend,
    transactions: usize,
    proofs: usize,
    headers: usize,
}

impl ChainBackend for Counting {
    fn name(&self) -> String {
        "counting".into()
    }
    fn tip_height(&mut self) -> Result<u64, BackendError> {
        self.inner.tip_height()
    }
    fn headers(&mut self, from: u64, count: usize) -> Result<Vec<Header>, BackendError> {
        let h = self.inner.headers(from, count)?;
        self.headers += h.len();
        Ok(h)
    }
    fn script_history(
        &mut self,
        script: &bitcoin::Script,
    ) -> Result<Vec<(bitcoin::Txid, u64)>, BackendError> {
        self.inner.script_history(script)
    }
    fn transaction(&mut self, txid: &bitcoin::Txid) -> Result<bitcoin::Transaction, BackendError> {
        self.transactions += 1;
        self.inner.transaction(txid)
    }
    fn merkle_proof(
        &mut self,
        txid: &bitcoin::Txid,
        height: u64,
    ) -> Result<(Vec<[u8; 32]>, usize), BackendError> {
        self.proofs += 1;
        self.inner.merkle_proof(txid, height)
    }
}

#[test]
fn saved_progress_resumes_without_rereading_and_survives_reorgs() {
    let (mut s, reg_height) = scripted();
    s.chain.mine_empty(6);
    let genesis = s.chain.block(0).unwrap().header;
    let fresh = || Follower::new(Network::Regtest, genesis, 1, 4, []);
    let counting = |s: &Script| Counting {
        inner: RegtestBackend {
            chain: Arc::new(Mutex::new(s.chain.clone())),
        },
        transactions: 0,
        proofs: 0,
        headers: 0,
    };
    let mut f = fresh();
    let mut b = counting(&s);
    f.poll(&mut b).unwrap();
    assert!(b.transactions > 0 && b.proofs > 0);
    let store = MemoryChainStore::default();
    store.save_chain(&f.identity(), &f.take_delta()).unwrap();
    assert!(f.take_delta().is_empty(), "nothing new after a save");

    // A restart: everything comes from the store; the server is asked only
    // for its tip, our tip header and its script histories.
    let mut g = fresh();
    g.restore(store.load_chain(&g.identity()).unwrap().unwrap())
        .unwrap();
    let mut b = counting(&s);
    g.poll(&mut b).unwrap();
    assert_eq!((b.transactions, b.proofs, b.headers), (0, 0, 1));
    assert_eq!(hashes(&g), vec![zf(1), zf(2)]);
    assert_eq!(g.consensus_hash(s.chain.height() as u64 - 3), {
        f.consensus_hash(s.chain.height() as u64 - 3)
    });

    // A deep reorg removes the registration; the saved progress follows,
    // and another restart sees the same.
    s.chain.truncate(reg_height as usize - 1);
    s.chain.mine_empty(9);
    g.poll(&mut counting(&s)).unwrap();
    assert_eq!(hashes(&g), vec![zf(1)]);
    store.save_chain(&g.identity(), &g.take_delta()).unwrap();
    let mut h = fresh();
    h.restore(store.load_chain(&h.identity()).unwrap().unwrap())
        .unwrap();
    let mut b = counting(&s);
    h.poll(&mut b).unwrap();
    assert_eq!((b.transactions, b.proofs), (0, 0));
    assert_eq!(hashes(&h), vec![zf(1)]);

    // Progress made from another checkpoint is not loaded.
    let other = Follower::new(Network::Regtest, s.chain.block(1).unwrap().header, 2, 4, []);
    assert_eq!(store.load_chain(&other.identity()).unwrap(), None);
}
