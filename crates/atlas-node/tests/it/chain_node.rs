//! Nodes whose whitelist comes from the chain follower: real signed BNS
//! transactions in real blocks, discovered from the burn address, verified,
//! confirmed, and fed to the node; reorgs roll the node back; dead and lying
//! servers are survived.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use atlas_chain::backend::{BackendError, ChainBackend};
use atlas_chain::electrum::ElectrumBackend;
use atlas_chain::follower::Follower;
use atlas_chain::source::{ChainSource, Wake};
use atlas_core::zonefile::Hash160;
use atlas_node::net::{self, Node, NodeConfig};
use atlas_testkit::backend::RegtestBackend;
use atlas_testkit::regtest::RegtestChain;
use bitcoin::block::Header;
use bitcoin::{Network, Script, Transaction, Txid};
use common::*;

const CONFIRMATIONS: u64 = 2;

fn source(
    chain: &Arc<Mutex<RegtestChain>>,
    wake: &Arc<Wake>,
    backends: Vec<Box<dyn ChainBackend>>,
) -> ChainSource {
    let genesis = chain.lock().unwrap().block(0).unwrap().header;
    ChainSource {
        backends,
        follower: Follower::new(Network::Regtest, genesis, 1, CONFIRMATIONS, []),
        network: Network::Regtest,
        poll: Duration::from_secs(30),
        wake: wake.clone(),
    }
}

fn honest(chain: &Arc<Mutex<RegtestChain>>) -> Box<dyn ChainBackend> {
    Box::new(RegtestBackend {
        chain: chain.clone(),
    })
}

/// Imports one name per file in a block, then confirms it; returns its height.
fn import(
    chain: &Arc<Mutex<RegtestChain>>,
    wake: &Wake,
    files: &[(Hash160, Vec<u8>)],
    first: usize,
) -> usize {
    let mut c = chain.lock().unwrap();
    let txs: Vec<Transaction> = files
        .iter()
        .enumerate()
        .map(|(i, (h, _))| c.name_import(&format!("n{}.id", first + i), *h))
        .collect();
    c.mine(txs);
    let height = c.height();
    c.mine_empty(CONFIRMATIONS as usize - 1);
    drop(c);
    wake.notify();
    height
}

async fn node(dir: &std::path::Path, name: &str, src: ChainSource, seed: Option<&Node>) -> Node {
    let mut cfg = NodeConfig::new(dir.join(name));
    cfg.core = test_core();
    if let Some(s) = seed {
        let status = wait(&s.handle, "listening", Duration::from_secs(10), |s| {
            !s.listen_addrs.is_empty()
        })
        .await;
        cfg.seeds = vec![(s.handle.peer_id, status.listen_addrs[0].parse().unwrap())];
    }
    net::spawn(cfg, Box::new(src)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_follow_the_chain_and_replicate_what_it_announces() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(Mutex::new(RegtestChain::new()));
    chain.lock().unwrap().setup_import_namespace("id");
    let wake = Arc::new(Wake::default());
    let files = zonefiles(40);
    import(&chain, &wake, &files[..30], 0);

    let a = node(
        dir.path(),
        "a",
        source(&chain, &wake, vec![honest(&chain)]),
        None,
    )
    .await;
    // b's first server is dead: it fails over to the next one.
    let dead: Box<dyn ChainBackend> = Box::new(ElectrumBackend::new(
        "tcp://127.0.0.1:9",
        Duration::from_secs(1),
    ));
    let b = node(
        dir.path(),
        "b",
        source(&chain, &wake, vec![dead, honest(&chain)]),
        Some(&a),
    )
    .await;
    for n in [&a, &b] {
        let s = wait(
            &n.handle,
            "whitelist from the chain",
            Duration::from_secs(60),
            |s| s.announced == 30,
        )
        .await;
        assert_eq!(s.chain.backend, "regtest");
        assert_eq!(s.chain.network, "regtest");
        assert_eq!(s.chain.confirmed_height + CONFIRMATIONS - 1, s.chain.height);
        assert_eq!(s.chain.consensus_hash.len(), 32);
    }
    for (_, bytes) in &files[..30] {
        a.handle.put_zonefile(bytes.clone().into()).await.unwrap();
    }
    wait(
        &b.handle,
        "b replicates a's files",
        Duration::from_secs(60),
        |s| s.present == 30,
    )
    .await;

    // Ten more names; posted at b this time.
    import(&chain, &wake, &files[30..], 30);
    for n in [&a, &b] {
        wait(
            &n.handle,
            "new announcements",
            Duration::from_secs(60),
            |s| s.announced == 40,
        )
        .await;
    }
    for (_, bytes) in &files[30..] {
        b.handle.put_zonefile(bytes.clone().into()).await.unwrap();
    }
    wait(
        &a.handle,
        "a replicates b's files",
        Duration::from_secs(60),
        |s| s.present == 40,
    )
    .await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_below_the_confirmation_depth_rolls_the_node_back() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(Mutex::new(RegtestChain::new()));
    chain.lock().unwrap().setup_import_namespace("id");
    let wake = Arc::new(Wake::default());
    let files = zonefiles(12);
    import(&chain, &wake, &files[..8], 0);
    let second = import(&chain, &wake, &files[8..], 8);
    let n = node(
        dir.path(),
        "n",
        source(&chain, &wake, vec![honest(&chain)]),
        None,
    )
    .await;
    wait(&n.handle, "both batches", Duration::from_secs(60), |s| {
        s.announced == 12
    })
    .await;
    {
        let mut c = chain.lock().unwrap();
        c.truncate(second - 1);
        c.mine_empty(4);
    }
    wake.notify();
    wait(
        &n.handle,
        "the second batch is rolled back",
        Duration::from_secs(60),
        |s| s.announced == 8,
    )
    .await;
    n.shutdown().await;
}

/// A server that sends a transaction whose bytes differ from its id.
struct Liar(RegtestBackend);

impl ChainBackend for Liar {
    fn name(&self) -> String {
        "liar".into()
    }
    fn tip_height(&mut self) -> Result<u64, BackendError> {
        // The same tip as the honest server: as first in the list, it is used first.
        self.0.tip_height()
    }
    fn headers(&mut self, from: u64, count: usize) -> Result<Vec<Header>, BackendError> {
        self.0.headers(from, count)
    }
    fn script_history(&mut self, script: &Script) -> Result<Vec<(Txid, u64)>, BackendError> {
        self.0.script_history(script)
    }
    fn transaction(&mut self, txid: &Txid) -> Result<Transaction, BackendError> {
        let mut tx = self.0.transaction(txid)?;
        tx.lock_time = bitcoin::absolute::LockTime::from_consensus(7);
        Ok(tx)
    }
    fn merkle_proof(
        &mut self,
        txid: &Txid,
        height: u64,
    ) -> Result<(Vec<[u8; 32]>, usize), BackendError> {
        self.0.merkle_proof(txid, height)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_server_is_dropped_and_another_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(Mutex::new(RegtestChain::new()));
    chain.lock().unwrap().setup_import_namespace("id");
    let wake = Arc::new(Wake::default());
    let files = zonefiles(5);
    import(&chain, &wake, &files, 0);
    let liar: Box<dyn ChainBackend> = Box::new(Liar(RegtestBackend {
        chain: chain.clone(),
    }));
    let n = node(
        dir.path(),
        "n",
        source(&chain, &wake, vec![liar, honest(&chain)]),
        None,
    )
    .await;
    wake.notify();
    let s = wait(
        &n.handle,
        "whitelist despite the liar",
        Duration::from_secs(60),
        |s| s.announced == 5,
    )
    .await;
    assert_eq!(s.chain.backend, "regtest", "the honest server serves it");
    n.shutdown().await;
}
