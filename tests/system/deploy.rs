//! The deploy files, proved with the tools that read them: the systemd unit
//! with `systemd-analyze verify`, the Kubernetes manifests against the API
//! schemas (`kubernetes-validate`, offline), the compose file against the
//! compose specification's schema (`check-jsonschema`), the Prometheus
//! config with `promtool`, and the container build's steps against the
//! project where no container engine runs. Every node config they carry is
//! checked by `atlas check-config`, and its paths and ports against the
//! file that runs it.
//!
//! The Python tools live in a venv under `target/` made on first use; the
//! Debian ones (`systemd`, `prometheus`) are installed by `.ci/run`. A
//! missing tool fails the test with what to install, never skips it.

use atlas_testkit::venv;

use crate::common::{self, host_tool, ok};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const PYTHON_TOOLS: &[&str] = &["check-jsonschema==0.39.0", "kubernetes-validate==1.37.0"];

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The venv's bin directory, with the Python tools installed.
fn python_tools() -> PathBuf {
    venv::provision("deploy-venv", PYTHON_TOOLS).join("bin")
}

/// YAML documents as JSON values (PyYAML, from the tools' venv).
fn yaml(path: &Path) -> Vec<Value> {
    let out = ok(Command::new(python_tools().join("python"))
        .args([
            "-c",
            "import sys, json, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        ])
        .arg(path));
    serde_json::from_str(&out).expect("JSON from PyYAML")
}

/// `atlas check-config` on a config's text: what it resolves to.
fn check_config(toml: &str, role: Option<&str>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlas.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(common::atlas_bin());
    cmd.arg("check-config").arg("--config").arg(&path);
    if let Some(role) = role {
        cmd.args(["--role", role]);
    }
    serde_json::from_str(&ok(&mut cmd)).expect("check-config prints JSON")
}

fn port_of(socket: &Value) -> u16 {
    let s = socket.as_str().expect("an address");
    s.rsplit(':').next().unwrap().parse().expect("a port")
}

/// The TCP and UDP ports of the p2p listen addresses.
fn p2p_ports(summary: &Value) -> Vec<(String, u16)> {
    summary["p2p_listen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let parts: Vec<&str> = a.as_str().unwrap().split('/').collect();
            (parts[3].to_string(), parts[4].parse().unwrap())
        })
        .collect()
}

/// A config a container runs: state under the volume, reachable from
/// outside the container, following the chain.
fn assert_container_config(summary: &Value, volume: &str, what: &str) {
    assert_eq!(
        summary["data_dir"], volume,
        "{what}: data_dir is the volume"
    );
    assert!(
        summary["api_listen"]
            .as_str()
            .unwrap()
            .starts_with("0.0.0.0:"),
        "{what}: the API must listen on every interface of the container: {summary}"
    );
    for a in summary["p2p_listen"].as_array().unwrap() {
        assert!(
            a.as_str().unwrap().starts_with("/ip4/0.0.0.0/"),
            "{what}: p2p must listen on every interface: {a}"
        );
    }
    assert!(
        summary["whitelist"]["chain"]["electrum"]
            .as_array()
            .is_some_and(|s| s.len() >= 2),
        "{what}: follows the chain through two Electrum servers or more: {summary}"
    );
}

#[test]
fn the_systemd_unit_verifies_with_the_binary_where_it_runs_it() {
    let analyze = host_tool("systemd-analyze", "systemd");
    // A root holding what the unit needs: systemd's own units, the binary
    // at ExecStart's path, and the unit itself.
    let root = tempfile::tempdir().unwrap();
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("multi-user.target").exists())
        .expect("systemd's units (apt-get install systemd)");
    std::fs::create_dir_all(root.path().join("usr/lib/systemd")).unwrap();
    ok(Command::new("cp")
        .arg("-r")
        .arg(units)
        .arg(root.path().join("usr/lib/systemd/system")));
    let unit =
        std::fs::read_to_string(common::root().join("deploy/systemd/atlas.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    let bin = root.path().join(args[0].trim_start_matches('/'));
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(common::atlas_bin(), &bin).unwrap();
    let etc = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("atlas.service"), &unit).unwrap();
    let out = run(Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("atlas.service"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        out.status
    );
    // The command line is the node's, and the config it reads (installed
    // from the example, as the guide says) keeps its state where the unit
    // lets it write.
    assert_eq!(&args[1..4], &["node", "--config", "/etc/atlas/atlas.toml"]);
    let example =
        std::fs::read_to_string(common::root().join("deploy/atlas.example.toml")).unwrap();
    let summary = check_config(&example, None);
    let key = |k: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k}= in the unit"))
            .to_string()
    };
    let data_dir = Path::new(&key("WorkingDirectory")).join(summary["data_dir"].as_str().unwrap());
    assert!(
        data_dir.starts_with(key("ReadWritePaths")),
        "the node's data_dir {} is outside ReadWritePaths",
        data_dir.display()
    );
}

#[test]
fn the_container_build_copies_what_the_project_builds_and_runs_a_valid_config() {
    let dockerfile = std::fs::read_to_string(common::root().join("deploy/Dockerfile")).unwrap();
    let instruction = |name: &str| -> Vec<String> {
        dockerfile
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(str::to_string)
            .collect()
    };
    // The build makes the binary the runtime stage copies.
    let build = instruction("RUN")
        .into_iter()
        .find(|r| r.starts_with("cargo build"))
        .expect("a cargo build step");
    assert_eq!(
        build,
        "cargo build --release --locked -p atlas-node --bin atlas"
    );
    let cargo_toml =
        std::fs::read_to_string(common::root().join("crates/atlas-node/Cargo.toml")).unwrap();
    assert!(cargo_toml.contains("[[bin]]\nname = \"atlas\""));
    let copies = instruction("COPY");
    assert!(
        copies.contains(&"--from=build /src/target/release/atlas /usr/local/bin/atlas".to_string()),
        "{copies:?}"
    );
    // The config copied is the one the entry point reads, and it is valid.
    let config_copy = copies
        .iter()
        .find(|c| c.ends_with(" /etc/atlas/atlas.toml"))
        .expect("a config copied to /etc/atlas/atlas.toml");
    let source = config_copy.split_whitespace().next().unwrap();
    assert_eq!(
        instruction("ENTRYPOINT"),
        vec![r#"["atlas", "node", "--config", "/etc/atlas/atlas.toml"]"#.to_string()]
    );
    let summary = check_config(
        &std::fs::read_to_string(common::root().join(source)).unwrap(),
        None,
    );
    // Its state is in the volume the atlas user owns.
    let volume = instruction("VOLUME").pop().expect("a VOLUME");
    assert_container_config(&summary, &volume, source);
    assert_eq!(instruction("USER"), vec!["atlas".to_string()]);
    assert!(dockerfile.contains(&format!("--home {volume} atlas")));
    assert!(dockerfile.contains(&format!("chown atlas:atlas {volume}")));
    // Its ports are the exposed ones.
    let exposed: Vec<String> = instruction("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let api = format!("{}/tcp", port_of(&summary["api_listen"]));
    assert!(exposed.contains(&api), "{api} not in EXPOSE {exposed:?}");
    for (proto, port) in p2p_ports(&summary) {
        let p = if proto == "tcp" { "tcp" } else { "udp" };
        assert!(
            exposed.contains(&format!("{port}/{p}")),
            "{port}/{p} not in EXPOSE {exposed:?}"
        );
    }
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let bin = python_tools();
    let compose = common::root().join("deploy/compose.yaml");
    ok(Command::new(bin.join("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(&compose));
    let doc = yaml(&compose).pop().expect("one document");
    let services = doc["services"].as_object().unwrap();
    let mut api_ports = Vec::new();
    for (name, service) in services {
        // Every file mounted from the project exists.
        for v in service["volumes"].as_array().into_iter().flatten() {
            let src = v.as_str().unwrap().split(':').next().unwrap();
            if src.starts_with('.') {
                assert!(
                    common::root().join("deploy").join(src).exists(),
                    "{name} mounts {src}, which does not exist"
                );
            }
        }
        let Some(configs) = service["configs"].as_array() else {
            continue;
        };
        // A node: its config is valid for its role, built by our Dockerfile.
        assert_eq!(service["build"]["dockerfile"], "deploy/Dockerfile");
        let role = service["command"]
            .as_array()
            .and_then(|c| c.iter().position(|a| a == "--role").map(|i| &c[i + 1]))
            .and_then(Value::as_str);
        for c in configs {
            assert_eq!(c["target"], "/etc/atlas/atlas.toml");
            let source = c["source"].as_str().unwrap();
            let content = doc["configs"][source]["content"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: config {source} is defined inline"));
            let summary = check_config(content, role);
            assert_container_config(&summary, "/var/lib/atlas", name);
            api_ports.push(port_of(&summary["api_listen"]));
        }
    }
    assert!(!api_ports.is_empty(), "the compose file runs nodes");
    // Prometheus scrapes the port the nodes' API listens on.
    let prometheus = yaml(&common::root().join("deploy/prometheus.yml"))
        .pop()
        .unwrap();
    for job in prometheus["scrape_configs"].as_array().unwrap() {
        for sd in job["dns_sd_configs"].as_array().into_iter().flatten() {
            let port = sd["port"].as_u64().unwrap() as u16;
            assert!(
                api_ports.iter().all(|p| *p == port),
                "{port} vs {api_ports:?}"
            );
            for name in sd["names"].as_array().unwrap() {
                assert!(
                    services.contains_key(name.as_str().unwrap()),
                    "prometheus scrapes {name}, which compose does not run"
                );
            }
        }
    }
}

#[test]
fn the_kubernetes_manifests_validate_against_the_api_schemas() {
    let bin = python_tools();
    let manifests = common::root().join("deploy/k8s/atlas.yaml");
    let out = ok(Command::new(bin.join("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(&manifests));
    assert!(
        !out.contains("ERROR") && !out.contains("WARN"),
        "kubernetes-validate: {out}"
    );
    let docs = yaml(&manifests);
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("a ConfigMap");
    let toml = config["data"]["atlas.toml"].as_str().unwrap();
    let mut sets = 0;
    for set in docs.iter().filter(|d| d["kind"] == "StatefulSet") {
        sets += 1;
        let name = set["metadata"]["name"].as_str().unwrap();
        // Its headless service exists and selects its pods.
        let service = docs
            .iter()
            .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == set["spec"]["serviceName"])
            .unwrap_or_else(|| panic!("{name}: no Service {}", set["spec"]["serviceName"]));
        assert_eq!(
            service["spec"]["selector"], set["spec"]["selector"]["matchLabels"],
            "{name}: its service selects its pods"
        );
        let pod = &set["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let args = container["args"].as_array().unwrap();
        let role = args
            .iter()
            .position(|a| a == "--role")
            .map(|i| args[i + 1].as_str().unwrap());
        let summary = check_config(toml, role);
        let mounts = container["volumeMounts"].as_array().unwrap();
        let data = mounts.iter().find(|m| m["name"] == "data").unwrap();
        assert_container_config(&summary, data["mountPath"].as_str().unwrap(), name);
        // The volume is writable by the image's user.
        assert_eq!(pod["securityContext"]["fsGroup"], 10001, "{name}");
        let ports: Vec<(String, u64)> = container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["protocol"].as_str().unwrap().to_lowercase(),
                    p["containerPort"].as_u64().unwrap(),
                )
            })
            .collect();
        let api = u64::from(port_of(&summary["api_listen"]));
        assert!(ports.contains(&("tcp".into(), api)), "{name}: {ports:?}");
        for (proto, port) in p2p_ports(&summary) {
            let p = if proto == "tcp" { "tcp" } else { "udp" };
            assert!(
                ports.contains(&(p.into(), u64::from(port))),
                "{name}: {port}/{p} not in {ports:?}"
            );
        }
    }
    assert_eq!(sets, 2, "seeds and mirrors");
}

#[test]
fn the_prometheus_config_and_alert_rules_pass_promtool() {
    let promtool = host_tool("promtool", "prometheus");
    // `check config` also checks the rule files it names.
    let out = ok(Command::new(&promtool)
        .args(["check", "config"])
        .arg(common::root().join("deploy/prometheus.yml")));
    assert!(out.contains("alerts.yml"), "{out}");
    ok(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(common::root().join("deploy/alerts.yml")));
}
