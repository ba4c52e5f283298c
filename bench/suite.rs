//! The benchmark suite: every scenario back to back with its baseline, in one invocation, and
//! bench/RESULTS.md rewritten from what it measured.
//!
//! Run: `cargo bench --bench suite` (about ten minutes; `-- --quick` for a smaller smoke run
//! that writes bench/out/RESULTS.quick.md instead). Servers run pinned to CPU 0, the bots
//! (`chatgate-bots`) to CPU 1; every figure is reported beside a baseline measured in the same
//! run, and as a ratio to it.
//!
//! | # | Scenario | Baseline |
//! |---|---|---|
//! | S1 | RSS per authenticated idle session | the bare tokio-tungstenite echo server (bench/bare.rs) |
//! | S2 | sessions opened and authenticated per second | the bare server's handshakes per second |
//! | S3 | one-to-one: max persisted msg/s, p50/p99 at fixed rates, SQLite and PostgreSQL | the targets |
//! | S4 | 1000-member group fan-out: max deliveries/s, p99 at a fixed rate | bare broadcast; socket.io 4 |
//! | S5 | the same group split over two nodes and Redis | one node; socket.io's Redis adapter |
//! | S6 | one member never reads | the same run without it |
//! | S7 | healthy clients' p99 during a 10,000-frame malformed flood | the same clients without it |
//! | S8 | a person's login p99 during a hashing flood | the same logins in calm |
//! | S9 | /metrics after 3,000 made-up paths | /metrics before them |
//! | S10 | 1,000 conversations of 100 messages: list p99, sync cost against 10 conversations | the targets; the same sync with 10 |
//! | S11 | a mix of sends, edits, reactions, recalls and reads through two SIGKILLs: lost, duplicated, out of order, missed, unread off | 0 of each |

mod bare;
mod common;
mod scenarios;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;

use scenarios::{exact, fanout, logins, memory, messages, robustness, unread};

/// Sizes of a run.
struct Sizes {
    idle_sessions: usize,
    devices: usize,
    seconds: u64,
    members: usize,
    pairs: usize,
    storm_users: usize,
}

const FULL: Sizes =
    Sizes { idle_sessions: 18_000, devices: 15, seconds: 10, members: 1000, pairs: 32, storm_users: 1000 };
const QUICK: Sizes = Sizes { idle_sessions: 1_500, devices: 15, seconds: 3, members: 200, pairs: 8, storm_users: 100 };

/// A scenario of the suite.
type Scenario = fn(&mut Report, &Sizes);

/// One line of the summary.
struct Row {
    id: &'static str,
    what: String,
    ours: String,
    baseline: String,
    ratio: String,
    target: String,
    met: String,
}

/// What a run gathers.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    details: String,
    peers: Vec<String>,
}

impl Report {
    /// Adds a summary line; `cells` are chatgate's figure, the baseline's and their ratio.
    fn row(&mut self, id: &'static str, what: &str, cells: [String; 3], target: &str, met: Option<bool>) {
        let met = match met {
            Some(true) => "yes".to_owned(),
            Some(false) => "**no**".to_owned(),
            None => "n/a".to_owned(),
        };
        let [ours, baseline, ratio] = cells;
        self.rows.push(Row { id, what: what.to_owned(), ours, baseline, ratio, target: target.to_owned(), met });
    }

    fn detail(&mut self, text: &str) {
        self.details.push_str(text);
        self.details.push('\n');
    }

    /// Notes a bots run: its command and its main figures.
    fn run(&mut self, label: &str, report: &Value, command: &str) {
        let s = &report["stats"];
        let lat = &s["latency"];
        let mut line = format!(
            "- {label}: sessions {}, sent {}, acked {}/s, deliveries {}/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            s["sessions"],
            s["sent"],
            s["acked_per_sec"],
            s["deliveries_per_sec"],
            f(&lat["p50_ms"]),
            f(&lat["p99_ms"]),
            f(&lat["p999_ms"]),
            f(&lat["max_ms"])
        );
        let gaps = &s["gaps"];
        let _ = write!(
            line,
            "; gaps: missing {}, duplicates {}, reordered {}",
            gaps["missing"], gaps["duplicates"], gaps["reordered"]
        );
        if s["connect_failures"].as_object().is_some_and(|m| !m.is_empty()) {
            let _ = write!(line, "; connect failures {}", s["connect_failures"]);
        }
        if s["errors"].as_object().is_some_and(|m| !m.is_empty()) {
            let _ = write!(line, "; errors {}", s["errors"]);
        }
        let _ = write!(line, "\n  `{command}`");
        self.detail(&line);
    }
}

/// The target column of a figure no issue sets a target for: it is reported, not judged.
const NO_TARGET: &str = "none set (figure only)";

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}", a / b) } else { "-".into() }
}

fn thousands(n: f64) -> String {
    let n = n.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {mem_gib:.0} GiB, Linux {}", kernel.trim())
}

fn today() -> String {
    let out = std::process::Command::new("date").arg("+%Y-%m-%d").output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}

fn write_results(report: &Report, quick: bool, took: Duration) {
    let mut md = String::new();
    let command = if quick { "cargo bench --bench suite -- --quick" } else { "cargo bench --bench suite" };
    let _ = writeln!(md, "# Benchmark results\n");
    let _ = writeln!(
        md,
        "Written by `{command}` on {} ({:.0} minutes). Machine: {}. Servers pinned to CPU 0 with taskset, the bots (`chatgate-bots`) to CPU 1; every ratio is against a baseline measured in the same run. Timings on a shared 2-core machine are noisy: compare only figures of one run.\n",
        today(),
        took.as_secs_f64() / 60.0,
        machine()
    );
    let mut peers = vec!["bare tokio-tungstenite servers (bench/bare.rs: an echo server with 4 KiB read buffers, the floor of S1 and S2; a broadcast server with batched writes, the ceiling of S4)".to_owned()];
    peers.extend(report.peers.iter().cloned());
    peers.dedup();
    let _ = writeln!(
        md,
        "Peers that ran: {}. Not run: soketi (it installs only with an npm override to a third-party repackage of uWebSockets.js, and the bots do not speak its Pusher protocol yet) and Centrifugo (it cannot be built here: no Go module proxy).\n",
        peers.join("; ")
    );
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(md, "| # | Scenario | chatgate | Baseline | Ratio | Target | Met |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in &report.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.id, r.what, r.ours, r.baseline, r.ratio, r.target, r.met
        );
    }
    md.push_str(&report.details);
    let path =
        if quick { common::root().join("bench/out/RESULTS.quick.md") } else { common::root().join("bench/RESULTS.md") };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("results dir");
    }
    std::fs::write(&path, md).expect("writing the results");
    println!("wrote {}", path.display());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let Some(mode @ ("bare" | "bare-echo")) = args.first().map(String::as_str) {
        let port: u16 = args.get(1).and_then(|p| p.parse().ok()).expect("bare PORT");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let served =
            if mode == "bare" { runtime.block_on(bare::serve(port)) } else { runtime.block_on(bare::echo(port)) };
        served.expect("bare server");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|l| l.split(',').map(str::to_owned).collect());
    let sizes = if quick { &QUICK } else { &FULL };
    let started = Instant::now();
    let mut report = Report::default();
    let scenarios: [(&str, Scenario); 11] = [
        ("S1", memory::s1),
        ("S2", memory::s2),
        ("S3", messages::s3),
        ("S4", fanout::s4),
        ("S5", fanout::s5),
        ("S6", robustness::s6),
        ("S7", robustness::s7),
        ("S8", logins::s8),
        ("S9", robustness::s9),
        ("S10", unread::s10),
        ("S11", exact::s11),
    ];
    for (id, scenario) in scenarios {
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == id)) {
            continue;
        }
        eprintln!("== {id}");
        scenario(&mut report, sizes);
    }
    if only.is_some() {
        for r in &report.rows {
            println!(
                "{} {}: {} vs {} = {} (target {}, met {})",
                r.id, r.what, r.ours, r.baseline, r.ratio, r.target, r.met
            );
        }
        print!("{}", report.details);
    } else {
        write_results(&report, quick, started.elapsed());
    }
}
