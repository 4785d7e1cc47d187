//! Runs the original BNS indexer (blockstack-core 22.0.0.0 on Python 2.7,
//! driven by the project's own harness in `oracle/`, "the oracle") over a `RegtestChain` and reads its
//! verdict. The oracle is the reference for every BNS rule, so tests compare
//! the follower with it. Its venv lives under `target/` and is created on
//! first use; a missing Python 2.7 or a failed install is a test failure with
//! the reason, never a skip.
//!
//! Each run serves its own copy of the chain on its own loopback ports and
//! indexes into its own fresh directory, so runs in parallel test threads and
//! processes do not meet.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::regtest::RegtestChain;
use bns_rules::params::TestTimers;
use serde::{Deserialize, Deserializer};

/// The project's harness for the original indexer: `oracle/` at the root.
pub fn oracle_dir() -> PathBuf {
    crate::paths::workspace_root().join("oracle")
}

/// The original's verdicts on fixed chains, kept with the rules' vectors.
fn fixtures_dir() -> PathBuf {
    crate::paths::workspace_root().join("crates/bns-rules/src/testdata/oracle/fixtures")
}

use crate::paths::target_dir;

/// Installs the oracle's venv (`setup.sh`, idempotent) and returns its path.
/// Test threads wait on a mutex; test processes (several binaries, or
/// several `cargo test` runs) on a file lock, because `setup.sh` deletes and
/// recreates an incomplete venv.
pub fn provision() -> PathBuf {
    static PROVISIONED: Mutex<bool> = Mutex::new(false);
    let mut done = PROVISIONED.lock().unwrap_or_else(|e| e.into_inner());
    let root = target_dir().join("bns-oracle");
    let venv = root.join("venv");
    if *done {
        return venv;
    }
    std::fs::create_dir_all(&root).unwrap();
    let lock = File::create(root.join("setup.lock")).unwrap();
    lock.lock().expect("locking the oracle's setup");
    let setup = oracle_dir().join("setup.sh");
    let out = Command::new("bash")
        .arg(&setup)
        .arg(&venv)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", setup.display()));
    assert!(
        out.status.success(),
        "installing the BNS oracle ({} {}) failed ({}):\n{}\n{}",
        setup.display(),
        venv.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    *done = true;
    venv
}

/// The rule set the oracle indexes under (`run.sh`'s environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleRules {
    /// Last blocks of epochs 1..5; `None` keeps mainnet's heights, so a short
    /// regtest chain is all epoch 1. `[1, 2, 3, 4, 5]`: epoch 6 from block 6.
    pub epoch_ends: Option<[u64; 5]>,
    /// Genesis with 1,000,000 STX for the miner key (`genesis_stx.py`), for
    /// operations that pay in STX; otherwise an empty genesis.
    pub stx_genesis: bool,
    /// The first block indexed.
    pub first_block: u64,
    /// Shortened reveal expiry, grace and receive-fees periods.
    pub timers: Option<TestTimers>,
}

impl Default for OracleRules {
    fn default() -> Self {
        OracleRules {
            epoch_ends: None,
            stx_genesis: false,
            first_block: 1,
            timers: None,
        }
    }
}

impl OracleRules {
    /// Epoch 1 throughout: what the fixture `epoch1` was indexed under.
    pub fn epoch1() -> Self {
        Self::default()
    }

    /// The last mainnet rule set from block 6, with STX to pay token fees:
    /// what the fixture `epoch6` was indexed under.
    pub fn epoch6() -> Self {
        OracleRules {
            epoch_ends: Some([1, 2, 3, 4, 5]),
            stx_genesis: true,
            first_block: 1,
            timers: None,
        }
    }
}

/// One row of `oracle.json`'s `consensus`: every block from `first_block - 4`
/// (the rows below the first block carry the genesis consensus hash).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConsensusRow {
    pub block_id: i64,
    pub consensus_hash: String,
    pub ops_hash: Option<String>,
}

/// An operation the oracle accepted. `op` is the operation's name
/// (`NAME_IMPORT`); `history_id` is the name or namespace it touched (the
/// preorder hash for a preorder nothing has consumed yet).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AcceptedOp {
    pub block_id: u64,
    pub vtxindex: u64,
    pub txid: String,
    pub op: String,
    pub history_id: String,
}

/// An operation the oracle rejected: `op` is its opcode character (`*`),
/// `opname` its name as logged (`?` when the log named none), `reason` the
/// warnings logged while checking it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RejectedOp {
    pub block_id: u64,
    pub vtxindex: u64,
    pub txid: String,
    pub op: String,
    pub opname: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Namespace {
    pub namespace_id: String,
    /// The opcode of the namespace's last operation: `&` revealed, `!` ready.
    pub op: String,
    pub reveal_block: u64,
    pub ready_block: u64,
    pub address: String,
    pub recipient_address: String,
    /// Satoshis burned by the preorder.
    pub op_fee: u64,
    /// MicroSTX paid by the preorder, in decimal.
    pub token_fee: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NameRecord {
    pub name: String,
    pub value_hash: Option<String>,
    pub address: String,
    pub block_number: u64,
    pub last_renewed: u64,
    #[serde(deserialize_with = "int_or_bool")]
    pub revoked: bool,
}

/// One entry of the Atlas zone-file inventory (the whitelist), in order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InventoryEntry {
    pub block_id: u64,
    pub name: String,
    pub value_hash: String,
    pub txid: String,
}

/// Everything `oracle/run.sh --json` writes.
#[derive(Debug, Clone, Deserialize)]
pub struct OracleReport {
    pub first_block: u64,
    pub indexed_to: u64,
    /// `index_blockchain`'s result: false if indexing stopped early.
    pub index_rc: bool,
    pub index_seconds: f64,
    /// The last block a previous run in the same workdir had indexed.
    pub resumed_after: Option<u64>,
    pub consensus: Vec<ConsensusRow>,
    pub accepted: Vec<AcceptedOp>,
    pub rejected: Vec<RejectedOp>,
    /// Warnings per block that belong to no accepted or rejected operation
    /// (e.g. payloads the parser dropped).
    pub block_warnings: BTreeMap<u64, Vec<String>>,
    pub namespaces: Vec<Namespace>,
    pub names: Vec<NameRecord>,
    pub zonefile_inventory: Vec<InventoryEntry>,
}

impl OracleReport {
    pub fn consensus_hash(&self, block: i64) -> Option<&str> {
        self.consensus
            .iter()
            .find(|r| r.block_id == block)
            .map(|r| r.consensus_hash.as_str())
    }

    /// (block, vtxindex, op name) of every accepted operation, in chain order.
    pub fn accepted_ops(&self) -> Vec<(u64, u64, &str)> {
        self.accepted
            .iter()
            .map(|a| (a.block_id, a.vtxindex, a.op.as_str()))
            .collect()
    }
}

/// SQLite integers that mean booleans.
fn int_or_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Ok(b),
        serde_json::Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64() != Some(0)),
        other => Err(serde::de::Error::custom(format!(
            "expected 0, 1 or a boolean, got {other}"
        ))),
    }
}

fn parse_report(path: &Path) -> Result<OracleReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The blocks of fixture `name` (`fixtures/<name>/blocks.hex`), genesis first.
pub fn fixture_blocks(name: &str) -> Vec<bitcoin::Block> {
    let path = fixtures_dir().join(name).join("blocks.hex");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {name}: {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(h, line)| {
            let bytes = hex::decode(line.trim())
                .unwrap_or_else(|e| panic!("fixture {name}: block {h} is not hex: {e}"));
            bitcoin::consensus::deserialize(&bytes)
                .unwrap_or_else(|e| panic!("fixture {name}: block {h} does not parse: {e}"))
        })
        .collect()
}

/// The oracle's report on fixture `name` (`fixtures/<name>/oracle.json`).
pub fn fixture_report(name: &str) -> OracleReport {
    let path = fixtures_dir().join(name).join("oracle.json");
    parse_report(&path).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Serves a copy of the chain over bitcoind's JSON-RPC from a thread of its
/// own, so callers need no runtime; dropping it stops the server.
struct RpcServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RpcServer {
    fn start(chain: &RegtestChain) -> RpcServer {
        let chain = Arc::new(Mutex::new(chain.clone()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the RPC server");
            rt.block_on(async move {
                let served =
                    crate::rpc::serve("127.0.0.1:0".parse().unwrap(), chain, "atlas", "atlas")
                        .await;
                match served {
                    Ok((addr, task)) => {
                        let _ = ready.send(Ok(addr));
                        let _ = stopped.await;
                        task.abort();
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                    }
                }
            });
        });
        let addr = addr
            .recv_timeout(Duration::from_secs(30))
            .expect("the RPC server thread answers")
            .unwrap_or_else(|e| panic!("serving the chain over JSON-RPC: {e}"));
        RpcServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A child process killed (by its handle) when dropped, also on panic.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts `p2p_shim.py` for the RPC server at `rpc` and awaits its listening
/// port. The port is picked free and then handed over, so another process
/// can take it in between: the shim then exits, and we try another.
fn start_shim(rpc: SocketAddr, dir: &Path) -> (Killed, u16) {
    let shim = oracle_dir().join("p2p_shim.py");
    let log = dir.join("shim.log");
    for _attempt in 0..3 {
        let port = free_port();
        let out = File::create(&log).unwrap();
        let child = Command::new("python3")
            .arg(&shim)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--rpc")
            .arg(format!("http://atlas:atlas@{rpc}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e} (is python3 installed?)", shim.display()));
        let mut child = Killed(child);
        // The shim gives no readiness signal but its listening port.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                if tail(&log, 5).contains("Address already in use") {
                    break;
                }
                panic!("the P2P shim exited ({status}):\n{}", tail(&log, 40));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (child, port);
            }
            assert!(
                Instant::now() < deadline,
                "the P2P shim did not listen on 127.0.0.1:{port} in 30 s:\n{}",
                tail(&log, 40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("the P2P shim found no free port in 3 tries")
}

/// Runs the oracle from block `rules.first_block` to the tip of `chain` and
/// returns its report. Blocking; panics with the oracle's output if it fails
/// or overruns. Call async tests' runs from `spawn_blocking`.
pub fn run_oracle(chain: &RegtestChain, rules: &OracleRules) -> OracleReport {
    let rpc = RpcServer::start(chain);
    let report = run_oracle_at(rpc.addr, chain.height() as u64, rules);
    drop(rpc);
    report
}

/// Runs the oracle against a bitcoind-compatible JSON-RPC server at `rpc`
/// (auth atlas:atlas) whose tip is `blocks` (e.g. `atlas-dev devnet
/// --bitcoind-rpc-port`). Blocking, like `run_oracle`.
pub fn run_oracle_at(rpc: SocketAddr, blocks: u64, rules: &OracleRules) -> OracleReport {
    match run(rpc, blocks, rules, false) {
        Ran::Report(report) => *report,
        Ran::Aborted { .. } => unreachable!("an abort fails the run"),
    }
}

/// Runs the oracle over `chain`, which must make it abort (`os.abort()`,
/// SIGABRT), and returns the operation it was checking then: (block,
/// vtxindex). Panics if it finishes or fails otherwise.
pub fn run_oracle_until_abort(chain: &RegtestChain, rules: &OracleRules) -> (u64, u32) {
    let rpc = RpcServer::start(chain);
    let ran = run(rpc.addr, chain.height() as u64, rules, true);
    drop(rpc);
    match ran {
        Ran::Aborted { block, vtxindex } => (block, vtxindex),
        Ran::Report(_) => unreachable!("finishing fails the run"),
    }
}

enum Ran {
    Report(Box<OracleReport>),
    Aborted { block: u64, vtxindex: u32 },
}

/// The last operation the original logged checking (`CHECK NAME_IMPORT at
/// (104, 2)`).
fn last_check(stderr: &Path) -> Option<(u64, u32)> {
    let text = String::from_utf8_lossy(&std::fs::read(stderr).ok()?).into_owned();
    let at = text.rfind("CHECK ")?;
    let rest = &text[at..];
    let open = rest.find(" at (")? + 5;
    let close = open + rest[open..].find(')')?;
    let (block, vtxindex) = rest[open..close].split_once(", ")?;
    Some((block.parse().ok()?, vtxindex.parse().ok()?))
}

fn run(rpc: SocketAddr, blocks: u64, rules: &OracleRules, expect_abort: bool) -> Ran {
    let venv = provision();
    let parent = std::env::var_os("BNS_ORACLE_TMPDIR")
        .map_or_else(|| target_dir().join("tmp"), PathBuf::from);
    std::fs::create_dir_all(&parent).expect("the oracle's scratch directory");
    let tmp = tempfile::Builder::new()
        .prefix("bns-oracle-")
        .tempdir_in(parent)
        .expect("a temporary directory");
    let dir = tmp.path().to_path_buf();
    let (shim, p2p_port) = start_shim(rpc, &dir);

    let workdir = dir.join("work");
    let json = dir.join("oracle.json");
    let (stdout, stderr) = (dir.join("oracle.out"), dir.join("oracle.err"));
    let run = oracle_dir().join("run.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&run)
        .arg(&workdir)
        .arg("--rpc-port")
        .arg(rpc.port().to_string())
        .arg("--p2p-port")
        .arg(p2p_port.to_string())
        .arg("--json")
        .arg(&json)
        // Exactly to the tip the caller saw: a live chain (the devnet mines
        // a block every 2 s) has grown by the time the indexer asks.
        .arg("--stop-block")
        .arg(blocks.to_string())
        .env("BNS_ORACLE_VENV", &venv)
        .env("FIRST_BLOCK", rules.first_block.to_string())
        // What the caller's shell may hold must not bend the rules.
        .env_remove("EPOCH_ENDS")
        .env_remove("GENESIS")
        .env_remove("NAMESPACE_REVEAL_EXPIRE")
        .env_remove("ORACLE_WHATIF")
        .stdin(Stdio::null())
        .stdout(Stdio::from(File::create(&stdout).unwrap()))
        .stderr(Stdio::from(File::create(&stderr).unwrap()));
    if let Some(ends) = rules.epoch_ends {
        let ends: Vec<String> = ends.iter().map(u64::to_string).collect();
        cmd.env("EPOCH_ENDS", ends.join(" "));
    }
    if rules.stx_genesis {
        cmd.env("GENESIS", oracle_dir().join("genesis_stx.py"));
    }
    for e in 1..=6 {
        for what in ["LIFETIME_GRACE_PERIOD", "RECEIVE_FEES_PERIOD"] {
            cmd.env_remove(format!("BLOCKSTACK_EPOCH_{e}_NAMESPACE_{what}"));
        }
    }
    if let Some(t) = rules.timers {
        cmd.env(
            "NAMESPACE_REVEAL_EXPIRE",
            t.namespace_reveal_expire.to_string(),
        );
        for e in TestTimers::EPOCHS {
            cmd.env(
                format!("BLOCKSTACK_EPOCH_{e}_NAMESPACE_LIFETIME_GRACE_PERIOD"),
                t.grace_period.to_string(),
            )
            .env(
                format!("BLOCKSTACK_EPOCH_{e}_NAMESPACE_RECEIVE_FEES_PERIOD"),
                t.receive_fees_period.to_string(),
            );
        }
    }

    // About 30 ms a block when the machine is idle; shared CI cores are not.
    let limit = Duration::from_secs(120 + blocks / 2);
    let started = Instant::now();
    let mut child = Killed(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", run.display())),
    );
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child);
    drop(shim);

    let fail = |what: String| -> ! {
        // Kept for a post-mortem: the oracle's databases and logs.
        let kept = tmp.keep();
        panic!(
            "the BNS oracle {what} (workdir {}):\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}\n--- shim (tail)\n{}",
            kept.display(),
            tail(&stdout, 40),
            tail(&stderr, 60),
            tail(&dir.join("shim.log"), 20)
        )
    };
    match status {
        None => fail(format!("did not finish {blocks} blocks in {limit:?}")),
        Some(s) if expect_abort => {
            use std::os::unix::process::ExitStatusExt;
            if s.signal() != Some(6) {
                fail(format!("was expected to abort, but exited ({s})"));
            }
            let Some((block, vtxindex)) = last_check(&stderr) else {
                fail("aborted before checking any operation".into());
            };
            return Ran::Aborted { block, vtxindex };
        }
        Some(s) if !s.success() => fail(format!("failed ({s})")),
        Some(_) => {}
    }
    let report = match parse_report(&json) {
        Ok(r) => r,
        Err(e) => fail(format!("wrote no readable report: {e}")),
    };
    let last = report.consensus.last().map(|r| r.block_id);
    if !report.index_rc || last != Some(blocks as i64) {
        fail(format!(
            "stopped early: index_rc {}, last consensus hash at block {last:?}, tip {blocks}",
            report.index_rc
        ));
    }
    Ran::Report(Box::new(report))
}
