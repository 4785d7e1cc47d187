//! The chain path against a real ElectrumX over TCP: our regtest chain is
//! served through the bitcoind-compatible RPC, ElectrumX indexes it, and the
//! Electrum backend's answers pass header and merkle verification.

use crate::common::process;
use atlas_testkit::electrumx;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atlas_chain::backend::{ChainBackend, VerifiedChain};
use atlas_chain::electrum::ElectrumBackend;
use atlas_core::zonefile::Hash160;
use atlas_testkit::regtest::announced_hash;
use atlas_testkit::regtest::{COINBASE_MATURITY, RegtestChain};
use atlas_testkit::rpc;
use bitcoin::Network;
use bns_rules::hashing::hash128;
use electrumx::ElectrumX;

fn update(chain: &mut RegtestChain, name: &str, zonefile: &[u8]) -> (bitcoin::Txid, Hash160) {
    let hash = Hash160::of(zonefile);
    let mut payload = b"id+".to_vec();
    payload.extend_from_slice(&hash128(
        format!("{name}00000000000000000000000000000000").as_bytes(),
    ));
    payload.extend_from_slice(&hash.0);
    let tx = chain.bns_tx(&payload, vec![]).expect("spendable coins");
    let txid = tx.compute_txid();
    chain.mine(vec![tx]);
    (txid, hash)
}

/// Polls the server's tip: ElectrumX offers no other signal that it caught up.
fn wait_tip(backend: &mut ElectrumBackend, height: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.tip_height().unwrap() < height {
        assert!(
            Instant::now() < deadline,
            "ElectrumX did not reach height {height}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Serves `chain` over our bitcoind RPC and starts an ElectrumX that has indexed it.
async fn serve_through_electrumx(
    chain: RegtestChain,
    dir: &std::path::Path,
) -> (ElectrumX, tokio::task::JoinHandle<()>) {
    let chain = Arc::new(Mutex::new(chain));
    let (addr, rpc) = rpc::serve("127.0.0.1:0".parse().unwrap(), chain, "atlas", "atlas")
        .await
        .unwrap();
    let db = dir.join("electrumx");
    let daemon_url = format!("http://atlas:atlas@{addr}/");
    let ex = tokio::task::spawn_blocking(move || ElectrumX::start(&daemon_url, &db))
        .await
        .unwrap();
    (ex, rpc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn electrumx_indexes_our_chain_and_its_answers_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = RegtestChain::new();
    chain.mine_empty(COINBASE_MATURITY + 2);
    let (txid1, hash1) = update(&mut chain, "alice.id", b"$ORIGIN alice.id\n$TTL 3600\n");
    chain.mine_empty(3);
    let miner = chain.miner_script();
    let chain = Arc::new(Mutex::new(chain));
    let (addr, _rpc) = rpc::serve(
        "127.0.0.1:0".parse().unwrap(),
        chain.clone(),
        "atlas",
        "atlas",
    )
    .await
    .unwrap();
    let daemon_url = format!("http://atlas:atlas@{addr}/");
    let db = dir.path().join("electrumx");

    let chain2 = chain.clone();
    tokio::task::spawn_blocking(move || {
        let ex = ElectrumX::start(&daemon_url, &db);
        let mut backend = ElectrumBackend::connect(&ex.url, Duration::from_secs(20)).unwrap();
        let height = chain2.lock().unwrap().height() as u64;
        wait_tip(&mut backend, height);

        let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
        let mut verified = VerifiedChain::new(Network::Regtest, genesis, 0);
        assert_eq!(verified.sync(&mut backend).unwrap(), height);

        // Discovery through the sender's script history, then proof.
        let history = backend.script_history(&miner).unwrap();
        let (_, h1) = *history
            .iter()
            .find(|(t, _)| *t == txid1)
            .expect("the update is in the sender's history");
        let (tx, _) = verified.verified_tx(&mut backend, &txid1, h1).unwrap();
        assert_eq!(announced_hash(&chain2.lock().unwrap(), &tx), Some(hash1));

        // New blocks arrive; ElectrumX follows; so do we.
        let (txid2, hash2) = update(&mut chain2.lock().unwrap(), "bob.id", b"$ORIGIN bob.id\n");
        chain2.lock().unwrap().mine_empty(1);
        let height = chain2.lock().unwrap().height() as u64;
        wait_tip(&mut backend, height);
        assert_eq!(verified.sync(&mut backend).unwrap(), height);
        let (_, h2) = *backend
            .script_history(&miner)
            .unwrap()
            .iter()
            .find(|(t, _)| *t == txid2)
            .expect("the second update is indexed");
        let (tx, _) = verified.verified_tx(&mut backend, &txid2, h2).unwrap();
        assert_eq!(announced_hash(&chain2.lock().unwrap(), &tx), Some(hash2));
        drop(ex);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_registered_and_updated_through_electrumx_replicate_on_three_nodes() {
    use atlas_chain::follower::Follower;
    use atlas_chain::source::{ChainSource, Wake};
    use atlas_node::net::{self, NodeConfig};

    let dir = tempfile::tempdir().unwrap();
    let first = b"$ORIGIN carol.id\n$TTL 3600\n".to_vec();
    let zonefile = b"$ORIGIN carol.id\n$TTL 3600\n_http._tcp\tIN\tURI\t10\t1\t\"https://example.com/carol.json\"".to_vec();
    let hash = Hash160::of(&zonefile);
    // A ready namespace, a name preordered and registered (epoch 1:
    // registrations carry no zone-file hash), then updated twice.
    let mut chain = RegtestChain::new();
    chain.mine_empty(COINBASE_MATURITY + 1);
    for op in [
        RegtestChain::namespace_preorder,
        RegtestChain::namespace_reveal,
        RegtestChain::namespace_ready,
    ] {
        let tx = op(&mut chain, "id");
        chain.mine(vec![tx]);
    }
    let tx = chain.name_preorder("carol.id");
    chain.mine(vec![tx]);
    let tx = chain.name_register("carol.id", None);
    chain.mine(vec![tx]);
    // Each update names carol.id through the tip's consensus hash, computed
    // by the same rules the nodes apply.
    for z in [Hash160::of(&first), hash] {
        let tx = chain.name_update("carol.id", z);
        chain.mine(vec![tx]);
    }
    chain.mine_empty(2);
    let genesis = chain.block(0).unwrap().header;
    let (ex, _rpc) = serve_through_electrumx(chain, dir.path()).await;

    let mut nodes: Vec<atlas_node::net::Node> = Vec::new();
    for i in 0..3 {
        let mut cfg = NodeConfig::new(dir.path().join(format!("node-{i}")));
        if let Some(first) = nodes.first() {
            let s = first
                .handle
                .wait_for(|s| !s.listen_addrs.is_empty())
                .await
                .unwrap();
            cfg.seeds = vec![(first.handle.peer_id, s.listen_addrs[0].parse().unwrap())];
        }
        let source = ChainSource {
            backends: vec![Box::new(ElectrumBackend::new(
                &ex.url,
                Duration::from_secs(20),
            ))],
            follower: Follower::new(Network::Regtest, genesis, 1, 3, []),
            network: Network::Regtest,
            poll: Duration::from_millis(500),
            wake: Arc::new(Wake::default()),
        };
        nodes.push(net::spawn(cfg, Box::new(source)).await.unwrap());
    }
    for n in &nodes {
        tokio::time::timeout(
            Duration::from_secs(60),
            n.handle.wait_for(|s| s.announced == 2),
        )
        .await
        .expect("each node learns both updates through ElectrumX")
        .unwrap();
        assert_eq!(
            n.handle.store.announcements().unwrap(),
            vec![Hash160::of(&first), hash],
            "in chain order"
        );
    }
    nodes[0]
        .handle
        .put_zonefile(zonefile.clone().into())
        .await
        .unwrap();
    for n in &nodes[1..] {
        tokio::time::timeout(
            Duration::from_secs(60),
            n.handle.wait_for(|s| s.present == 1),
        )
        .await
        .expect("the zone file replicates")
        .unwrap();
        assert_eq!(
            n.handle
                .store
                .get_zonefile(&hash)
                .unwrap()
                .unwrap()
                .as_ref(),
            zonefile.as_slice()
        );
    }
    for n in nodes {
        n.shutdown().await;
    }
    tokio::task::spawn_blocking(move || drop(ex)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atlas_node_binary_follows_electrumx_from_its_config() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut chain = RegtestChain::new();
    chain.setup_import_namespace("id");
    let hashes: Vec<Hash160> = (0..3)
        .map(|i| Hash160::of(format!("$ORIGIN d{i}.id\n").as_bytes()))
        .collect();
    let txs = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| chain.name_import(&format!("d{i}.id"), *h))
        .collect();
    chain.mine(txs);
    chain.mine_empty(3);
    let (ex, _rpc) = serve_through_electrumx(chain, dir.path()).await;

    let api_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n[chain]\nelectrum = [\"tcp://127.0.0.1:1\", \"{}\"]\nnetwork = \"regtest\"\nconfirmations = 3\npoll_secs = 1\n",
            dir.path().join("node").display().to_string(),
            ex.url
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_atlas"))
        .args(["node", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The binary is an external process: its status endpoint is what we can watch.
    let api = format!("http://127.0.0.1:{api_port}/v1/status");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(r) = atlas_node::api::client::get(&api).await
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.body)
            && v["announced"] == 3
        {
            break v;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the node did not learn 3 announcements from ElectrumX");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["chain"]["network"], "regtest");
    assert_eq!(
        status["chain"]["backend"],
        ex.url.as_str(),
        "the dead first server was failed over"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // Killed mid-run; `atlas reindex` forgets the saved progress and
    // rebuilds the whitelist from the chain.
    let out = Command::new(env!("CARGO_BIN_EXE_atlas"))
        .args(["reindex", "--config", config.to_str().unwrap()])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "reindex failed");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "reindexed: 3 announcements, confirmed to block {}",
            status["chain"]["confirmed_height"]
        )
    );
    let store = atlas_node::store::Store::open(&dir.path().join("node/atlas.redb"), 1).unwrap();
    assert_eq!(store.announcements().unwrap(), hashes);
    tokio::task::spawn_blocking(move || drop(ex)).await.unwrap();
}

/// Issue 10 finding 9: a node whose only Electrum server is down at start
/// starts anyway, serves, says the chain is unavailable, and follows the
/// chain once the server comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_electrum_server_is_down_at_start_starts_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (api_port, electrum_port) = (free(), free());
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n[chain]\nelectrum = [\"tcp://127.0.0.1:{electrum_port}\"]\nnetwork = \"regtest\"\nconfirmations = 3\npoll_secs = 1\n",
            dir.path().join("node").display().to_string(),
        ),
    )
    .unwrap();
    // Starting at all is the point: the old node exited here.
    let node = process::NodeProcess::start(&config);
    let api = format!("http://127.0.0.1:{api_port}");
    let status = |api: String| async move {
        let r = atlas_node::api::client::get(&format!("{api}/v1/status"))
            .await
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    // The node is an external process: its status endpoint is what we can watch.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(api.clone()).await;
        if s["chain"]["state"] == "unavailable" {
            let err = s["chain"]["last_error"].as_str().unwrap();
            assert!(
                err.contains("no server in chain.electrum answered"),
                "{err}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no unavailable chain in {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = atlas_node::api::client::get(&format!("{api}/v1/zonefiles/{}", Hash160([7; 20])))
        .await
        .unwrap();
    assert_eq!(r.status, 404, "the API serves meanwhile");

    // The server comes up, with three announcements on its chain.
    let mut chain = RegtestChain::new();
    chain.setup_import_namespace("id");
    let hashes: Vec<Hash160> = (0..3)
        .map(|i| Hash160::of(format!("$ORIGIN late{i}.id\n").as_bytes()))
        .collect();
    let txs = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| chain.name_import(&format!("late{i}.id"), *h))
        .collect();
    chain.mine(txs);
    chain.mine_empty(3);
    let chain = Arc::new(Mutex::new(chain));
    let (addr, _rpc) = rpc::serve("127.0.0.1:0".parse().unwrap(), chain, "atlas", "atlas")
        .await
        .unwrap();
    let db = dir.path().join("electrumx");
    let daemon_url = format!("http://atlas:atlas@{addr}/");
    let ex =
        tokio::task::spawn_blocking(move || ElectrumX::start_on(&daemon_url, &db, electrum_port))
            .await
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = status(api.clone()).await;
        if s["announced"] == 3 && s["chain"]["state"] == "following" {
            break;
        }
        assert!(Instant::now() < deadline, "not caught up: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.kill();
    tokio::task::spawn_blocking(move || drop(ex)).await.unwrap();
}
