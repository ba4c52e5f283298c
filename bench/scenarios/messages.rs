//! S3: one-to-one messages, their throughput and latency, on SQLite and PostgreSQL.

use super::JWT_SECRET;
use crate::common::{Postgres, chatgate, run_bots, state_dir};
use crate::{NO_TARGET, Report, Sizes, f, ratio, thousands};

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

pub fn s3(report: &mut Report, z: &Sizes) {
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
        NO_TARGET,
        None,
    );
    for (rate, p50, p99) in &fixed {
        report.detail(&format!("- PostgreSQL at {} msg/s: p50 {p50:.2} ms, p99 {p99:.2} ms", thousands(*rate)));
    }
}
