//! The simulator at small scale, on the scenario files that ship in
//! `simulations/scenarios/`: outcomes asserted, and runs reproducible from
//! their seed. The full-size runs are benchmarks (simulations/README.md).

use std::path::{Path, PathBuf};

use atlas_sim::{Overrides, Scenario, Summary};

fn scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../simulations/scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path).unwrap()
}

fn run(sc: Scenario, seed: u64, nodes: usize, files: usize, out: &Path) -> Summary {
    let opts = Overrides {
        seed: Some(seed),
        nodes: Some(nodes),
        files: Some(files),
        progress: false,
        no_plots: true,
    };
    atlas_sim::run(sc, &opts, out).unwrap()
}

const CSVS: [&str; 4] = [
    "coverage.csv",
    "propagation.csv",
    "bandwidth.csv",
    "degree.csv",
];

fn csvs(dir: &Path) -> Vec<Vec<u8>> {
    CSVS.iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

#[test]
fn same_seed_same_csvs_other_seed_other_csvs() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = scenario("churn");
    sc.duration_s = 900.0;
    sc.churn.until_s = 800.0;
    sc.churn.rate_per_hour = 2.0;
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    run(sc.clone(), 7, 40, 60, &a);
    run(sc.clone(), 7, 40, 60, &b);
    run(sc, 8, 40, 60, &c);
    assert_eq!(csvs(&a), csvs(&b), "same seed, same bytes");
    assert_ne!(csvs(&a)[0], csvs(&c)[0], "another seed, another run");
}

#[test]
fn bootstrap_reaches_full_coverage_and_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario("bootstrap");
    let opts = Overrides {
        seed: Some(3),
        nodes: Some(60),
        files: Some(200),
        progress: false,
        no_plots: false,
    };
    let s = atlas_sim::run(sc, &opts, dir.path()).unwrap();
    assert_eq!(s.final_coverage, 1.0);
    assert!(s.time_to_full_coverage_s.is_some());
    assert_eq!(s.files_never_full, 0);
    assert_eq!(
        s.core_stats["files_fetched"] - s.core_stats["duplicates_received"],
        59 * 200
    );
    for f in CSVS.iter().chain(&[
        "summary.json",
        "coverage.png",
        "coverage.svg",
        "propagation_cdf.png",
        "bandwidth.svg",
    ]) {
        let len = std::fs::metadata(dir.path().join(f)).unwrap().len();
        assert!(len > 100, "{f} is written");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["final_coverage"], 1.0);
    for key in [
        "time_to_full_coverage_s",
        "propagation_p50_s",
        "propagation_p99_s",
        "bytes_per_node",
        "events",
        "wall_s",
    ] {
        assert!(!json[key].is_null(), "summary.json has {key}");
    }
}

#[test]
fn a_partition_heals_to_full_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(scenario("partition"), 1, 60, 100, dir.path());
    let rows = std::fs::read_to_string(dir.path().join("coverage.csv")).unwrap();
    let during: Vec<f64> = rows
        .lines()
        .skip(1)
        .filter(|l| l.ends_with(",1"))
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(!during.is_empty(), "the partition is recorded");
    assert!(
        during.iter().any(|c| *c < 1.0),
        "files published on one side did not reach the other while split"
    );
    assert_eq!(s.final_coverage, 1.0, "healed");
    assert!(
        s.time_to_full_coverage_s.unwrap() > 1500.0,
        "after the heal"
    );
}

#[test]
fn a_reorganisation_seen_late_by_a_third_misleads_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(scenario("fork"), 1, 120, 120, dir.path());
    let stat = |k: &str| s.driver_stats.get(k).copied();
    // Both checks ran and found no holding credited to a neighbour that
    // lacks the file, during the disagreement or after it.
    assert_eq!(stat("misattributed_holdings_while_forked"), Some(0));
    assert_eq!(stat("misattributed_holdings_after_views_agree"), Some(0));
    // No request was wasted on a misread inventory (a "not found" answer).
    assert_eq!(stat("not_found"), None, "{:?}", s.driver_stats);
    assert_eq!(stat("not_found_after_views_agree"), None);
    assert_eq!(
        s.final_coverage, 1.0,
        "the new chain's files reach everyone"
    );
    assert_eq!(s.files_announced, 140);
}

#[test]
fn nodes_that_lose_their_data_recover_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(scenario("data-loss"), 1, 60, 300, dir.path());
    assert_eq!(s.data_loss_nodes, 15);
    assert_eq!(s.data_loss_recovered, 15);
    assert_eq!(s.final_coverage, 1.0);
}

#[test]
fn withholders_do_not_stop_coverage() {
    let dir = tempfile::tempdir().unwrap();
    // Enough files that fetches spread over several neighbours (four
    // batches of 100 in flight per neighbour).
    let s = run(scenario("withholding"), 1, 60, 2000, dir.path());
    assert!(
        s.driver_stats
            .get("requests_withheld")
            .copied()
            .unwrap_or(0)
            > 0,
        "withholders were asked and kept silent"
    );
    assert_eq!(s.final_coverage, 1.0);
}

/// Bound: with 10% of the nodes flooding peer exchange with 20,000 fake
/// identities, at least 75% of honest nodes' neighbour slots stay honest.
#[test]
fn a_sybil_flood_leaves_most_neighbours_honest() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = scenario("sybil");
    sc.adversary.sybil_nodes = 6;
    sc.duration_s = 900.0;
    let s = run(sc, 1, 60, 100, dir.path());
    let honest = s.honest_neighbor_fraction.unwrap();
    assert!(honest >= 0.75, "honest neighbour fraction {honest}");
    assert_eq!(s.final_coverage, 1.0);
}

#[test]
fn walk_samples_are_uniform_under_churn() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = scenario("churn");
    sc.duration_s = 12_000.0;
    sc.churn.until_s = 11_000.0;
    sc.publish.until_s = 3_000.0;
    let s = run(sc, 2, 120, 100, dir.path());
    let u = s.walk_uniformity.unwrap();
    assert!(
        u.visits > 5 * u.nodes as u64,
        "expected counts of 5 or more: {u:?}"
    );
    assert!(u.z.abs() < 3.1, "chi-square uniformity at 0.1%: {u:?}");
}

/// One path per node makes a lost packet costly; with 5% of packets lost
/// (each costing a retransmission timeout), relays, hedges and retries
/// still bring every published file to every node.
#[test]
fn no_file_is_left_undelivered_when_five_percent_of_packets_are_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = scenario("steady-nolag");
    sc.network.loss = 0.05;
    sc.duration_s = 1_400.0;
    let s = run(sc, 1, 120, 100, dir.path());
    assert_eq!(s.files_announced, 140, "two blocks of 20");
    assert_eq!(s.propagation_files, 40);
    assert_eq!(s.files_never_full, 0, "a published file missed a node");
    assert_eq!(s.final_coverage, 1.0);
    let stat = |k: &str| s.core_stats.get(k).copied().unwrap_or(0);
    assert!(
        stat("relay_waits") > 0,
        "files were relayed before they arrived"
    );
    assert!(stat("hedges") > 0, "lost packets were hedged");
}
