//! chatgate servers: in this process on port 0 ([`Server`]), or as the binary in a process of
//! its own ([`Process`]).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chatgate::Config;
use clap::Parser;
use serde_json::Value;
use tokio::sync::oneshot;

use super::{WAIT, free_port, postgres_database};

/// Generates one test per database backend from `async fn $name(backend: Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::harness::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::harness::Backend::Postgres).await }
        }
    )*};
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the server's temp data dir.
    Sqlite,
    /// A fresh database on the suite's PostgreSQL server.
    Postgres,
}

/// A chatgate server running in this process.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data dir.
    pub dir: tempfile::TempDir,
    /// Its database.
    pub database_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// Starts a server on `backend` with extra flags.
    pub async fn start_with(backend: Backend, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("chatgate.db").display()),
            Backend::Postgres => postgres_database().await,
        };
        Server::start_in(dir, &url, extra).await
    }

    /// Starts a node of a cluster: a fresh data dir, the shared database at `url`.
    pub async fn node(url: &str, extra: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().expect("temp dir"), url, extra).await
    }

    async fn start_in(dir: tempfile::TempDir, url: &str, extra: &[&str]) -> Server {
        let data_dir = dir.path().to_str().expect("utf-8 path").to_owned();
        let mut args = vec![
            "chatgate",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir,
            "--database-url",
            &url,
            "--db-max-connections",
            "4",
            // Nodes of one cluster share a signing key, as a deployment must.
            "--jwt-secret",
            "integration-tests-shared-signing-key-0123456789",
            // One test client sends far faster than a person; the rate-limit tests set their own.
            "--rate-session",
            "100000",
            "--rate-user",
            "100000",
            "--rate-address",
            "100000",
            "--login-attempts-per-minute",
            "100000",
            "--resets-per-hour",
            "100000",
        ];
        args.extend_from_slice(extra);
        let config = Config::parse_from(args);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chatgate::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let server = Server { addr, dir, database_url: url.to_owned(), stop: Some(stop), task: Some(task) };
        server.wait_healthy().await;
        server
    }

    /// Starts a server on `backend` with the default configuration.
    pub async fn start(backend: Backend) -> Server {
        Server::start_with(backend, &[]).await
    }

    async fn wait_healthy(&self) {
        let url = format!("http://{}/healthz", self.addr);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = reqwest::get(&url).await
                && resp.status().is_success()
            {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "server did not become healthy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Base HTTP URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Runs one SQL statement straight on the server's database, behind its back: for tests of
    /// what the server does with rows it did not write.
    pub async fn execute_sql(&self, statement: &str) {
        sqlx::any::install_default_drivers();
        let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.database_url).await.expect("database");
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut db).await.expect("SQL statement");
    }

    /// The value of the metric series `series` (name with its labels, as /metrics writes it),
    /// or 0 when it is not there yet.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_at(&self.url(""), series).await
    }

    /// The lines of the reset outbox, waiting until at least `count` exist.
    pub async fn outbox(&self, count: usize) -> Vec<Value> {
        let path = self.dir.path().join("outbox.jsonl");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // Only whole lines: the server may be writing the next one.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let complete = text.rfind('\n').map_or("", |end| &text[..end]);
            let lines: Vec<Value> =
                complete.lines().map(|l| serde_json::from_str(l).expect("outbox line is JSON")).collect();
            if lines.len() >= count {
                return lines;
            }
            assert!(tokio::time::Instant::now() < deadline, "outbox never reached {count} lines");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

/// A `chatgate` binary in a process of its own, in its own data dir, on a free port; killed
/// (SIGKILL) when dropped. For tests that measure the process, kill it or restart it.
pub struct Process {
    /// The child.
    pub child: std::process::Child,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// `127.0.0.1:port`.
    pub addr: SocketAddr,
    /// Its data dir, kept across restarts.
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Process {
    /// Starts the binary with `args` (after `--listen` and `--data-dir`) and `env`, its output
    /// to `<data-dir>/server.log`, and waits until it answers `/healthz`.
    pub async fn start(args: &[&str], env: &[(&str, String)]) -> Process {
        let dir = tempfile::tempdir().expect("temp dir");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let (child, addr) = Process::spawn(dir.path(), &args, &env);
        let mut process = Process { child, base: format!("http://{addr}"), addr, dir, args, env };
        process.wait_healthy().await;
        process
    }

    fn spawn(dir: &Path, args: &[String], env: &[(String, String)]) -> (std::process::Child, SocketAddr) {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_chatgate"))
            .args(["--listen", &addr.to_string(), "--data-dir", dir.to_str().unwrap()])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting chatgate");
        (child, addr)
    }

    async fn wait_healthy(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if reqwest::get(format!("{}/healthz", self.base)).await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chatgate exited with {status}: {}", self.log());
            }
            assert!(tokio::time::Instant::now() < deadline, "chatgate did not become healthy: {}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts it again on the same data dir (on a new port), after it ended or was killed.
    pub async fn restart(&mut self) {
        self.kill();
        let (child, addr) = Process::spawn(self.dir.path(), &self.args, &self.env);
        (self.child, self.addr, self.base) = (child, addr, format!("http://{addr}"));
        self.wait_healthy().await;
    }

    /// Asks it to stop (SIGTERM) and waits, at most `within`, for it to exit; its exit status.
    pub async fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Its resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id()).expect("the VmRSS of a running server")
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of the metric series `series` (name with its labels, as /metrics writes it) of
/// the server at `base` (`http://host:port`), or 0 when it is not there yet.
pub async fn metric_at(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics")).await.expect("/metrics").text().await.expect("metrics body");
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

/// The resident memory of process `pid`, in KiB; `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
