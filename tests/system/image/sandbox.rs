//! Running in the root filesystem as a container would: namespaces, the
//! image's user, PID 1, and stopping it with a signal.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::HOSTNAME;
use super::host::tail;
use super::rootfs::Account;
use crate::common::{host_tool, ok};

/// Mounts what a container has on the root, then runs the rest of the
/// command line (`env -i … chroot …`). $1: the root; $2: 1 for a container
/// of its own (loopback only), 0 for a build step (the host's network).
const SETUP: &str = r#"set -eu
root=$1 isolated=$2
shift 2
if [ "$isolated" = 1 ]; then ip link set lo up; printf %s "$HOSTNAME_FOR_IMAGE" > /proc/sys/kernel/hostname; fi
mount -t tmpfs -o nosuid,mode=0755 tmpfs "$root/dev"
for d in null zero full random urandom tty; do : > "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"; done
mkdir -p "$root/dev/shm" "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev,noexec tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
if [ "$isolated" = 0 ] && [ -f /etc/resolv.conf ] && [ ! -L "$root/etc/resolv.conf" ]; then
    [ -e "$root/etc/resolv.conf" ] || : > "$root/etc/resolv.conf"
    mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
fi
exec "$@"
"#;

/// `argv` in `root` as `account`, PID 1 of new PID and mount namespaces
/// (and network, UTS, IPC ones with only loopback when `isolated`), with
/// exactly `env`. The whole tree dies with the calling thread.
pub(super) fn sandbox(
    root: &Path,
    isolated: bool,
    account: &Account,
    env: &[(String, String)],
    workdir: &str,
    argv: &[String],
) -> Command {
    let mut c = Command::new(host_tool("setpriv", "util-linux"));
    c.args(["--pdeathsig", "KILL", "--"]);
    c.arg(host_tool("unshare", "util-linux"));
    c.args(["--mount", "--pid", "--fork", "--kill-child"]);
    c.arg(format!("--mount-proc={}", root.join("proc").display()));
    if isolated {
        host_tool("ip", "iproute2");
        c.args(["--net", "--uts", "--ipc"]);
    }
    c.args(["--", "/bin/sh", "-c", SETUP, "sh"])
        .arg(root)
        .arg(if isolated { "1" } else { "0" });
    c.arg(host_tool("env", "coreutils")).arg("-i");
    c.args(env.iter().map(|(k, v)| format!("{k}={v}")));
    c.arg(host_tool("chroot", "coreutils"));
    c.arg(format!("--userspec={}:{}", account.uid, account.gid));
    c.arg(format!(
        "--groups={}",
        account
            .groups
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    ));
    c.arg(root);
    if workdir != "/" {
        c.args(["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", workdir]);
    }
    c.args(argv);
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOSTNAME_FOR_IMAGE", HOSTNAME);
    c
}

/// Kills the sandbox (and with it the node) however the test ends.
pub(super) struct Guard(pub(super) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn spawn_logged(mut cmd: Command, log: &Path) -> Child {
    let out = File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// The host PID of the sandbox's PID 1: the one child of its `unshare`.
pub(super) fn pid1_of(sandbox: &mut Child, log: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(sandbox.id()) {
                return pid;
            }
        }
        if let Ok(Some(status)) = sandbox.try_wait() {
            panic!("the sandbox ended at once ({status}):\n{}", tail(log));
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox started no process:\n{}",
            tail(log)
        );
        sleep(Duration::from_millis(20));
    }
}

pub(super) fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(Duration::from_millis(50));
    }
}

pub(super) fn send_signal(pid: u32, signal: &str) {
    ok(Command::new(host_tool("kill", "procps"))
        .arg(format!("-{signal}"))
        .arg(pid.to_string()));
}
