//! A private Docker engine for the Docker test.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::host::tail;
use super::sandbox::{spawn_logged, wait_for};
use crate::common::host_tool;

/// A Docker engine of the test's own: its own data root, sockets and mount
/// namespace, no bridge and no iptables rules on the host.
pub(super) struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    client: PathBuf,
}

impl Dockerd {
    pub(super) fn start() -> Dockerd {
        let dockerd = host_tool("dockerd", "docker.io");
        let client = host_tool("docker", "docker.io");
        // Short paths: containerd's sockets live under the exec root.
        let dir = tempfile::Builder::new()
            .prefix("atlas-dockerd-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::write(dir.path().join("daemon.json"), "{}").unwrap();
        let log = dir.path().join("dockerd.log");
        let mut cmd = Command::new(host_tool("setpriv", "util-linux"));
        cmd.args(["--pdeathsig", "KILL", "--"])
            .arg(host_tool("unshare", "util-linux"))
            .args(["--mount", "--propagation", "private", "--"])
            .arg(dockerd)
            .arg(format!(
                "--config-file={}",
                dir.path().join("daemon.json").display()
            ))
            .arg(format!("--data-root={}", dir.path().join("data").display()))
            .arg(format!("--exec-root={}", dir.path().join("exec").display()))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("dockerd.pid").display()
            ))
            .arg(format!(
                "--host=unix://{}",
                dir.path().join("docker.sock").display()
            ))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ]);
        let child = spawn_logged(cmd, &log);
        let d = Dockerd { child, dir, client };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.run(d.cmd().arg("info")).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start:\n{}",
                tail(&log)
            );
            sleep(Duration::from_millis(250));
        }
        d
    }

    pub(super) fn cmd(&self) -> Command {
        let mut c = Command::new(&self.client);
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.path().join("docker.sock").display()),
        )
        .env("DOCKER_CONFIG", self.dir.path().join("client"))
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CLI_HINTS", "false")
        .stdin(Stdio::null());
        c
    }

    pub(super) fn run(&self, cmd: &mut Command) -> Output {
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
    }

    pub(super) fn ok(&self, cmd: &mut Command) -> String {
        let out = self.run(cmd);
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}):\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.dir.path().join("dockerd.log"))
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.run(self.cmd().args(["ps", "-aq"]));
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.run(self.cmd().args(["rm", "-f", "-v", id]));
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        if wait_for(&mut self.child, Duration::from_secs(30)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
