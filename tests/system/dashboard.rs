//! The Grafana dashboard, proved against a real Prometheus (Debian's
//! `prometheus`, installed by `.ci/run`): a devnet of 8 nodes on a sparse
//! overlay (2 outbound neighbours each, so new files travel by push and by
//! fetch) is scraped every second; after files are published and every
//! node holds them, every PromQL expression of every panel in
//! `dashboards/atlas.json` is evaluated through Prometheus's HTTP API and
//! must parse and return at least one number (not NaN).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atlas_core::CoreConfig;
use atlas_devnet::{Devnet, DevnetConfig};
use atlas_node::api::client;
use serde_json::Value;

use crate::common;

struct Prometheus {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Prometheus {
    fn start(dir: &std::path::Path, targets: &[String]) -> Prometheus {
        let bin = std::path::Path::new("/usr/bin/prometheus");
        assert!(
            bin.exists(),
            "prometheus is missing: apt-get install prometheus (.ci/run does)"
        );
        let config = dir.join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [alerts.yml]\nscrape_configs:\n  - job_name: atlas\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .unwrap();
        // The alert rules operators load (deploy/alerts.yml), evaluated too.
        std::fs::copy(
            common::root().join("deploy/alerts.yml"),
            dir.join("alerts.yml"),
        )
        .unwrap();
        let port = common::free_port();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("starting prometheus");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query; the whole `data` of Prometheus's answer.
    async fn query(&self, expr: &str) -> Result<Value, String> {
        let url = format!("{}/api/v1/query?query={}", self.url, encode(expr));
        let r = client::get(&url).await.map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))?;
        if v["status"] != "success" {
            return Err(format!("{} {}", v["errorType"], v["error"]));
        }
        Ok(v["data"].clone())
    }

    /// Waits until `expr` returns a vector whose every value satisfies `ok`.
    async fn wait_for(&mut self, expr: &str, limit: Duration, ok: impl Fn(f64) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(data) = self.query(expr).await {
                let values = numbers(&data);
                if !values.is_empty() && values.iter().all(|v| ok(*v)) {
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "`{expr}` not as wanted after {limit:?}: {:?}\n{}",
                self.query(expr).await,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The sample values of a query's vector (or scalar) result.
fn numbers(data: &Value) -> Vec<f64> {
    let value = |v: &Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok());
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| value(&s["value"]))
            .collect(),
        Some("scalar") => value(&data["result"]).into_iter().collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("dashboards/atlas.json")).unwrap(),
    )
    .unwrap();
    let panels: Vec<(String, String)> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap().to_string();
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
        })
        .collect();
    assert!(panels.len() >= 20, "the dashboard's queries: {panels:?}");

    let dir = tempfile::tempdir().unwrap();
    let nodes = 8;
    let net = Devnet::start(DevnetConfig {
        nodes,
        base_port: 0,
        data_dir: dir.path().join("devnet"),
        core: CoreConfig {
            neighbors: 2,
            max_inbound: 2,
            ..common::test_core()
        },
        block_interval: None,
    })
    .await
    .expect("devnet starts");
    for n in &net.nodes {
        common::wait(
            &n.node.handle,
            "the overlay forms",
            Duration::from_secs(60),
            |s| s.outbound_neighbors >= 2,
        )
        .await;
    }
    let targets: Vec<String> = net.nodes.iter().map(|n| n.api_addr.to_string()).collect();
    let mut prom = Prometheus::start(dir.path(), &targets);
    // Two scrapes of every node before anything happens, so rates and
    // quantiles see the change.
    prom.wait_for(
        "count_over_time(atlas_present[1m])",
        Duration::from_secs(60),
        |c| c >= 2.0,
    )
    .await;
    prom.wait_for("count(up == 1)", Duration::from_secs(60), |c| {
        c == nodes as f64
    })
    .await;

    let files = common::zonefiles(20);
    net.whitelist
        .announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    for (_, bytes) in &files {
        let r = client::post(&format!("{}/v1/zonefiles", net.nodes[0].api_url()), bytes)
            .await
            .unwrap();
        // 202: kept in the inbox until node 0's follower sees the announcement.
        assert!(matches!(r.status, 200..=202), "{}", r.text());
    }
    common::all_hold(&net, files.len() as u64, "every node holds the files").await;
    // Every node's last scrape shows all files held, and one more follows.
    prom.wait_for("min(atlas_present)", Duration::from_secs(60), |v| {
        v == files.len() as f64
    })
    .await;
    prom.wait_for(
        "count_over_time(atlas_present[1m])",
        Duration::from_secs(60),
        |c| c >= 4.0,
    )
    .await;

    let mut failures = Vec::new();
    for (title, expr) in &panels {
        match prom.query(expr).await {
            Ok(data) => {
                let values = numbers(&data);
                if !values.iter().any(|v| !v.is_nan()) {
                    failures.push(format!("{title}: `{expr}` returned no number: {data}"));
                }
            }
            Err(e) => failures.push(format!("{title}: `{expr}` failed: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every alert rule has been evaluated (every second, for as long as the
    // devnet has been scraped) without error, and none fires on a healthy
    // devnet.
    let r = client::get(&format!("{}/api/v1/rules", prom.url))
        .await
        .unwrap();
    let rules: Value = serde_json::from_slice(&r.body).unwrap();
    let mut seen = 0;
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            seen += 1;
            assert_eq!(rule["health"], "ok", "{rule}");
            assert_eq!(rule["state"], "inactive", "{rule}");
        }
    }
    assert_eq!(seen, 7, "the rules of deploy/alerts.yml: {rules}");
    net.shutdown().await;
}
