//! The original BNS indexer ("the oracle", driven by `oracle/`) run from the
//! tests: the harness reproduces the oracle's recorded verdicts on the shared
//! fixture chains, and reports its verdict on the chains the project builds.

use std::time::Instant;

use atlas_core::zonefile::Hash160;
use atlas_testkit::oracle::{
    OracleReport, OracleRules, fixture_blocks, fixture_report, provision, run_oracle,
};
use atlas_testkit::regtest::RegtestChain;

/// Requires `got` to agree with `want` on everything a follower must
/// reproduce. Timings and warnings are left out: they are not verdicts.
fn assert_same_verdict(name: &str, got: &OracleReport, want: &OracleReport) {
    assert_eq!(got.first_block, want.first_block, "{name}: first block");
    assert_eq!(got.indexed_to, want.indexed_to, "{name}: tip");
    assert_eq!(
        got.consensus.len(),
        want.consensus.len(),
        "{name}: consensus rows"
    );
    for (g, w) in got.consensus.iter().zip(&want.consensus) {
        assert_eq!(g, w, "{name}: consensus at block {}", w.block_id);
    }
    assert_eq!(got.accepted, want.accepted, "{name}: accepted operations");
    assert_eq!(got.rejected, want.rejected, "{name}: rejected operations");
    assert_eq!(got.namespaces, want.namespaces, "{name}: namespaces");
    assert_eq!(got.names, want.names, "{name}: names");
    assert_eq!(
        got.zonefile_inventory, want.zonefile_inventory,
        "{name}: zone-file inventory"
    );
}

fn fixture_reproduces(name: &str, rules: OracleRules) -> OracleReport {
    provision();
    let blocks = fixture_blocks(name);
    let chain = RegtestChain::from_blocks(blocks.clone())
        .unwrap_or_else(|e| panic!("fixture {name} is a valid chain: {e}"));
    assert_eq!(chain.height(), blocks.len() - 1);
    let started = Instant::now();
    let got = run_oracle(&chain, &rules);
    eprintln!(
        "oracle on fixture {name}: {} blocks in {:.1?} (indexing {} s)",
        chain.height(),
        started.elapsed(),
        got.index_seconds
    );
    let want = fixture_report(name);
    assert_same_verdict(name, &got, &want);
    got
}

/// The fixtures' eight operations, in chain order (README "Files").
const FIXTURE_OPS: [(u64, &str); 8] = [
    (102, "NAMESPACE_PREORDER"),
    (103, "NAMESPACE_REVEAL"),
    (104, "NAME_IMPORT"),
    (104, "NAME_IMPORT"),
    (104, "NAME_IMPORT"),
    (107, "NAMESPACE_READY"),
    (108, "NAME_UPDATE"),
    (109, "NAME_TRANSFER"),
];

fn assert_fixture_ops(report: &OracleReport) {
    let ops: Vec<(u64, &str)> = report
        .accepted
        .iter()
        .map(|a| (a.block_id, a.op.as_str()))
        .collect();
    assert_eq!(ops, FIXTURE_OPS);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.names.len(), 3);
    assert_eq!(report.zonefile_inventory.len(), 4);
}

#[test]
fn the_harness_reproduces_the_oracle_on_the_epoch1_fixture() {
    let report = fixture_reproduces("epoch1", OracleRules::epoch1());
    assert_fixture_ops(&report);
    // Epoch 1 prices `id` in satoshis only.
    assert_eq!(report.namespaces[0].op_fee, 4_000_000_000);
    assert_eq!(report.namespaces[0].token_fee, "0");
}

#[test]
fn the_harness_reproduces_the_oracle_on_the_epoch6_fixture() {
    let report = fixture_reproduces("epoch6", OracleRules::epoch6());
    assert_fixture_ops(&report);
    // Epoch 6 prices `id` in STX, paid from the genesis allocation.
    assert_eq!(report.namespaces[0].token_fee, "64000000000");
}

/// The chain the project's builder makes (the devnet's: a namespace
/// preordered, revealed, and names imported into it): the original accepts
/// every operation, and its whitelist is the follower's.
#[test]
fn the_oracle_accepts_the_builders_chain() {
    let mut chain = RegtestChain::new();
    chain.setup_import_namespace("id");
    let hashes: Vec<Hash160> = (0..3)
        .map(|i| Hash160::of(format!("$ORIGIN n{i}.id\n").as_bytes()))
        .collect();
    let txs = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| chain.name_import(&format!("n{i}.id"), *h))
        .collect();
    chain.mine(txs);
    chain.mine_empty(1);

    let started = Instant::now();
    let report = run_oracle(&chain, &OracleRules::epoch1());
    eprintln!(
        "oracle on the builder's chain: {} blocks in {:.1?}",
        chain.height(),
        started.elapsed(),
    );
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let ops: Vec<&str> = report.accepted.iter().map(|a| a.op.as_str()).collect();
    assert_eq!(
        ops,
        [
            "NAMESPACE_PREORDER",
            "NAMESPACE_REVEAL",
            "NAME_IMPORT",
            "NAME_IMPORT",
            "NAME_IMPORT"
        ]
    );
    let whitelist: Vec<String> = report
        .zonefile_inventory
        .iter()
        .map(|z| z.value_hash.clone())
        .collect();
    let expected: Vec<String> = hashes.iter().map(|h| hex::encode(h.0)).collect();
    assert_eq!(whitelist, expected);
    // And the follower's rules agree with the oracle on every block.
    let blocks: Vec<_> = (0..=chain.height())
        .map(|h| chain.block(h).unwrap().clone())
        .collect();
    let (engine, outcomes) =
        bns_rules::replay::replay(bns_rules::params::RuleSet::test(None), &[], &blocks);
    atlas_testkit::verdicts::assert_same(
        "the builder's chain",
        &atlas_testkit::verdicts::Verdicts::of_engine(&engine, &outcomes),
        &atlas_testkit::verdicts::Verdicts::of_oracle(&report),
    );
}

/// The `atlas-dev devnet` process, killed by its handle when the test ends.
struct DevnetProcess(std::process::Child);

impl Drop for DevnetProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `atlas-dev devnet --bitcoind-rpc-port`: announcements made through its API
/// are accepted by the original indexer reading the same chain over RPC,
/// whose whitelist and consensus hash are the devnet nodes'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_chain_passes_the_oracle() {
    use std::io::BufRead;
    use std::time::Duration;

    use atlas_node::api::client;

    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_atlas-dev"))
        .args(["devnet", "--nodes", "2", "--base-port", "0"])
        .args(["--bitcoind-rpc-port", "0", "--data-dir"])
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let devnet = DevnetProcess(child);
    // Node API URLs and the RPC address, up to "devnet ready".
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line == "devnet ready" {
                return seen;
            }
            seen.push(line);
        }
        panic!("the devnet exited before it was ready: {seen:?}")
    });
    let lines = tokio::time::timeout(Duration::from_secs(120), lines)
        .await
        .expect("the devnet is ready within 2 minutes")
        .unwrap();
    let apis: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("node ")?.split(' ').nth(2).map(String::from))
        .collect();
    let rpc: std::net::SocketAddr = lines
        .iter()
        .find_map(|l| l.strip_prefix("bitcoind rpc http://atlas:atlas@"))
        .and_then(|a| a.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no RPC address in {lines:?}"));
    assert_eq!(apis.len(), 2, "{lines:?}");

    let hashes: Vec<String> = (0..3)
        .map(|i| Hash160::of(format!("$ORIGIN d{i}.id\n").as_bytes()).to_hex())
        .collect();
    let body = serde_json::json!({ "hashes": hashes }).to_string();
    let r = client::post(&format!("{}/v1/devnet/announce", apis[0]), body.as_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    // Every node's follower confirms the three announcements.
    let mut status = serde_json::Value::Null;
    for api in &apis {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = client::get(&format!("{api}/v1/status")).await.unwrap();
            status = serde_json::from_slice(&r.body).unwrap();
            if status["announced"] == 3 {
                break;
            }
            assert!(Instant::now() < deadline, "{api} never saw 3: {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let tip = status["chain"]["height"].as_u64().unwrap();
    let confirmed = status["chain"]["confirmed_height"].as_i64().unwrap();
    let consensus = status["chain"]["consensus_hash"]
        .as_str()
        .unwrap()
        .to_string();

    let report = tokio::task::spawn_blocking(move || {
        atlas_testkit::oracle::run_oracle_at(rpc, tip, &OracleRules::epoch1())
    })
    .await
    .unwrap();
    drop(devnet);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let whitelist: Vec<&str> = report
        .zonefile_inventory
        .iter()
        .map(|z| z.value_hash.as_str())
        .collect();
    assert_eq!(whitelist, hashes, "the oracle's whitelist is the devnet's");
    assert_eq!(
        report.consensus_hash(confirmed),
        Some(consensus.as_str()),
        "the nodes' consensus hash at their confirmed height is the original's"
    );
}
