//! S11: exactness under kill and restart. Bots mix sends with edits, reactions, recalls and
//! reads over pipelined sockets while the server is killed (SIGKILL) twice and started again
//! on the same data; then each syncs from nothing, and the report counts what the server got
//! wrong against what it acknowledged.

use std::time::Duration;

use serde_json::Value;

use crate::common::{LOAD_FLAGS, Proc, SERVER_CPU, bots, free_port, pinned};
use crate::{Report, Sizes};

/// Seconds of traffic: long enough for two kills and the restarts after them.
const SECONDS: u64 = 24;

/// A release chatgate on SQLite in `dir`, listening on `port`.
fn chatgate_at(dir: &std::path::Path, port: u16) -> Proc {
    let mut command = pinned(SERVER_CPU, env!("CARGO_BIN_EXE_chatgate"));
    command.args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(dir).args(LOAD_FLAGS);
    Proc::spawn(command, port, "chatgate")
}

pub fn s11(report: &mut Report, _z: &Sizes) {
    report.detail("\n## S11: exactness under kill and restart\n");
    let dir = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let mut server = chatgate_at(dir.path(), port);
    let url = server.url();
    let state = dir.path().join("bots.json");
    let seconds = SECONDS.to_string();
    let args = ["exact", "--url", &url, "--users", "8", "--window", "8", "--duration", &seconds, "--state"];
    let mut args: Vec<&str> = args.to_vec();
    args.push(state.to_str().expect("utf-8 path"));
    let run = bots(&args);
    let command = run.command.clone();
    run.wait_started();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(SECONDS / 3));
        // Dropping the process kills it with SIGKILL: no shutdown, no flush.
        drop(server);
        std::thread::sleep(Duration::from_secs(1));
        server = chatgate_at(dir.path(), port);
    }
    let out = run.finish();
    drop(server);
    let s = &out["stats"];
    let n = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
    report.detail(&format!(
        "- {} messages and {} mutations acknowledged over {SECONDS} s with two SIGKILLs and restarts; {} reconnects; {} operations unanswered after the drain; refused as the rules say: {}\n  `{command}`",
        n("messages"),
        n("mutations"),
        n("reconnects"),
        n("unresolved"),
        refused(&s["refused"]),
    ));
    for (key, what) in [
        ("lost", "acknowledged messages lost"),
        ("duplicated", "messages duplicated"),
        ("out_of_order", "sends or log entries out of order"),
        ("missed_mutations", "acknowledged edits, reactions and recalls missed"),
        ("unread_mismatches", "unread counts off a recount"),
    ] {
        let count = n(key);
        report.row(
            "S11",
            &format!("{what}, after two kills (SIGKILL) and restarts"),
            [count.to_string(), "0 (target)".into(), "-".into()],
            "0",
            Some(count == 0),
        );
    }
}

fn refused(reasons: &Value) -> String {
    let Some(map) = reasons.as_object().filter(|m| !m.is_empty()) else { return "none".into() };
    map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}
