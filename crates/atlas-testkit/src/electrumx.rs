//! Provisions (`venv.rs`) and runs a real ElectrumX (PyPI `e-x` 2.0.0) for
//! tests.

use crate::venv;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PACKAGE: &str = "e-x[leveldb]==2.0.0";

/// e-x holds small responses up to 1 s as traffic padding; a sequential
/// client would wait that long per call. The launcher turns it off.
const LAUNCHER: &str = "import os, electrumx.server.transport as t\n\
t.PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = float(os.environ.get('EX_PAD_WAIT', '0'))\n\
from electrumx.cli.electrumx_server import main\n\
main()\n";

fn venv_dir() -> PathBuf {
    venv::target_dir().join("electrumx-venv")
}

/// The venv's python, with ElectrumX installed and the launcher beside it.
pub fn provision() -> PathBuf {
    let venv = venv::provision("electrumx-venv", &[PACKAGE]);
    let launcher = venv.join("launch_electrumx.py");
    if std::fs::read_to_string(&launcher).ok().as_deref() != Some(LAUNCHER) {
        std::fs::write(&launcher, LAUNCHER).unwrap();
    }
    venv.join("bin/python")
}

pub struct ElectrumX {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl ElectrumX {
    /// Starts ElectrumX on `daemon_url` (with `user:pass@`) and waits until
    /// its TCP port accepts connections, which it does only after syncing.
    pub fn start(daemon_url: &str, db_dir: &Path) -> ElectrumX {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(daemon_url, db_dir, port)
    }

    /// As `start`, on a given port.
    pub fn start_on(daemon_url: &str, db_dir: &Path, port: u16) -> ElectrumX {
        let python = provision();
        std::fs::create_dir_all(db_dir).unwrap();
        let log = db_dir.join("electrumx.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&python)
            .arg(venv_dir().join("launch_electrumx.py"))
            .env("DB_DIRECTORY", db_dir)
            .env("DB_ENGINE", "leveldb")
            .env("DAEMON_URL", daemon_url)
            .env("COIN", "Bitcoin")
            .env("NET", "regtest")
            .env("SERVICES", format!("tcp://127.0.0.1:{port}"))
            .env("PEER_DISCOVERY", "")
            .env("PEER_ANNOUNCE", "")
            .env("ALLOW_ROOT", "1")
            .env("DAEMON_POLL_INTERVAL_BLOCKS", "100")
            .env("DAEMON_POLL_INTERVAL_MEMPOOL", "100")
            .env("COST_SOFT_LIMIT", "0")
            .env("COST_HARD_LIMIT", "0")
            .env("CACHE_MB", "100")
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("starting ElectrumX");
        let mut ex = ElectrumX {
            child,
            url: format!("tcp://127.0.0.1:{port}"),
            log,
        };
        // ElectrumX gives no readiness signal but its listening port.
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = ex.child.try_wait().unwrap() {
                panic!("ElectrumX exited ({status}):\n{}", ex.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "ElectrumX did not listen in 90 s:\n{}",
                ex.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ex
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ElectrumX {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
