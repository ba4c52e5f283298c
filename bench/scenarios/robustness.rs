//! S6 (a member that never reads), S7 (a malformed-frame flood) and S9 (made-up paths against
//! the metrics): how much the others, and the server, feel it.

use std::time::Duration;

use serde_json::Value;

use crate::common::{bots, chatgate, rss_kib, run_bots, state_dir};
use crate::{Report, Sizes, f, ratio};

pub fn s6(report: &mut Report, z: &Sizes) {
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
        "server peak RSS growth with one member that never reads",
        [format!("{} KiB", with.1), format!("{} KiB (without it)", without.1), "-".into()],
        "≤ 16 MiB more than without (1 MiB queue cap)",
        Some(with.1 <= without.1 + 16 * 1024),
    );
    report.row(
        "S6",
        "time until the slow consumer is dropped",
        [dropped.map_or("never".into(), |ms| format!("{ms:.0} ms")), "-".into(), "-".into()],
        "dropped, memory bounded",
        Some(dropped.is_some()),
    );
}

pub fn s7(report: &mut Report, z: &Sizes) {
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

/// Made-up paths asked anonymously.
const MADE_UP_PATHS: usize = 3000;

pub fn s9(report: &mut Report, _z: &Sizes) {
    report.detail("\n## S9: made-up paths against the metrics\n");
    let data = tempfile::tempdir().expect("S9 data dir");
    let server = chatgate(data.path(), &[]);
    let base = server.url().replace("ws://", "http://");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (before, after) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let exposition = || async {
            let text = http.get(format!("{base}/metrics")).send().await.expect("/metrics").text().await.expect("body");
            let series = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
            (series, text.len())
        };
        // One made-up path of each method first: the `unknown` label's own series exist from
        // then on, and what follows must add none.
        http.get(format!("{base}/made/up")).send().await.expect("a made-up GET");
        http.post(format!("{base}/made/up")).send().await.expect("a made-up POST");
        let before = exposition().await;
        for i in 0..MADE_UP_PATHS {
            let path = format!("{base}/made/up/{i}/{:x}", rand::random::<u64>());
            let _ = if i % 2 == 0 { http.get(path).send().await } else { http.post(path).send().await };
        }
        (before, exposition().await)
    });
    report.detail(&format!(
        "- {MADE_UP_PATHS} anonymous GETs and POSTs of made-up paths: /metrics held {} series in {} bytes before, {} series in {} bytes after",
        before.0, before.1, after.0, after.1
    ));
    report.row(
        "S9",
        "/metrics after 3,000 made-up paths: series, bytes",
        [
            format!("{} series, {} B", after.0, after.1),
            format!("{} series, {} B (before)", before.0, before.1),
            "-".into(),
        ],
        "no new series, < 256 KB",
        Some(after.0 == before.0 && after.1 < 256 * 1024),
    );
}
