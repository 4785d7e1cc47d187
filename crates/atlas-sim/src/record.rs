//! What a run measures, and the files it leaves: coverage over time,
//! per-file propagation, bandwidth by kind, neighbour degrees, and a summary.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::SimError;
use super::node::{Kind, NodeId};
use super::scenario::Scenario;

pub struct Record {
    /// Alive nodes that count (everyone but Sybil nodes).
    pub live: u64,
    announced: u64,
    present_pairs: u64,
    holders: Vec<u32>,
    announced_at: Vec<Option<u64>>,
    /// When a user first handed the file to some node.
    published_at: Vec<Option<u64>>,
    reached: Vec<[Option<u64>; 3]>,
    /// (node, file) pairs stored while the run went on, the initial holdings aside.
    pub acquired: u64,
    not_full: std::collections::BTreeSet<u32>,
    bytes: [u64; 5],
    msgs: [u64; 5],
    last_bytes: [u64; 5],
    last_msgs: [u64; 5],
    last_sample_us: u64,
    samples: u64,
    nodes_ever: u64,
    /// When coverage last became full (and whether it is full now).
    became_full_us: Option<u64>,
    pub coverage_rows: Vec<(f64, u64, u64, f64, bool)>,
    pub bandwidth_rows: Vec<(f64, Kind, f64, f64)>,
    pub degree_rows: Vec<(f64, usize, usize)>,
    min_coverage_after_full: Option<f64>,
    pub honest_neighbor_fraction: Option<f64>,
    pub walk_visits: Vec<(u64, f64)>,
    /// The cores' own counters, summed over every node of the run.
    pub core_stats: BTreeMap<String, u64>,
    /// The driver's: requests failed by dials or closes, withheld, lost.
    pub driver_stats: BTreeMap<&'static str, u64>,
    /// Nodes that lost their data: (node, when, when they held everything again).
    pub losses: Vec<(NodeId, u64, Option<u64>)>,
}

/// The run in numbers; `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub profile: String,
    pub seed: u64,
    pub nodes: usize,
    pub live_nodes_end: u64,
    pub files_announced: u64,
    pub sim_s: f64,
    pub wall_s: f64,
    pub events: u64,
    pub events_per_s: f64,
    pub sim_to_wall: f64,
    pub final_coverage: f64,
    /// When coverage last became full, if it is full at the end.
    pub time_to_full_coverage_s: Option<f64>,
    pub min_coverage_after_first_full: Option<f64>,
    /// Seconds from announcement until every live node held the file.
    pub propagation_p50_s: Option<f64>,
    pub propagation_p99_s: Option<f64>,
    /// Seconds from the moment a file could spread (announced, and handed
    /// to some node) until every live node held it.
    pub publish_to_all_p50_s: Option<f64>,
    pub publish_to_all_p99_s: Option<f64>,
    /// Zone-file payloads received (pushed or fetched, duplicates included)
    /// per file a node stored during the run.
    pub copies_per_stored_file: Option<f64>,
    /// The same to 99% of live nodes (under churn, "all" rarely holds).
    pub reach99_p50_s: Option<f64>,
    pub reach99_p99_s: Option<f64>,
    pub propagation_files: usize,
    pub files_never_full: usize,
    pub bytes_per_node: f64,
    pub bytes_by_kind: BTreeMap<String, u64>,
    pub messages_by_kind: BTreeMap<String, u64>,
    pub core_stats: BTreeMap<String, u64>,
    pub driver_stats: BTreeMap<String, u64>,
    pub honest_neighbor_fraction: Option<f64>,
    pub walk_uniformity: Option<Uniformity>,
    pub data_loss_nodes: usize,
    pub data_loss_recovered: usize,
    pub data_loss_recovery_max_s: Option<f64>,
}

/// A chi-square test that walk visits are spread evenly over nodes, given
/// how long each was alive. `z` is the Wilson-Hilferty normal score: under
/// uniformity it is a standard normal draw, so |z| < 3.1 passes at 0.1%.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Uniformity {
    pub nodes: usize,
    pub visits: u64,
    pub chi2: f64,
    pub dof: usize,
    pub z: f64,
}

pub fn uniformity(visits: &[(u64, f64)]) -> Option<Uniformity> {
    let total: u64 = visits.iter().map(|v| v.0).sum();
    let exposure: f64 = visits.iter().map(|v| v.1).sum();
    if visits.len() < 2 || total == 0 {
        return None;
    }
    let chi2: f64 = visits
        .iter()
        .map(|(o, t)| {
            let e = total as f64 * t / exposure;
            (*o as f64 - e).powi(2) / e
        })
        .sum();
    let k = (visits.len() - 1) as f64;
    let z = ((chi2 / k).cbrt() - (1.0 - 2.0 / (9.0 * k))) / (2.0 / (9.0 * k)).sqrt();
    Some(Uniformity {
        nodes: visits.len(),
        visits: total,
        chi2,
        dof: visits.len() - 1,
        z,
    })
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i])
}

fn s(us: u64) -> f64 {
    us as f64 / 1e6
}

impl Record {
    pub fn new() -> Self {
        Record {
            live: 0,
            announced: 0,
            present_pairs: 0,
            holders: Vec::new(),
            announced_at: Vec::new(),
            published_at: Vec::new(),
            reached: Vec::new(),
            acquired: 0,
            not_full: Default::default(),
            bytes: [0; 5],
            msgs: [0; 5],
            last_bytes: [0; 5],
            last_msgs: [0; 5],
            last_sample_us: 0,
            samples: 0,
            nodes_ever: 0,
            became_full_us: None,
            coverage_rows: Vec::new(),
            bandwidth_rows: Vec::new(),
            degree_rows: Vec::new(),
            min_coverage_after_full: None,
            honest_neighbor_fraction: None,
            walk_visits: Vec::new(),
            core_stats: BTreeMap::new(),
            driver_stats: BTreeMap::new(),
            losses: Vec::new(),
        }
    }

    pub fn set_files(&mut self, total: usize, _initial: usize) {
        self.holders = vec![0; total];
        self.announced_at = vec![None; total];
        self.published_at = vec![None; total];
        self.reached = vec![[None; 3]; total];
    }

    pub fn publish(&mut self, file: u32, now: u64) {
        self.published_at[file as usize].get_or_insert(now);
    }

    pub fn announce(&mut self, file: u32, now: u64) {
        self.announced_at[file as usize] = Some(now);
        self.announced += 1;
        self.present_pairs += self.holders[file as usize] as u64;
        self.not_full.insert(file);
        self.check_file(file, now);
        self.check_full(now);
    }

    /// A reorganisation took `file`'s announcement off the chain: it no
    /// longer counts toward coverage or propagation.
    pub fn unannounce(&mut self, file: u32, now: u64) {
        let f = file as usize;
        if self.announced_at[f].take().is_none() {
            return;
        }
        self.announced -= 1;
        self.present_pairs -= self.holders[f] as u64;
        self.not_full.remove(&file);
        self.reached[f] = [None; 3];
        self.published_at[f] = None;
        self.check_full(now);
    }

    pub fn sent(&mut self, kind: Kind, bytes: usize) {
        self.bytes[kind as usize] += bytes as u64;
        self.msgs[kind as usize] += 1;
    }

    pub fn count(&mut self, what: &'static str) {
        *self.driver_stats.entry(what).or_default() += 1;
    }

    pub fn coverage(&self) -> f64 {
        if self.live == 0 || self.announced == 0 {
            return 1.0;
        }
        self.present_pairs as f64 / (self.live * self.announced) as f64
    }

    pub fn fully_covered(&self) -> bool {
        self.live > 0 && self.present_pairs == self.live * self.announced
    }

    fn check_full(&mut self, now: u64) {
        match (self.fully_covered(), self.became_full_us) {
            (true, None) => self.became_full_us = Some(now),
            (false, Some(_)) => self.became_full_us = None,
            _ => {}
        }
    }

    /// Marks, per file, since when it has been on 50%, 99% and all live
    /// nodes; a mark is cleared when the share falls below it again (a node
    /// joined without the file), so at the end it says when the file last
    /// got there.
    fn check_file(&mut self, file: u32, now: u64) {
        let f = file as usize;
        if self.announced_at[f].is_none() || self.live == 0 {
            return;
        }
        let h = self.holders[f] as u64;
        let marks = [
            h * 2 >= self.live,
            h * 100 >= self.live * 99,
            h >= self.live,
        ];
        for (slot, hit) in self.reached[f].iter_mut().zip(marks) {
            match (hit, slot.is_some()) {
                (true, false) => *slot = Some(now),
                (false, true) => *slot = None,
                _ => {}
            }
        }
        if marks[2] {
            self.not_full.remove(&file);
        } else {
            self.not_full.insert(file);
        }
    }

    /// A counted node stored `file`.
    pub fn stored(&mut self, file: u32, now: u64) {
        self.acquired += 1;
        self.holders[file as usize] += 1;
        if self.announced_at[file as usize].is_some() {
            self.present_pairs += 1;
        }
        self.check_file(file, now);
        self.check_full(now);
    }

    pub fn node_up(&mut self, held: &[u32], now: u64) {
        self.live += 1;
        self.nodes_ever += 1;
        for &f in held {
            self.holders[f as usize] += 1;
            if self.announced_at[f as usize].is_some() {
                self.present_pairs += 1;
            }
        }
        // Files the newcomer lacks may have dropped below a mark.
        for f in 0..self.reached.len() as u32 {
            if self.reached[f as usize][0].is_some() {
                self.check_file(f, now);
            }
        }
        self.check_full(now);
    }

    pub fn node_down(&mut self, held: &[u32], now: u64) {
        self.live -= 1;
        for &f in held {
            self.holders[f as usize] -= 1;
            if self.announced_at[f as usize].is_some() {
                self.present_pairs -= 1;
            }
        }
        for f in 0..self.reached.len() as u32 {
            if self.announced_at[f as usize].is_some() {
                self.check_file(f, now);
            }
        }
        self.check_full(now);
    }

    /// Seconds from announcement to mark `col` (0: 50%, 1: 99%, 2: all) per file that got there.
    pub fn reach_times(&self, col: usize) -> Vec<f64> {
        (0..self.reached.len())
            .filter_map(|f| Some(s(self.reached[f][col]? - self.announced_at[f]?)))
            .collect()
    }

    pub fn announced_files(&self) -> usize {
        self.announced as usize
    }

    pub fn data_lost(&mut self, node: NodeId, now: u64) {
        self.losses.push((node, now, None));
    }

    /// Whether this sample should also record neighbour degrees.
    pub fn wants_degrees(&self) -> bool {
        self.samples.is_multiple_of(12)
    }

    pub fn sample(&mut self, now: u64, partitioned: bool, degrees: Option<Vec<usize>>) {
        let t = s(now);
        let not_full: Vec<u32> = self.not_full.iter().copied().collect();
        for f in not_full {
            self.check_file(f, now);
        }
        self.check_full(now);
        let cov = self.coverage();
        if self.became_full_us.is_some() || self.min_coverage_after_full.is_some() {
            let m = self.min_coverage_after_full.get_or_insert(cov);
            *m = m.min(cov);
        }
        self.coverage_rows
            .push((t, self.live, self.announced, cov, partitioned));
        let dt = s(now.saturating_sub(self.last_sample_us));
        if dt > 0.0 && self.live > 0 {
            for k in Kind::ALL {
                let i = k as usize;
                let per = |x: u64| x as f64 / self.live as f64 / dt;
                self.bandwidth_rows.push((
                    t,
                    k,
                    per(self.bytes[i] - self.last_bytes[i]),
                    per(self.msgs[i] - self.last_msgs[i]),
                ));
            }
        }
        self.last_bytes = self.bytes;
        self.last_msgs = self.msgs;
        self.last_sample_us = now;
        if let Some(d) = degrees {
            let mut hist: BTreeMap<usize, usize> = BTreeMap::new();
            for x in d {
                *hist.entry(x).or_default() += 1;
            }
            for (deg, count) in hist {
                self.degree_rows.push((t, deg, count));
            }
        }
        self.samples += 1;
    }

    pub fn summary(
        &self,
        sc: &Scenario,
        seed: u64,
        events: u64,
        sim_s: f64,
        wall: std::time::Duration,
    ) -> Summary {
        let wall_s = wall.as_secs_f64();
        // Propagation over files announced after the start when there are
        // any; otherwise over the initial files (a bootstrap).
        let later: Vec<usize> = (0..self.announced_at.len())
            .filter(|&f| self.announced_at[f].is_some_and(|t| t > 0))
            .collect();
        let pool: Vec<usize> = if later.is_empty() {
            (0..self.announced_at.len())
                .filter(|&f| self.announced_at[f].is_some())
                .collect()
        } else {
            later
        };
        let times_to = |col: usize| {
            let mut t: Vec<f64> = pool
                .iter()
                .filter_map(|&f| Some(s(self.reached[f][col]? - self.announced_at[f]?)))
                .collect();
            t.sort_by(f64::total_cmp);
            t
        };
        let times = times_to(2);
        let times99 = times_to(1);
        let mut from_publish: Vec<f64> = pool
            .iter()
            .filter_map(|&f| {
                let start = self.announced_at[f]?.max(self.published_at[f]?);
                Some(s(self.reached[f][2]?.saturating_sub(start)))
            })
            .collect();
        from_publish.sort_by(f64::total_cmp);
        let copies = self.core_stats.get("files_fetched").copied().unwrap_or(0)
            + self.core_stats.get("pushes_received").copied().unwrap_or(0);
        let total_bytes: u64 = self.bytes.iter().sum();
        let recovered: Vec<f64> = self
            .losses
            .iter()
            .filter_map(|(_, at, back)| Some(s(back.as_ref()? - at)))
            .collect();
        Summary {
            scenario: sc.name.clone(),
            profile: format!("{:?}", sc.profile).to_lowercase(),
            seed,
            nodes: sc.nodes,
            live_nodes_end: self.live,
            files_announced: self.announced,
            sim_s,
            wall_s,
            events,
            events_per_s: events as f64 / wall_s.max(1e-9),
            sim_to_wall: sim_s / wall_s.max(1e-9),
            final_coverage: self.coverage(),
            time_to_full_coverage_s: self.became_full_us.map(s),
            min_coverage_after_first_full: self.min_coverage_after_full,
            propagation_p50_s: percentile(&times, 0.5),
            propagation_p99_s: percentile(&times, 0.99),
            publish_to_all_p50_s: percentile(&from_publish, 0.5),
            publish_to_all_p99_s: percentile(&from_publish, 0.99),
            copies_per_stored_file: (self.acquired > 0)
                .then(|| copies as f64 / self.acquired as f64),
            reach99_p50_s: percentile(&times99, 0.5),
            reach99_p99_s: percentile(&times99, 0.99),
            propagation_files: pool.len(),
            files_never_full: pool.len() - times.len(),
            bytes_per_node: total_bytes as f64 / self.nodes_ever.max(1) as f64,
            bytes_by_kind: Kind::ALL
                .iter()
                .map(|k| (k.label().to_string(), self.bytes[*k as usize]))
                .collect(),
            messages_by_kind: Kind::ALL
                .iter()
                .map(|k| (k.label().to_string(), self.msgs[*k as usize]))
                .collect(),
            core_stats: self.core_stats.clone(),
            driver_stats: self
                .driver_stats
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            honest_neighbor_fraction: self.honest_neighbor_fraction,
            walk_uniformity: uniformity(&self.walk_visits),
            data_loss_nodes: self.losses.len(),
            data_loss_recovered: recovered.len(),
            data_loss_recovery_max_s: recovered.iter().copied().reduce(f64::max),
        }
    }

    pub fn write(&self, out: &Path, summary: &Summary) -> Result<(), SimError> {
        let file = |name: &str| -> Result<std::io::BufWriter<std::fs::File>, SimError> {
            let path = out.join(name);
            std::fs::File::create(&path)
                .map(std::io::BufWriter::new)
                .map_err(|source| SimError::Output {
                    path: path.display().to_string(),
                    source,
                })
        };
        let io = |name: &str| {
            let path = out.join(name).display().to_string();
            move |source| SimError::Output { path, source }
        };
        let mut w = file("coverage.csv")?;
        writeln!(w, "t_s,live_nodes,announced,coverage,partitioned").map_err(io("coverage.csv"))?;
        for (t, live, ann, cov, part) in &self.coverage_rows {
            writeln!(w, "{t:.3},{live},{ann},{cov:.6},{}", *part as u8)
                .map_err(io("coverage.csv"))?;
        }
        let mut w = file("propagation.csv")?;
        writeln!(w, "file,announced_s,t50_s,t99_s,t100_s").map_err(io("propagation.csv"))?;
        for (f, at) in self.announced_at.iter().enumerate() {
            let Some(at) = at else { continue };
            let rel = |x: Option<u64>| x.map(|x| format!("{:.3}", s(x - at))).unwrap_or_default();
            let [a, b, c] = self.reached[f];
            writeln!(w, "{f},{:.3},{},{},{}", s(*at), rel(a), rel(b), rel(c))
                .map_err(io("propagation.csv"))?;
        }
        let mut w = file("bandwidth.csv")?;
        writeln!(w, "t_s,kind,bytes_per_node_per_s,messages_per_node_per_s")
            .map_err(io("bandwidth.csv"))?;
        for (t, k, b, m) in &self.bandwidth_rows {
            writeln!(w, "{t:.3},{},{b:.3},{m:.5}", k.label()).map_err(io("bandwidth.csv"))?;
        }
        let mut w = file("degree.csv")?;
        writeln!(w, "t_s,degree,nodes").map_err(io("degree.csv"))?;
        for (t, d, n) in &self.degree_rows {
            writeln!(w, "{t:.3},{d},{n}").map_err(io("degree.csv"))?;
        }
        let json = serde_json::to_string_pretty(summary).expect("summary serializes");
        std::fs::write(out.join("summary.json"), json + "\n").map_err(io("summary.json"))?;
        Ok(())
    }
}
