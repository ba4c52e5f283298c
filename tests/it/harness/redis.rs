//! A redis-server of one test.

use std::process::Command;
use std::time::Duration;

use super::{WAIT, free_port};

/// A redis-server of one test, on a random port; killed when dropped.
pub struct Redis {
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Redis {
    /// Starts a throwaway redis-server (no persistence).
    pub async fn start() -> Redis {
        let mut redis = Redis { port: free_port(), dir: tempfile::tempdir().expect("redis dir"), child: None };
        redis.launch().await;
        redis
    }

    async fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("running redis-server (is it installed?)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The URL nodes connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs a command through redis-cli and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out =
            Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills the server (SIGKILL): every connection drops at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.launch().await;
    }

    /// Waits until `count` nodes subscribe to `channel` (a bus channel such as `g:5`).
    pub async fn wait_subscribers(&self, channel: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let out = self.cli(&["PUBSUB", "NUMSUB", &format!("chatgate:{channel}")]);
            let n: usize = out.lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0);
            if n == count {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{channel} has {n} subscribers, expected {count}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
