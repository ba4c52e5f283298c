//! S4 (fan-out to one group on one node, against bare broadcast and socket.io) and S5 (the same
//! group split over two nodes and Redis, against one node and socket.io's Redis adapter).

use super::JWT_SECRET;
use crate::common::{self, Postgres, chatgate, redis, run_bots, socketio, state_dir};
use crate::{NO_TARGET, Report, Sizes, f, ratio, thousands};

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

/// A server (or cluster) a fan-out runs against.
struct Target<'a> {
    label: &'a str,
    protocol: &'a str,
    urls: &'a str,
    pids: &'a [u32],
    state: Option<&'a str>,
}

/// Max deliveries/s (closed loop, 64 in flight until the probe member has them) and p99 at a
/// fixed rate, for one group on `urls` served by `pids`.
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

pub fn s4(report: &mut Report, z: &Sizes) {
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
        "≥ 0.7 × bare (issue 18)",
        Some(ours.per_core() >= 0.7 * ceiling.per_core()),
    );
    s4_socketio(report, z, &ours, pad);
    report.row(
        "S4",
        "p99 at 100 messages/s",
        [
            format!("{:.1} ms", ours.p99_at_rate),
            format!("{:.1} ms (bare)", ceiling.p99_at_rate),
            ratio(ours.p99_at_rate, ceiling.p99_at_rate),
        ],
        NO_TARGET,
        None,
    );
}

/// S4 against socket.io, with frames padded by `pad`, if it is installed.
fn s4_socketio(report: &mut Report, z: &Sizes, ours: &Fanout, pad: usize) {
    if !common::socketio_installed() {
        report.detail("- socket.io: not run (npm install failed)");
        return;
    }
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
}

pub fn s5(report: &mut Report, z: &Sizes) {
    report.detail(&format!("\n## S5: cross-node, {} members over two nodes and Redis\n", z.members));
    let pg = Postgres::start();
    let redis = redis();
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let (single, split) = s5_chatgate(report, z, &pg.url(), &redis_url);
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
        s5_socketio(report, z, &redis_url, pad, split);
    }
}

/// Two chatgate nodes on database `db` and Redis `redis_url`: the group on node A alone, then
/// split over both.
fn s5_chatgate(report: &mut Report, z: &Sizes, db: &str, redis_url: &str) -> (Fanout, Fanout) {
    let flags = ["--database-url", db, "--redis-url", redis_url, "--jwt-secret", JWT_SECRET];
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
    (single, split)
}

/// S5 against two socket.io nodes on Redis `redis_url`, beside chatgate's `split` deliveries/s.
fn s5_socketio(report: &mut Report, z: &Sizes, redis_url: &str, pad: usize, split: f64) {
    report.peers.push("socket.io 4.8.1 with @socket.io/redis-adapter 8.3.0 on the same Redis".into());
    let x = socketio(Some(redis_url));
    let y = socketio(Some(redis_url));
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
        NO_TARGET,
        None,
    );
}
