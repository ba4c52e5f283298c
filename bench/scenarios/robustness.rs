//! S6 (a member that never reads) and S7 (a malformed-frame flood): how much the others feel it.

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
