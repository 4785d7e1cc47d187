//! Real `atlas node` processes on real addresses: each in a network namespace
//! of its own, in its own /16 (so peer-table bucketing sees distinct groups),
//! routed through a router namespace. A partition drops every packet between
//! two halves; files are published on both sides; the partition heals and
//! every node converges with no operator action. Then nodes are killed and
//! restarted while more files are published. The test creates and removes
//! its own namespaces (it needs root and iproute2, and fails saying so).

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::NodeProcess;
use common::*;

const NODES: usize = 6;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("this test needs iproute2's `ip` (apt-get install iproute2): {e}")
    });
    assert!(
        out.status.success(),
        "ip {}: {} (this test needs root to create network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces `<prefix>-r` (the router) and `<prefix>-<i>` (node i, address
/// 10.<i>.0.2/24 behind 10.<i>.0.1), removed on drop.
struct Lab {
    prefix: String,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            prefix: format!("atl{}", std::process::id()),
        };
        let r = lab.router();
        ip(&["netns", "add", &r]);
        ip(&["-n", &r, "link", "set", "lo", "up"]);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &r,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])
            .status()
            .unwrap();
        assert!(out.success(), "enabling forwarding in the router namespace");
        for i in 1..=NODES {
            let ns = lab.node(i);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let (rv, nv) = (format!("r{i}"), format!("n{i}"));
            ip(&[
                "link", "add", &rv, "netns", &r, "type", "veth", "peer", "name", &nv, "netns", &ns,
            ]);
            ip(&[
                "-n",
                &r,
                "addr",
                "add",
                &format!("10.{i}.0.1/24"),
                "dev",
                &rv,
            ]);
            ip(&["-n", &r, "link", "set", &rv, "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.{i}.0.2/24"),
                "dev",
                &nv,
            ]);
            ip(&["-n", &ns, "link", "set", &nv, "up"]);
            ip(&[
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &format!("10.{i}.0.1"),
            ]);
        }
        lab
    }

    fn router(&self) -> String {
        format!("{}-r", self.prefix)
    }

    fn node(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// Drops every packet between nodes of `a` and nodes of `b` (silently,
    /// as a cut link does), or lets them through again.
    fn partition(&self, a: &[usize], b: &[usize], cut: bool) {
        let verb = if cut { "add" } else { "del" };
        for (from, to) in a.iter().flat_map(|x| b.iter().map(move |y| (*x, *y))) {
            for (src, dst) in [(from, to), (to, from)] {
                ip(&[
                    "-n",
                    &self.node(src),
                    "route",
                    verb,
                    "blackhole",
                    &format!("10.{dst}.0.0/16"),
                ]);
            }
        }
    }

    /// Runs `f` on a thread inside the router namespace, which reaches every node.
    fn in_router<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.router());
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on this thread only, with a namespace fd we hold open.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of each veth, and so the pair.
        for ns in (1..=NODES).map(|i| self.node(i)).chain([self.router()]) {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

/// A minimal HTTP/1.1 exchange (the client runs inside the router namespace).
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
    else {
        return (0, Vec::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .is_err()
    {
        return (0, Vec::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let status = String::from_utf8_lossy(&raw[..split])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw.get(split + 4..).unwrap_or_default().to_vec())
}

fn api(i: usize) -> String {
    format!("10.{i}.0.2:7600")
}

/// Each node's `present` (None if it does not answer).
fn presents(lab: &Lab) -> Vec<Option<u64>> {
    lab.in_router(|| {
        (1..=NODES)
            .map(|i| {
                let (code, body) = http(&api(i), "GET", "/v1/status", b"");
                (code == 200)
                    .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
                    .flatten()
                    .and_then(|v| v["present"].as_u64())
            })
            .collect()
    })
}

/// Polls until every node in `nodes` holds `n` files: the nodes are other
/// processes in other namespaces, and their status is what we can watch.
fn await_present(lab: &Lab, nodes: &[usize], n: u64, what: &str, limit: Duration) {
    let end = Instant::now() + limit;
    loop {
        let p = presents(lab);
        if nodes.iter().all(|i| p[i - 1] == Some(n)) {
            return;
        }
        assert!(
            Instant::now() < end,
            "{what}: not reached in {limit:?}: {p:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn upload(lab: &Lab, at: usize, files: &[(atlas_core::zonefile::Hash160, Vec<u8>)]) {
    let files = files.to_vec();
    let codes: Vec<u16> = lab.in_router(move || {
        files
            .iter()
            .map(|(_, b)| http(&api(at), "POST", "/v1/zonefiles", b).0)
            .collect()
    });
    // 202: stored in the inbox until the node reads the announcement (every 5 s).
    assert!(
        codes.iter().all(|c| [200, 201, 202].contains(c)),
        "uploads at {at}: {codes:?}"
    );
}

fn announce(wl: &Path, files: &[(atlas_core::zonefile::Hash160, Vec<u8>)]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(wl).unwrap();
    for (h, _) in files {
        writeln!(f, "{h}").unwrap();
    }
}

fn write_config(dir: &Path, i: usize, seeds: &[String], wl: &Path) -> PathBuf {
    let path = dir.join(format!("node{i}.toml"));
    let seeds: Vec<String> = seeds.iter().map(|s| format!("{s:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[api]\nlisten = \"{}\"\n[p2p]\nlisten = [\"/ip4/10.{i}.0.2/tcp/6264\"]\nseeds = [{}]\n[atlas]\nrequest_timeout_ms = 5000\n[whitelist]\nfile = {:?}\n",
            dir.join(format!("node{i}")).display().to_string(),
            api(i),
            seeds.join(", "),
            wl.display().to_string()
        ),
    )
    .unwrap();
    path
}

#[test]
fn nodes_in_namespaces_converge_after_a_partition_and_through_churn() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::new();
    let wl = dir.path().join("whitelist.txt");
    std::fs::write(&wl, "").unwrap();
    // Seeds on both sides of the partition to come: nodes 1 and 4.
    let mut seeds = Vec::new();
    for i in [1, 4] {
        let data = dir.path().join(format!("node{i}"));
        std::fs::create_dir_all(&data).unwrap();
        let id = atlas_node::net::node::load_identity(&data)
            .unwrap()
            .public()
            .to_peer_id();
        seeds.push(format!("/ip4/10.{i}.0.2/tcp/6264/p2p/{id}"));
    }
    let configs: Vec<PathBuf> = (1..=NODES)
        .map(|i| write_config(dir.path(), i, &seeds, &wl))
        .collect();
    let mut nodes: Vec<Option<NodeProcess>> = (1..=NODES)
        .map(|i| Some(NodeProcess::start_in_netns(&lab.node(i), &configs[i - 1])))
        .collect();
    let all: Vec<usize> = (1..=NODES).collect();
    let (left, right) = ([1, 2, 3], [4, 5, 6]);

    let files = zonefiles(60);
    let (first, rest) = files.split_at(10);
    let (left_files, rest) = rest.split_at(15);
    let (right_files, churn_files) = rest.split_at(15);
    announce(&wl, first);
    upload(&lab, 1, first);
    await_present(&lab, &all, 10, "the network forms", Duration::from_secs(90));

    lab.partition(&left, &right, true);
    announce(&wl, left_files);
    announce(&wl, right_files);
    upload(&lab, 2, left_files);
    upload(&lab, 5, right_files);
    await_present(
        &lab,
        &left,
        25,
        "the left side spreads its files",
        Duration::from_secs(90),
    );
    await_present(
        &lab,
        &right,
        25,
        "the right side spreads its files",
        Duration::from_secs(90),
    );
    let p = presents(&lab);
    assert!(
        p.iter().all(|x| *x == Some(25)),
        "nothing crossed the partition: {p:?}"
    );

    lab.partition(&left, &right, false);
    await_present(
        &lab,
        &all,
        40,
        "healed: every node holds both sides' files",
        Duration::from_secs(180),
    );

    // Churn: two nodes die (kill -9) while files are published, then come back.
    for i in [3, 6] {
        nodes[i - 1].take().unwrap().kill();
    }
    announce(&wl, churn_files);
    upload(&lab, 1, &churn_files[..10]);
    upload(&lab, 4, &churn_files[10..]);
    await_present(
        &lab,
        &[1, 2, 4, 5],
        60,
        "the living nodes take the new files",
        Duration::from_secs(90),
    );
    for i in [3, 6] {
        nodes[i - 1] = Some(NodeProcess::start_in_netns(&lab.node(i), &configs[i - 1]));
    }
    await_present(
        &lab,
        &all,
        60,
        "restarted nodes catch up",
        Duration::from_secs(120),
    );
    for n in nodes.into_iter().flatten() {
        n.kill();
    }
}
