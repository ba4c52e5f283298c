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

mod bare;
mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Postgres, Proc, bots, chatgate, redis, rss_kib, run_bots, socketio, state_dir};

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
            None => "-".to_owned(),
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

/// Holds `args` open on `server` and returns (bytes per session, sessions, report, command):
/// the server's RSS is read once the users exist and again while every session is open.
fn idle_memory(server: &Proc, args: &[&str]) -> (f64, u64, Value, String) {
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_kib(server.pid());
    let run = bots(args);
    let command = run.command.clone();
    run.wait_started();
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_kib(server.pid());
    let report = run.finish();
    let sessions = report["stats"]["sessions"].as_u64().unwrap_or(0);
    let per = if sessions > 0 { (during.saturating_sub(before) as f64 * 1024.0) / sessions as f64 } else { 0.0 };
    (per, sessions, report, command)
}

fn s1(report: &mut Report, z: &Sizes) {
    report.detail("\n## S1: idle sessions\n");
    let state = state_dir("sqlite");
    let bot_state = state.join("bots.json");
    let bot_state = bot_state.to_str().unwrap();
    let users = (z.idle_sessions / z.devices).to_string();
    let devices = z.devices.to_string();
    let n = z.idle_sessions.to_string();
    let seconds = "8";
    let sources = "127.0.0.2-127.0.0.9";

    let server = chatgate(&state, &[]);
    // The users exist and the allocator has seen sessions before the first reading.
    let url = server.url();
    run_bots(&[
        "idle",
        "--url",
        &url,
        "--users",
        &users,
        "--devices",
        "1",
        "--duration",
        "1",
        "--drain",
        "0",
        "--state",
        bot_state,
    ]);
    let args = [
        "idle",
        "--url",
        &url,
        "--users",
        &users,
        "--devices",
        &devices,
        "--duration",
        seconds,
        "--drain",
        "0",
        "--procs",
        "2",
        "--sources",
        sources,
        "--state",
        bot_state,
    ];
    let (ours, sessions, run, command) = idle_memory(&server, &args);
    report.run("chatgate", &run, &command);
    drop(server);

    let bare = common::bare_echo();
    let url = bare.url();
    let args = [
        "idle",
        "--protocol",
        "bare",
        "--url",
        &url,
        "--users",
        &n,
        "--duration",
        seconds,
        "--drain",
        "0",
        "--procs",
        "2",
        "--sources",
        sources,
    ];
    let (floor, bare_sessions, run, command) = idle_memory(&bare, &args);
    report.run("bare", &run, &command);
    report.detail(&format!(
        "- chatgate: {ours:.0} bytes of server RSS per authenticated session ({sessions} sessions); bare: {floor:.0} bytes per socket ({bare_sessions} sockets)"
    ));
    report.row(
        "S1",
        &format!("RSS per idle session, {n} sessions"),
        [format!("{ours:.0} B"), format!("{floor:.0} B (bare echo)"), ratio(ours, floor)],
        "≤ the bare server's",
        Some(ours <= floor),
    );
}

fn s2(report: &mut Report, z: &Sizes) {
    report.detail("\n## S2: connect and authenticate\n");
    let state = state_dir("sqlite");
    let bot_state = state.join("bots.json");
    let bot_state = bot_state.to_str().unwrap();
    let seconds = z.seconds.to_string();
    let users = z.storm_users.to_string();
    let server = chatgate(&state, &[]);
    let url = server.url();
    let (run, command) = run_bots(&[
        "storm",
        "--url",
        &url,
        "--users",
        &users,
        "--storm-rate",
        "0",
        "--concurrency",
        "64",
        "--duration",
        &seconds,
        "--drain",
        "0",
        "--state",
        bot_state,
    ]);
    report.run("chatgate", &run, &command);
    let ours = f(&run["stats"]["sessions"]) / z.seconds as f64;
    drop(server);
    let bare = common::bare_echo();
    let url = bare.url();
    let (run, command) = run_bots(&[
        "storm",
        "--protocol",
        "bare",
        "--url",
        &url,
        "--storm-rate",
        "0",
        "--concurrency",
        "64",
        "--duration",
        &seconds,
        "--drain",
        "0",
    ]);
    report.run("bare", &run, &command);
    let floor = f(&run["stats"]["sessions"]) / z.seconds as f64;
    report.detail("- chatgate's sessions authenticate with their token at the handshake (one database read) and wait for `session.ready`; the bare server only does the WebSocket handshake.");
    report.row(
        "S2",
        "sessions opened and authenticated per second",
        [format!("{}/s", thousands(ours)), format!("{}/s (bare handshakes)", thousands(floor)), ratio(ours, floor)],
        "-",
        None,
    );
}

fn direct_runs(report: &mut Report, z: &Sizes, label: &str, url: &str, bot_state: &str) -> (f64, Vec<(f64, f64, f64)>) {
    let seconds = z.seconds.to_string();
    let pairs = z.pairs.to_string();
    let (run, command) = run_bots(&[
        "direct",
        "--url",
        url,
        "--pairs",
        &pairs,
        "--window",
        "32",
        "--duration",
        &seconds,
        "--state",
        bot_state,
    ]);
    report.run(&format!("{label}, closed loop, 32 in flight per sender"), &run, &command);
    let max = f(&run["stats"]["acked_per_sec"]);
    let mut fixed = Vec::new();
    for rate in [5_000.0, 10_000.0] {
        let r = rate.to_string();
        let (run, command) = run_bots(&[
            "direct",
            "--url",
            url,
            "--pairs",
            &pairs,
            "--rate",
            &r,
            "--duration",
            &seconds,
            "--state",
            bot_state,
        ]);
        report.run(&format!("{label}, open loop at {} msg/s", thousands(rate)), &run, &command);
        fixed.push((rate, f(&run["stats"]["latency"]["p50_ms"]), f(&run["stats"]["latency"]["p99_ms"])));
    }
    (max, fixed)
}

fn s3(report: &mut Report, z: &Sizes) {
    report.detail("\n## S3: one-to-one messages\n");
    let state = state_dir("sqlite");
    let bot_state = state.join("bots.json");
    let server = chatgate(&state, &[]);
    let (max, fixed) = direct_runs(report, z, "SQLite", &server.url(), bot_state.to_str().unwrap());
    drop(server);
    let p99_at_half = fixed.iter().find(|(r, ..)| *r == 10_000.0).map_or(f64::NAN, |(_, _, p99)| *p99);
    report.row(
        "S3",
        "one-to-one, SQLite: max persisted msg/s",
        [format!("{}/s", thousands(max)), "20,000/s (target)".into(), ratio(max, 20_000.0)],
        "≥ 20,000/s",
        Some(max >= 20_000.0),
    );
    report.row(
        "S3",
        "one-to-one, SQLite: p99 at 10,000 msg/s",
        [format!("{p99_at_half:.1} ms"), "50 ms (target)".into(), ratio(p99_at_half, 50.0)],
        "≤ 50 ms",
        Some(p99_at_half <= 50.0),
    );
    for (rate, p50, p99) in &fixed {
        report.detail(&format!("- SQLite at {} msg/s: p50 {p50:.2} ms, p99 {p99:.2} ms", thousands(*rate)));
    }

    let pg = Postgres::start();
    let pg_state = state_dir("postgres");
    let node = state_dir("postgres-node");
    let url = pg.url();
    let server = chatgate(&node, &["--database-url", &url, "--jwt-secret", JWT_SECRET]);
    let (max, fixed) =
        direct_runs(report, z, "PostgreSQL", &server.url(), pg_state.join("bots.json").to_str().unwrap());
    report.row(
        "S3",
        "one-to-one, PostgreSQL: max persisted msg/s",
        [format!("{}/s", thousands(max)), "-".into(), "-".into()],
        "-",
        None,
    );
    for (rate, p50, p99) in &fixed {
        report.detail(&format!("- PostgreSQL at {} msg/s: p50 {p50:.2} ms, p99 {p99:.2} ms", thousands(*rate)));
    }
}

/// A fan-out measurement: deliveries/s while sending, the server's share of a core meanwhile,
/// p99 at 100 messages/s, and the size of the frames delivered.
struct Fanout {
    max: f64,
    busy: f64,
    p99_at_rate: f64,
    frame_bytes: u64,
}

impl Fanout {
    /// Deliveries per second of server CPU: what the server does with a core, whatever the
    /// bots, which share the other core, can absorb.
    fn per_core(&self) -> f64 {
        if self.busy > 0.0 { self.max / self.busy } else { 0.0 }
    }
}

/// Max deliveries/s (closed loop, 64 in flight until the probe member has them) and p99 at a
/// fixed rate, for one group on `urls` served by `pids`.
/// A server (or cluster) a fan-out runs against.
struct Target<'a> {
    label: &'a str,
    protocol: &'a str,
    urls: &'a str,
    pids: &'a [u32],
    state: Option<&'a str>,
}

fn fanout(report: &mut Report, z: &Sizes, target: &Target, pad: usize) -> Fanout {
    let Target { label, protocol, urls, pids, state } = *target;
    let seconds = z.seconds.to_string();
    let members = z.members.to_string();
    let pad = pad.to_string();
    let mut base = vec![
        "group",
        "--protocol",
        protocol,
        "--url",
        urls,
        "--members",
        &members,
        "--duration",
        &seconds,
        "--pad",
        &pad,
    ];
    if let Some(state) = state {
        base.extend(["--state", state]);
    }
    let max_args: Vec<&str> = base.iter().copied().chain(["--window", "64"]).collect();
    let (run, command, busy) = common::run_bots_measured(pids, z.seconds, &max_args);
    report.run(&format!("{label}, max (64 messages in flight)"), &run, &command);
    let max = f(&run["stats"]["deliveries_per_sec"]);
    let frame_bytes = run["stats"]["delivery_frame_bytes"].as_u64().unwrap_or(0);
    let fixed_args: Vec<&str> = base.iter().copied().chain(["--rate", "100"]).collect();
    let (run, command) = run_bots(&fixed_args);
    report.run(&format!("{label}, 100 messages/s"), &run, &command);
    let out = Fanout { max, busy, p99_at_rate: f(&run["stats"]["latency"]["p99_ms"]), frame_bytes };
    report.detail(&format!(
        "  - {label}: frames of {} bytes; the server used {:.0}% of its core while sending: {}/s per server core",
        out.frame_bytes,
        out.busy * 100.0,
        thousands(out.per_core())
    ));
    out
}

/// Padding that makes the bare and socket.io frames as large as chatgate's `message.new`
/// frames (`{"seq":N,"t":T,"pad":"..."}` is about 45 bytes before its padding).
fn pad_to(frame_bytes: u64) -> usize {
    frame_bytes.saturating_sub(45) as usize
}

fn s4(report: &mut Report, z: &Sizes) {
    report.detail(&format!("\n## S4: fan-out, one sender, {} online members\n", z.members));
    let state = state_dir("sqlite");
    let bot_state = state.join("bots.json");
    let server = chatgate(&state, &[]);
    let ours = fanout(
        report,
        z,
        &Target {
            label: "chatgate",
            protocol: "chatgate",
            urls: &server.url(),
            pids: &[server.pid()],
            state: bot_state.to_str(),
        },
        0,
    );
    drop(server);
    let pad = pad_to(ours.frame_bytes);
    let bare = common::bare();
    let ceiling = fanout(
        report,
        z,
        &Target { label: "bare", protocol: "bare", urls: &bare.url(), pids: &[bare.pid()], state: None },
        pad,
    );
    drop(bare);
    report.detail("- The bare server and socket.io broadcast frames padded to the size of chatgate's `message.new` frames, so all three move the same bytes. The bots on the other core are saturated in the max runs, which caps every server's figure alike; deliveries per second of server CPU are the server's own figure.");
    report.row(
        "S4",
        &format!("fan-out to {} members: max deliveries/s", z.members),
        [
            format!("{}/s", thousands(ours.max)),
            format!("{}/s (bare, batched writes)", thousands(ceiling.max)),
            ratio(ours.max, ceiling.max),
        ],
        "≥ 0.60 × bare",
        Some(ours.max >= 0.6 * ceiling.max),
    );
    report.row(
        "S4",
        "fan-out: deliveries per second of server CPU",
        [
            format!("{}/s", thousands(ours.per_core())),
            format!("{}/s (bare)", thousands(ceiling.per_core())),
            ratio(ours.per_core(), ceiling.per_core()),
        ],
        "-",
        None,
    );
    if common::socketio_installed() {
        report.peers.push("socket.io 4.8.1 (Node, bench/socketio)".into());
        let io = socketio(None);
        let theirs = fanout(
            report,
            z,
            &Target { label: "socket.io", protocol: "socketio", urls: &io.url(), pids: &[io.pid()], state: None },
            pad,
        );
        report.row(
            "S4",
            &format!("fan-out to {} members vs socket.io", z.members),
            [
                format!("{}/s", thousands(ours.max)),
                format!("{}/s (socket.io)", thousands(theirs.max)),
                ratio(ours.max, theirs.max),
            ],
            "≥ 5 × socket.io",
            Some(ours.max >= 5.0 * theirs.max),
        );
        report.detail(&format!("- socket.io p99 at 100 messages/s: {:.2} ms", theirs.p99_at_rate));
    } else {
        report.detail("- socket.io: not run (npm install failed)");
    }
    report.row(
        "S4",
        "p99 at 100 messages/s",
        [
            format!("{:.1} ms", ours.p99_at_rate),
            format!("{:.1} ms (bare)", ceiling.p99_at_rate),
            ratio(ours.p99_at_rate, ceiling.p99_at_rate),
        ],
        "-",
        None,
    );
}

/// Every node of a benchmark cluster shares this key, so bot tokens survive between runs.
const JWT_SECRET: &str = "chatgate-benchmark-cluster-signing-key-0123456789";

fn s5(report: &mut Report, z: &Sizes) {
    report.detail(&format!("\n## S5: cross-node, {} members over two nodes and Redis\n", z.members));
    let pg = Postgres::start();
    let redis = redis();
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let db = pg.url();
    let flags = ["--database-url", &db, "--redis-url", &redis_url, "--jwt-secret", JWT_SECRET];
    let a = chatgate(&state_dir("node-a"), &flags);
    let b = chatgate(&state_dir("node-b"), &flags);
    let bot_state = state_dir("postgres").join("bots.json");
    let one = a.url();
    let both = format!("{},{}", a.url(), b.url());
    let single = fanout(
        report,
        z,
        &Target {
            label: "chatgate, every member on node A",
            protocol: "chatgate",
            urls: &one,
            pids: &[a.pid()],
            state: bot_state.to_str(),
        },
        0,
    );
    let split = fanout(
        report,
        z,
        &Target {
            label: "chatgate, members split over A and B",
            protocol: "chatgate",
            urls: &both,
            pids: &[a.pid(), b.pid()],
            state: bot_state.to_str(),
        },
        0,
    );
    drop((a, b));
    let (single_p99, split_p99, pad) = (single.p99_at_rate, split.p99_at_rate, pad_to(single.frame_bytes));
    let (single, split) = (single.max, split.max);
    report.row(
        "S5",
        "cross-node fan-out: deliveries/s, split / one node",
        [format!("{}/s", thousands(split)), format!("{}/s (one node)", thousands(single)), ratio(split, single)],
        "≥ 0.70",
        Some(split >= 0.7 * single),
    );
    report.detail(&format!(
        "- p99 at 100 messages/s: one node {single_p99:.2} ms, split {split_p99:.2} ms (+{:.2} ms). Both nodes, PostgreSQL and Redis share CPU 0, so the split total is what one core does with the Redis hop added; per node it is half of that.",
        split_p99 - single_p99
    ));
    if common::socketio_installed() {
        report.peers.push("socket.io 4.8.1 with @socket.io/redis-adapter 8.3.0 on the same Redis".into());
        let x = socketio(Some(&redis_url));
        let y = socketio(Some(&redis_url));
        let io_single = fanout(
            report,
            z,
            &Target {
                label: "socket.io, every member on node A",
                protocol: "socketio",
                urls: &x.url(),
                pids: &[x.pid()],
                state: None,
            },
            pad,
        )
        .max;
        let both = format!("{},{}", x.url(), y.url());
        let io_split = fanout(
            report,
            z,
            &Target {
                label: "socket.io, members split over A and B",
                protocol: "socketio",
                urls: &both,
                pids: &[x.pid(), y.pid()],
                state: None,
            },
            pad,
        )
        .max;
        report.row(
            "S5",
            "cross-node fan-out vs socket.io's Redis adapter",
            [
                format!("{}/s", thousands(split)),
                format!("{}/s (socket.io split; {}/s on one node)", thousands(io_split), thousands(io_single)),
                ratio(split, io_split),
            ],
            "-",
            None,
        );
    }
}

fn s6(report: &mut Report, z: &Sizes) {
    report.detail("\n## S6: a slow consumer (messages of 2 KiB)\n");
    let state = state_dir("sqlite");
    let bot_state = state.join("bots.json");
    let server = chatgate(&state, &[]);
    let url = server.url();
    let seconds = z.seconds.to_string();
    let members = z.members.to_string();
    let mut results = Vec::new();
    for slow in ["0", "1"] {
        let before = rss_kib(server.pid());
        // 2 KiB messages: the kernel's socket buffers (several MiB on loopback) fill within the
        // run, so the server's own queue is what overflows.
        let mut run = bots(&[
            "group",
            "--url",
            &url,
            "--members",
            &members,
            "--window",
            "64",
            "--duration",
            &seconds,
            "--slow",
            slow,
            "--pad",
            "2048",
            "--state",
            bot_state.to_str().unwrap(),
        ]);
        let command = run.command.clone();
        let mut peak = before;
        while run.running() {
            peak = peak.max(rss_kib(server.pid()));
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = run.finish();
        report.run(
            if slow == "0" { "without a slow consumer" } else { "with one member that never reads" },
            &out,
            &command,
        );
        results.push((out, peak.saturating_sub(before)));
    }
    let (without, with) = (&results[0], &results[1]);
    let p99 = |r: &Value| f(&r["stats"]["latency"]["p99_ms"]);
    let dropped = with.0["stats"]["dropped_after_ms"].as_f64();
    report.detail(&format!(
        "- peak RSS growth during the run: {} KiB without, {} KiB with the slow consumer; it was dropped after {} (its outbound queue passed 1 MiB; the server then closes it, which it sees as a failed write)",
        without.1, with.1, dropped.map_or("never".into(), |ms| format!("{ms:.0} ms"))
    ));
    report.row(
        "S6",
        "others' p99 with one member that never reads",
        [
            format!("{:.1} ms", p99(&with.0)),
            format!("{:.1} ms (without it)", p99(&without.0)),
            ratio(p99(&with.0), p99(&without.0)),
        ],
        "unchanged",
        Some(p99(&with.0) <= 1.1 * p99(&without.0)),
    );
    report.row(
        "S6",
        "time until the slow consumer is dropped",
        [dropped.map_or("never".into(), |ms| format!("{ms:.0} ms")), "-".into(), "-".into()],
        "dropped, memory bounded",
        Some(dropped.is_some()),
    );
}

fn s7(report: &mut Report, z: &Sizes) {
    report.detail("\n## S7: a malformed-frame flood\n");
    let state = state_dir("sqlite");
    let bot_state = state.join("bots.json");
    let server = chatgate(&state, &[]);
    let url = server.url();
    let seconds = z.seconds.to_string();
    let direct = [
        "direct",
        "--url",
        &url,
        "--pairs",
        "8",
        "--rate",
        "2000",
        "--duration",
        &seconds,
        "--state",
        bot_state.to_str().unwrap(),
    ];
    let (quiet, command) = run_bots(&direct);
    report.run("healthy clients alone, 2,000 msg/s", &quiet, &command);
    // 10,000 bad frames over the run, from 4 anonymous sockets.
    let rate = (10_000 / z.seconds).to_string();
    let flood =
        bots(&["flood", "--url", &url, "--users", "4", "--rate", &rate, "--duration", &seconds, "--drain", "0"]);
    let flood_command = flood.command.clone();
    let (loud, command) = run_bots(&direct);
    let flooded = flood.finish();
    report.run("healthy clients during the flood", &loud, &command);
    report.detail(&format!(
        "- the flood: {} bad frames sent; answers: {}; closes: {}\n  `{flood_command}`",
        flooded["stats"]["sent"], flooded["stats"]["errors"], flooded["stats"]["closed"]
    ));
    let p99 = |r: &Value| f(&r["stats"]["latency"]["p99_ms"]);
    report.row(
        "S7",
        "healthy p99 during a 10,000-frame flood",
        [format!("{:.1} ms", p99(&loud)), format!("{:.1} ms (no flood)", p99(&quiet)), ratio(p99(&loud), p99(&quiet))],
        "≤ 1.10",
        Some(p99(&loud) <= 1.1 * p99(&quiet)),
    );
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
    let scenarios: [(&str, Scenario); 7] =
        [("S1", s1), ("S2", s2), ("S3", s3), ("S4", s4), ("S5", s5), ("S6", s6), ("S7", s7)];
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
