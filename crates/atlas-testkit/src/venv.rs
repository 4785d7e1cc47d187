//! Python tools for tests, in a venv under `target/` made on first use, so
//! `cargo test` alone works on a fresh machine with Python 3. A failed
//! install is a test failure with pip's output, never a skip.

use std::path::PathBuf;
use std::process::Command;

pub use crate::paths::target_dir;

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e} (is python3 installed?)"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `target/<name>` holding `packages` (pip requirement strings); made again
/// when the list changes. Tests run in parallel: one provisions while the
/// others wait.
pub fn provision(name: &str, packages: &[&str]) -> PathBuf {
    static PROVISIONING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = PROVISIONING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = target_dir().join(name);
    let ready = venv.join(".installed");
    let wanted = packages.join(" ");
    if std::fs::read_to_string(&ready).ok().as_deref() != Some(wanted.as_str()) {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            &format!("creating the venv {}", venv.display()),
        );
        run(
            Command::new(venv.join("bin/python"))
                .args(["-m", "pip", "install", "--quiet"])
                .args(packages),
            &format!("pip install {wanted}"),
        );
        std::fs::write(&ready, &wanted).unwrap();
    }
    venv
}
