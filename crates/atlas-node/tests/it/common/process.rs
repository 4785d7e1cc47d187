//! `atlas node` as a child process: started from a config, its log kept,
//! stopped by its own handle (never by name).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct NodeProcess {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl NodeProcess {
    /// Starts `atlas node --config` and returns once it logged "node started".
    pub fn start(config: &std::path::Path) -> Self {
        Self::spawn(config, false)
    }

    /// As `start`, with SIGXFSZ ignored (inherited through exec), so writes
    /// past a file-size limit fail with EFBIG instead of killing the node.
    pub fn start_ignoring_sigxfsz(config: &std::path::Path) -> Self {
        Self::spawn(config, true)
    }

    /// As `start`, inside the network namespace `netns` (`ip netns exec`
    /// execs the node, so the child's pid is the node's).
    pub fn start_in_netns(netns: &str, config: &std::path::Path) -> Self {
        Self::spawn_with(Some(netns), config, false)
    }

    fn spawn(config: &std::path::Path, ignore_sigxfsz: bool) -> Self {
        Self::spawn_with(None, config, ignore_sigxfsz)
    }

    fn spawn_with(netns: Option<&str>, config: &std::path::Path, ignore_sigxfsz: bool) -> Self {
        let atlas = super::atlas_bin();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(atlas);
                c
            }
            None => Command::new(atlas),
        };
        cmd.args(["node", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if ignore_sigxfsz {
            // SAFETY: signal() is async-signal-safe; nothing else runs in the child.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let started = line.contains("node started");
            log.lock().unwrap().push(line);
            if started {
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "atlas node exited at start: {:#?}",
            log.lock().unwrap()
        );
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        NodeProcess { child, log }
    }

    /// Sets the largest file the process may write (None: unlimited).
    pub fn limit_file_size(&self, bytes: Option<u64>) {
        self.set_limit(libc::RLIMIT_FSIZE, bytes);
    }

    /// Sets how many files the process may have open (soft limit).
    pub fn limit_open_files(&self, n: u64) {
        self.set_limit(libc::RLIMIT_NOFILE, Some(n));
    }

    fn set_limit(&self, resource: libc::__rlimit_resource_t, soft: Option<u64>) {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscalls on our own child's pid with valid structs.
        let rc = unsafe { libc::prlimit(pid, resource, std::ptr::null(), &mut old) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
        let rl = libc::rlimit {
            rlim_cur: soft.unwrap_or(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        let rc = unsafe { libc::prlimit(pid, resource, &rl, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_lines(&self, pat: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(pat)).cloned().collect()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
