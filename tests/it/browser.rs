//! The JavaScript SDK's unit tests and the web client's journeys in headless Chromium, run with
//! Node's test runner from the test command. Chromium is Debian's (`/usr/bin/chromium`, or
//! `$CHROMIUM`); nothing here downloads a browser.

use std::path::{Path, PathBuf};
use std::process::Command;

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
fn browser_journeys() {
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
        &["--test", "--test-concurrency=1", "journeys.test.mjs"],
        &[("CHATGATE_BIN", env!("CARGO_BIN_EXE_chatgate")), ("CHROMIUM", &chromium)],
    );
}
