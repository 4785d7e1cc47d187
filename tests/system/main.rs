//! System tests: they need root, Debian packages, systemd's and Prometheus's
//! tools, network namespaces. Not part of a developer's `cargo test`; run
//! with `cargo test -p atlas-system-tests` (README: Test). One binary.

mod common;

mod dashboard;
mod deploy;
mod image;
mod netns;
mod operator_guide;
mod readme_regtest;
