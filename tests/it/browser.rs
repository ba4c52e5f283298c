//! The JavaScript SDK's unit tests, its live tests against the real binary, and the web
//! client's journeys in headless Chromium, run with Node's test runner from the test command.
//! Chromium is Debian's (`/usr/bin/chromium`, or `$CHROMIUM`); nothing here downloads a browser.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The journeys and the live SDK tests each run a server under load on a small machine: one at a
/// time, so that neither's timeouts measure the other.
static HEAVY: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) {
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("running {program} (is Node.js installed?): {e}"));
    assert!(status.success(), "{program} {} failed in {}", args.join(" "), dir.display());
}

#[test]
fn sdk_unit_tests() {
    run(&root().join("sdk/js"), "node", &["--test", "test/"], &[]);
}

#[test]
fn sdk_live_tests() {
    let _one = HEAVY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Node 20 has a WebSocket client behind a flag; later versions have it by default.
    let global = Command::new("node")
        .args(["-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"])
        .status()
        .unwrap_or_else(|e| panic!("running node (is Node.js installed?): {e}"))
        .success();
    let mut args = if global { vec![] } else { vec!["--experimental-websocket"] };
    args.extend(["--test", "--test-concurrency=1", "test-live/"]);
    run(&root().join("sdk/js"), "node", &args, &[("CHATGATE_BIN", env!("CARGO_BIN_EXE_chatgate"))]);
}

#[test]
fn browser_journeys() {
    let _one = HEAVY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = root().join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        run(&dir, "npm", &["ci", "--no-audit", "--no-fund"], &[]);
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's chromium package (.ci/run does)"
    );
    run(
        &dir,
        "node",
        &[
            "--test",
            "--test-concurrency=1",
            "journeys.test.mjs",
            "log.test.mjs",
            "compose.test.mjs",
            "attention.test.mjs",
            "view.test.mjs",
        ],
        &[("CHATGATE_BIN", env!("CARGO_BIN_EXE_chatgate")), ("CHROMIUM", &chromium)],
    );
}
