//! README's "Your own node on the devnet's chain", word for word: the four
//! `sh` blocks of that section run with bash in a fresh directory, the first
//! three as long-running processes (the devnet, a stock ElectrumX installed
//! from PyPI, an `atlas node` from the README's config), the fourth to
//! completion: a zone file published at the devnet reaches the separate node
//! through the chain (ElectrumX, 10 confirmations) and the p2p network.
//!
//! Only the environment is the test's: `atlas` on `PATH` is this build's
//! binary, and `ALLOW_ROOT=1` lets ElectrumX run where CI runs as root. The
//! README's ports are fixed (7600-7604, 8600-8604, 18443, 50001, 7700-7701);
//! a port already taken fails the test with the process's log.

use std::net::TcpStream;

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECTION: &str = "### Your own node on the devnet's chain";

/// The section's `sh` blocks, in order.
fn recipe() -> Vec<String> {
    let readme = std::fs::read_to_string(common::root().join("README.md")).expect("README.md");
    let start = readme
        .find(SECTION)
        .expect("README has the regtest section");
    let body = &readme[start + SECTION.len()..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut blocks = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find("```sh\n") {
        let after = &rest[open + 6..];
        let close = after.find("\n```").expect("a closed code block");
        blocks.push(after[..close].to_string());
        rest = &after[close + 4..];
    }
    blocks
}

/// A bash process running one block, in its own process group so that
/// everything it started stops with it.
struct Terminal {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Terminal {
    fn start(dir: &Path, name: &str, script: &str) -> Terminal {
        use std::os::unix::process::CommandExt;
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("PATH", path_with_atlas())
            .env("ALLOW_ROOT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .process_group(0)
            .spawn()
            .expect("bash");
        Terminal {
            name: name.to_string(),
            child,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds, or fails with this terminal's log if its
    /// process exits first or `limit` passes.
    fn wait_until(&mut self, what: &str, limit: Duration, ready: impl Fn(&Terminal) -> bool) {
        let deadline = Instant::now() + limit;
        while !ready(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{}: exited ({status}) before {what}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: not {what} after {limit:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // The group's id is the child's pid (process_group(0)).
        let pgid = self.child.id() as i32;
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn path_with_atlas() -> String {
    let bin = Path::new(common::atlas_bin())
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", bin.display())
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn the_readme_regtest_recipe_replicates_a_zone_file_to_a_node_of_your_own() {
    let _ports = common::fixed_ports();
    let blocks = recipe();
    assert_eq!(
        blocks.len(),
        4,
        "the section has four terminals: {blocks:#?}"
    );
    for (i, b) in blocks.iter().enumerate() {
        assert!(
            b.starts_with(&format!("# terminal {}", i + 1)),
            "block {i} names its terminal: {b}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Terminal::start(dir.path(), "devnet", &blocks[0]);
    devnet.wait_until("ready", Duration::from_secs(120), |t| {
        t.log().contains("devnet ready")
    });
    // Installing ElectrumX from PyPI takes a while on a cold cache.
    let mut electrumx = Terminal::start(dir.path(), "electrumx", &blocks[1]);
    electrumx.wait_until("listening on 50001", Duration::from_secs(600), |_| {
        listening(50001)
    });
    let mut node = Terminal::start(dir.path(), "node", &blocks[2]);
    node.wait_until("serving its API on 7700", Duration::from_secs(120), |_| {
        listening(7700)
    });

    let mut client = Terminal::start(dir.path(), "terminal 4", &blocks[3]);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = client.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the zone file did not reach the node in 300 s.\nterminal 4:\n{}\nnode:\n{}",
            client.log(),
            node.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = client.log();
    assert!(status.success(), "terminal 4 failed ({status}):\n{out}");
    // The node served the zone file's bytes, then a status that shows it
    // followed the chain through ElectrumX and holds the file.
    assert!(out.contains("$ORIGIN mine.id"), "{out}");
    assert!(
        out.contains("\"backend\":\"tcp://127.0.0.1:50001\""),
        "{out}"
    );
    assert!(out.contains("\"present\":1"), "{out}");
    drop(client);
    drop(node);
    drop(electrumx);
    drop(devnet);
}
