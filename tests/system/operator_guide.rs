//! `deploy/README.md`, the operator's guide, run: every `sh` block in it, word
//! for word, as root, against a local regtest chain served through a real
//! ElectrumX, and every inline command the guide tells an operator to type.
//!
//! The blocks install a user, a binary, a config in `/etc/atlas` and a
//! systemd unit, so they run in a private mount namespace (`unshare -m`,
//! entered with `nsenter` for each block) where `/etc`, `/var/lib`,
//! `/usr/local/bin` and `/usr/bin/systemctl` are the test's own: nothing
//! outside the test's directory changes. Two things differ from a real host:
//!
//! * systemd is not PID 1 here, so `systemctl` is a stand-in that starts the
//!   unit as systemd would, from the unit file itself: its `User` and `Group`,
//!   `StateDirectory`, `WorkingDirectory`, `Environment` and `ExecStart`, and
//!   stops it with its `KillSignal`. `enable` is the real `systemctl` (offline,
//!   it only links the unit). The unit's sandboxing is not applied.
//! * The guide's config follows mainnet; after `atlas check-config` has
//!   passed it as written, its `[chain]` section is pointed at the local
//!   ElectrumX (`network = "regtest"`, `poll_secs = 1`) and its p2p addresses
//!   at loopback, with a one-node devnet as the seed. Everything else stays.
//!
//! The guide's claims are then checked: the healthy signs once a zone file is
//! announced and fetched, a backup restored over a lost `data_dir` (same
//! identity, files kept), `atlas reindex` rebuilding the whitelist, an
//! upgrade, a lost store refilled from the chain and the peers, and the
//! stuck signs when the chain server goes away.
//!
//! The guide's ports are fixed: the API on 7600 and p2p on 6264.

use atlas_testkit::electrumx;

use crate::common::{self, free_port};

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use electrumx::ElectrumX;

const API: &str = "http://127.0.0.1:7600";
const STATUS: &str = "atlas status --api http://127.0.0.1:7600";
const RUN_AS_USER: &str = "atlas node --config /etc/atlas/atlas.toml";

/// The guide's code blocks, in order: (language, body).
fn guide_blocks() -> (String, Vec<(String, String)>) {
    let text =
        std::fs::read_to_string(common::root().join("deploy/README.md")).expect("deploy/README.md");
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find("\n```") {
        let after = &rest[open + 4..];
        let lang_end = after.find('\n').expect("a code block's first line");
        let lang = after[..lang_end].to_string();
        let body = &after[lang_end + 1..];
        let close = body.find("\n```").expect("a closed code block");
        blocks.push((lang, body[..close].to_string()));
        rest = &body[close + 4..];
    }
    (text, blocks)
}

/// Stands in for `systemctl` where systemd is not PID 1 (see the module's
/// comment). `@STATE@` and `@REAL@` are filled in by the test.
const SYSTEMCTL: &str = r#"#!/bin/bash
set -euo pipefail
STATE=@STATE@
REAL=@REAL@
unit() { echo "/etc/systemd/system/$1.service"; }
key() { sed -n "s/^$2=//p" "$(unit "$1")" | tail -n 1; }
running() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status"; }
start() {
  [ -f "$(unit "$1")" ] || { echo "Unit $1.service not found." >&2; exit 5; }
  local user group dir env
  user=$(key "$1" User); group=$(key "$1" Group)
  dir="/var/lib/$(key "$1" StateDirectory)"
  mkdir -p "$dir" && chown "$user:$group" "$dir"
  env=$(sed -n 's/^Environment=//p' "$(unit "$1")" | tr '\n' ' ')
  cd "$(key "$1" WorkingDirectory)"
  # shellcheck disable=SC2086
  setpriv --reuid="$user" --regid="$group" --init-groups env $env $(key "$1" ExecStart) \
    >> "$STATE/$1.log" 2>&1 < /dev/null &
  echo $! > "$STATE/$1.pid"
}
stop() {
  [ -f "$STATE/$1.pid" ] || return 0
  local pid signal limit
  pid=$(cat "$STATE/$1.pid"); signal=$(key "$1" KillSignal); limit=$(key "$1" TimeoutStopSec)
  kill -s "${signal#SIG}" "$pid" 2>/dev/null || true
  for _ in $(seq $((limit * 10))); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then kill -s KILL "$pid"; fi
  rm -f "$STATE/$1.pid"
}
case "$1" in
  daemon-reload) ;;
  enable) if [ "$2" = --now ]; then "$REAL" enable "$3"; start "$3"; else "$REAL" enable "$2"; fi ;;
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) echo "systemctl stand-in: $1 is not supported" >&2; exit 1 ;;
esac
"#;

/// A private mount namespace, held open by a bounded `sleep`; each block
/// runs in it through `nsenter`.
struct Host {
    dir: tempfile::TempDir,
    holder: Child,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in [
            "etc",
            "var-lib",
            "usr-local-bin",
            "state",
            "checkout/target/release",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        copy_tree(Path::new("/etc"), &d.join("etc"));
        // The temporary directory is private to root; these are the
        // namespace's /var/lib and /usr/local/bin, which the node's user reads.
        for sub in ["var-lib", "usr-local-bin"] {
            chmod(&d.join(sub), 0o755);
        }
        std::fs::write(d.join("real-systemctl"), "").unwrap();
        let shim = SYSTEMCTL
            .replace("@STATE@", d.join("state").to_str().unwrap())
            .replace("@REAL@", d.join("real-systemctl").to_str().unwrap());
        std::fs::write(d.join("systemctl"), shim).unwrap();
        chmod(&d.join("systemctl"), 0o755);
        // A checkout as the guide's commands expect it: the built binary at
        // target/release/atlas and the repository's deploy/.
        std::os::unix::fs::symlink(common::atlas_bin(), d.join("checkout/target/release/atlas"))
            .unwrap();
        std::os::unix::fs::symlink(common::root().join("deploy"), d.join("checkout/deploy"))
            .unwrap();

        // The node outlives the stand-in that starts it; as a subreaper this
        // process inherits it and reaps it once stopped (see `reap`).
        // SAFETY: a plain syscall.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "900"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        let host = Host { dir, holder };
        let d = host.dir.path().display();
        // The real systemctl is bound aside before the stand-in covers it.
        host.root(&format!(
            "mount --bind {d}/etc /etc && mount --bind {d}/var-lib /var/lib && \
             mount --bind {d}/usr-local-bin /usr/local/bin && \
             mount --bind /usr/bin/systemctl {d}/real-systemctl && \
             mount --bind {d}/systemctl /usr/bin/systemctl"
        ));
        host
    }

    fn checkout(&self) -> PathBuf {
        self.dir.path().join("checkout")
    }

    /// Runs a script as root in the namespace, from the checkout.
    fn output(&self, script: &str) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "--", "bash", "-euo", "pipefail", "-c"])
            // nsenter leaves the working directory at the namespace's root.
            .arg(format!("cd '{}'\n{script}", self.checkout().display()))
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd.output().expect("nsenter (util-linux)")
    }

    /// As `output`, failing with the script, its output and the node's log
    /// unless it succeeds.
    fn root(&self, script: &str) -> String {
        let out = self.output(script);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "`{script}` failed ({}):\n{text}\nnode log:\n{}",
            out.status,
            self.node_log()
        );
        text
    }

    fn node_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/atlas.log")).unwrap_or_default()
    }

    fn node_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join("state/atlas.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// `systemctl stop atlas`, and proof that the node is gone: without it a
    /// node that ignored the stop would answer every later check.
    fn stop(&self) {
        let pid = self.node_pid().expect("a running node");
        self.root("systemctl stop atlas");
        assert!(
            !running(pid),
            "the node (pid {pid}) still runs after systemctl stop"
        );
        reap(pid);
        assert!(
            self.status().is_none(),
            "the API still answers after systemctl stop"
        );
    }

    /// `/v1/status` through the guide's own command.
    fn status(&self) -> Option<serde_json::Value> {
        let out = self.output(STATUS);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("status is JSON"))
    }

    /// Polls the status until `ready` holds; fails with the node's log.
    fn wait_status(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.status()
                && ready(&s)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "not {what} after {limit:?}; status: {:?}\nnode log:\n{}",
                self.status(),
                self.node_log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(pid) = self.node_pid() {
            // SAFETY: a plain syscall on the pid the stand-in recorded.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Collects a stopped node's exit status, if this process inherited it.
fn reap(pid: i32) {
    // SAFETY: a plain syscall; WNOHANG never blocks.
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
    }
}

/// Whether a process runs (a zombie does not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

fn copy_tree(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A one-node devnet whose chain is served over bitcoind's JSON-RPC.
struct Devnet {
    child: Child,
    log: PathBuf,
    api: String,
    p2p: String,
    rpc_port: u16,
}

impl Devnet {
    fn start(dir: &Path) -> Devnet {
        let base = loop {
            let p = free_port();
            if p < 64000 && std::net::TcpListener::bind(("127.0.0.1", p + 1000)).is_ok() {
                break p;
            }
        };
        let rpc_port = free_port();
        let log = dir.join("devnet.log");
        let child = Command::new(common::atlas_dev_bin())
            .args(["devnet", "--nodes", "1", "--block-interval", "1"])
            .arg("--base-port")
            .arg(base.to_string())
            .arg("--bitcoind-rpc-port")
            .arg(rpc_port.to_string())
            .arg("--data-dir")
            .arg(dir.join("devnet-data"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("devnet.err")).unwrap(),
            ))
            .process_group(0)
            .spawn()
            .unwrap();
        let mut devnet = Devnet {
            child,
            log,
            api: format!("http://127.0.0.1:{base}"),
            p2p: format!("/ip4/127.0.0.1/tcp/{}", base + 1000),
            rpc_port,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !std::fs::read_to_string(&devnet.log)
            .unwrap_or_default()
            .contains("devnet ready")
        {
            if let Some(status) = devnet.child.try_wait().unwrap() {
                panic!(
                    "the devnet exited ({status}):\n{}",
                    std::fs::read_to_string(dir.join("devnet.err")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the devnet was not ready in 120 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        devnet
    }

    /// Publishes a zone file at the devnet's node and announces its hash.
    fn publish(&self, body: &str) -> String {
        let put = curl(&["--data-binary", body, &format!("{}/v1/zonefiles", self.api)]);
        let hash = serde_json::from_str::<serde_json::Value>(&put).expect("upload answer")["hash"]
            .as_str()
            .expect("a hash")
            .to_string();
        curl(&[
            "-X",
            "POST",
            &format!("{}/v1/devnet/announce", self.api),
            "-d",
            &format!("{{\"hashes\":[\"{hash}\"]}}"),
        ]);
        hash
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sf"])
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The guide's config, pointed at the local chain and loopback.
fn on_regtest(guide_config: &str, electrum: &str, seed: &str) -> String {
    let mut config: toml::Table = guide_config.parse().expect("the guide's config is TOML");
    let p2p = config["p2p"].as_table_mut().expect("[p2p]");
    p2p.insert(
        "listen".into(),
        toml::Value::try_from(["/ip4/127.0.0.1/tcp/6264", "/ip4/127.0.0.1/udp/6264/quic-v1"])
            .unwrap(),
    );
    p2p.insert(
        "external".into(),
        toml::Value::try_from(["/ip4/127.0.0.1/tcp/6264"]).unwrap(),
    );
    p2p.insert("seeds".into(), toml::Value::try_from([seed]).unwrap());
    let chain = config["chain"].as_table_mut().expect("[chain]");
    chain.insert(
        "electrum".into(),
        toml::Value::try_from([electrum]).unwrap(),
    );
    chain.insert("network".into(), "regtest".into());
    chain.insert("poll_secs".into(), 1.into());
    toml::to_string(&config).unwrap()
}

fn healthy(s: &serde_json::Value, announced: u64) -> bool {
    let chain = &s["chain"];
    let (height, confirmed) = (
        chain["height"].as_u64().unwrap_or(0),
        chain["confirmed_height"].as_u64().unwrap_or(0),
    );
    chain["state"] == "following"
        && height >= confirmed
        && s["announced"] == announced
        && s["present"] == announced
        && s["missing"] == 0
        && s["neighbors"].as_u64().unwrap_or(0) >= 1
        && s["store"]["state"] == "ok"
}

#[test]
fn every_command_of_the_operators_guide_runs_and_its_signs_hold() {
    let _ports = common::fixed_ports();
    let (text, blocks) = guide_blocks();
    let sh = |needle: &str| -> String {
        let found: Vec<&String> = blocks
            .iter()
            .filter(|(lang, body)| lang == "sh" && body.contains(needle))
            .map(|(_, body)| body)
            .collect();
        assert_eq!(found.len(), 1, "one sh block with `{needle}`: {found:?}");
        found[0].clone()
    };
    let install = sh("useradd");
    let check = sh("atlas check-config");
    let unit = sh("systemctl enable --now atlas");
    let backup = sh("-czf");
    let restore = sh("-xzpf");
    let reindex = sh("atlas reindex");
    let upgrade = sh("systemctl stop atlas");
    let ran: BTreeSet<&String> = [
        &install, &check, &unit, &backup, &restore, &reindex, &upgrade,
    ]
    .into_iter()
    .collect();
    let all_sh: BTreeSet<&String> = blocks
        .iter()
        .filter(|(lang, _)| lang == "sh")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(ran, all_sh, "every sh block of the guide is run here");
    for inline in [STATUS, RUN_AS_USER] {
        assert!(
            text.contains(&format!("`{inline}`")),
            "the guide says `{inline}`"
        );
    }
    let configs: Vec<&String> = blocks
        .iter()
        .filter(|(lang, _)| lang == "toml")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(configs.len(), 1, "the guide has one config");
    let guide_config = configs[0];
    assert!(guide_config.starts_with("# /etc/atlas/atlas.toml\n"));

    let work = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(work.path());
    let electrumx = ElectrumX::start(
        &format!("http://atlas:atlas@127.0.0.1:{}/", devnet.rpc_port),
        &work.path().join("electrumx"),
    );
    let host = Host::new();
    let etc_config = host.dir.path().join("etc/atlas/atlas.toml");

    // Install, configure and check, as the guide has it.
    host.root(&install);
    std::fs::create_dir_all(etc_config.parent().unwrap()).unwrap();
    std::fs::write(&etc_config, guide_config).unwrap();
    let resolved: serde_json::Value = serde_json::from_str(&host.root(&check)).unwrap();
    assert_eq!(resolved["data_dir"], "/var/lib/atlas");
    assert_eq!(resolved["whitelist"]["chain"]["network"], "mainnet");

    // The same config on the local chain; then the unit, started.
    std::fs::write(
        &etc_config,
        on_regtest(guide_config, &electrumx.url, &devnet.p2p),
    )
    .unwrap();
    host.root(&check);
    host.root(&unit);
    assert!(
        host.dir
            .path()
            .join("etc/systemd/system/multi-user.target.wants/atlas.service")
            .symlink_metadata()
            .is_ok(),
        "the unit is enabled"
    );
    let hash = devnet.publish("$ORIGIN guide.id\n$TTL 3600\n");
    let first = host.wait_status("healthy, holding the file", Duration::from_secs(120), |s| {
        healthy(s, 1)
    });
    let peer_id = first["peer_id"].as_str().unwrap().to_string();
    // Owned by the unit's user: the state directory and what the node wrote.
    let owners = host.root(
        "stat -c '%U %n' /var/lib/atlas /var/lib/atlas/atlas.redb /var/lib/atlas/identity.key",
    );
    assert_eq!(
        owners.matches("atlas /var/lib/atlas").count(),
        3,
        "{owners}"
    );
    // The guide's sign: confirmed height trails the tip by confirmations - 1,
    // or close to it.
    let chain = &first["chain"];
    let lag = chain["height"].as_u64().unwrap() - chain["confirmed_height"].as_u64().unwrap();
    assert!((8..=11).contains(&lag), "tip - confirmed = {lag}: {first}");
    let served = host.root(&format!("curl -sf {API}/v1/zonefiles/{hash}"));
    assert!(served.starts_with("$ORIGIN guide.id"), "{served}");

    // Backup, then lose data_dir, then restore: the same node comes back.
    host.stop();
    host.root(&backup);
    host.root("rm /var/lib/atlas/atlas.redb /var/lib/atlas/identity.key");
    host.root(&restore);
    host.root("systemctl start atlas");
    let back = host.wait_status("serving after the restore", Duration::from_secs(60), |_| {
        true
    });
    assert_eq!(back["peer_id"], peer_id.as_str(), "identity.key restored");
    assert_eq!(
        back["present"], 1,
        "the zone file restored, not fetched: {back}"
    );

    // Reindex with the node stopped: the whitelist is read from the chain
    // again, the zone file stays.
    host.stop();
    let reindexed = host.root(&reindex);
    assert!(
        reindexed.contains("reindexed: 1 announcements"),
        "{reindexed}"
    );
    host.root("systemctl start atlas");
    let after = host.wait_status("serving after reindex", Duration::from_secs(60), |_| true);
    assert_eq!(after["present"], 1, "the zone file kept: {after}");
    host.wait_status("healthy after reindex", Duration::from_secs(120), |s| {
        healthy(s, 1)
    });

    // An upgrade: stop, replace the binary, start.
    let before = host.node_pid().unwrap();
    host.root(&upgrade);
    assert!(!running(before), "the old binary stopped");
    reap(before);
    assert_ne!(host.node_pid(), Some(before), "the new binary started");
    let upgraded = host.wait_status("healthy after the upgrade", Duration::from_secs(60), |s| {
        healthy(s, 1)
    });
    assert_eq!(upgraded["peer_id"], peer_id.as_str());

    // The guide's "if lost" for atlas.redb: the whitelist is read from the
    // chain again and the zone file fetched again from a peer.
    host.stop();
    host.root("rm /var/lib/atlas/atlas.redb");
    host.root("systemctl start atlas");
    host.wait_status(
        "refilled after losing atlas.redb",
        Duration::from_secs(120),
        |s| healthy(s, 1),
    );

    // Stuck: the only Electrum server gone. The node says why and keeps serving.
    drop(electrumx);
    let stuck = host.wait_status(
        "showing the chain unavailable",
        Duration::from_secs(60),
        |s| s["chain"]["state"] == "unavailable" && s["chain"]["last_error"].is_string(),
    );
    assert_eq!(stuck["present"], 1, "{stuck}");
    let served = host.root(&format!("curl -sf {API}/v1/zonefiles/{hash}"));
    assert!(served.starts_with("$ORIGIN guide.id"), "{served}");
    host.stop();
}
