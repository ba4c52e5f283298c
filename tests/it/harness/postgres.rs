//! PostgreSQL: one server for the whole suite with a fresh database per test, and servers of a
//! test's own that it may stop and start (an outage).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::OnceCell;

use super::free_port;

struct Postgres {
    port: u16,
}

static POSTGRES: OnceCell<Postgres> = OnceCell::const_new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_tool(tool: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", tool]);
        c
    } else {
        Command::new(tool)
    };
    let out = cmd.args(args).output().unwrap_or_else(|e| panic!("running {tool}: {e} (is PostgreSQL installed?)"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn postgres_server() -> &'static Postgres {
    POSTGRES
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| {
                let dir: PathBuf = tempfile::Builder::new().prefix("chatgate-pg-").tempdir().expect("pg dir").keep();
                if is_root() {
                    pg_tool_plain("chown", &["-R", "postgres:postgres", dir.to_str().unwrap()]);
                }
                let data = dir.join("data");
                let data_s = data.to_str().unwrap();
                pg_tool("initdb", &["-D", data_s, "-A", "trust", "-U", "postgres", "--no-sync"]);
                let port = free_port();
                let opts = format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                    dir.display()
                );
                pg_tool("pg_ctl", &["-D", data_s, "-o", &opts, "-l", dir.join("log").to_str().unwrap(), "-w", "start"]);
                spawn_reaper(&dir, &data);
                Postgres { port }
            })
            .await
            .expect("starting PostgreSQL")
        })
        .await
}

fn pg_tool_plain(tool: &str, args: &[&str]) {
    let status = Command::new(tool).args(args).status().expect(tool);
    assert!(status.success(), "{tool} failed");
}

/// Stops the server and removes its files once this test process has exited.
#[allow(clippy::zombie_processes, reason = "the reaper must outlive this process, so it is never waited on")]
fn spawn_reaper(dir: &Path, data: &Path) {
    let stop = if is_root() {
        format!("runuser -u postgres -- pg_ctl -D '{}' -m immediate stop", data.display())
    } else {
        format!("pg_ctl -D '{}' -m immediate stop", data.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawning the PostgreSQL reaper");
}

/// A fresh, empty database on the suite's PostgreSQL server.
pub async fn postgres_database() -> String {
    let pg = postgres_server().await;
    let name = format!("t{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let port = pg.port.to_string();
    let sql = format!("CREATE DATABASE {name}");
    tokio::task::spawn_blocking(move || {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
            ])
            .output()
            .expect("psql");
        assert!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
    })
    .await
    .expect("create database");
    format!("postgres://postgres@127.0.0.1:{}/{name}", pg.port)
}

/// A PostgreSQL server of one test, in its own temp dir on a free port, which the test may stop
/// and start again (an outage); stopped and removed when dropped.
pub struct OwnPostgres {
    dir: PathBuf,
    /// Its port.
    pub port: u16,
}

impl OwnPostgres {
    /// Creates and starts it, with a `chatgate` database.
    pub async fn start() -> OwnPostgres {
        let dir: PathBuf = tempfile::Builder::new().prefix("chatgate-own-pg-").tempdir().expect("pg dir").keep();
        if is_root() {
            pg_tool_plain("chown", &["-R", "postgres:postgres", dir.to_str().unwrap()]);
        }
        let data = dir.join("data");
        let data = data.to_str().unwrap().to_owned();
        let pg = OwnPostgres { dir, port: free_port() };
        tokio::task::spawn_blocking(move || {
            pg_tool("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"])
        })
        .await
        .expect("initdb");
        // Stopped even if this process dies first.
        spawn_reaper(&pg.dir, &pg.dir.join("data"));
        pg.resume().await;
        let port = pg.port.to_string();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    "CREATE DATABASE chatgate",
                ])
                .output()
                .expect("psql");
            assert!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
        })
        .await
        .expect("create database");
        pg
    }

    /// The database URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/chatgate", self.port)
    }

    /// Stops the server at once (`-m immediate`: every connection drops, as in a crash).
    pub async fn stop(&self) {
        let data = self.dir.join("data").to_str().unwrap().to_owned();
        tokio::task::spawn_blocking(move || pg_tool("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]))
            .await
            .expect("pg_ctl");
    }

    /// Starts it again on the same port.
    pub async fn resume(&self) {
        let data = self.dir.join("data").to_str().unwrap().to_owned();
        let log = self.dir.join("log").to_str().unwrap().to_owned();
        // Commits reach the OS before they are acknowledged (no synchronous_commit=off): an
        // immediate stop, a crash, must not lose them.
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        tokio::task::spawn_blocking(move || pg_tool("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"]))
            .await
            .expect("pg_ctl");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let data = data.to_str().unwrap();
        let mut stop = if is_root() { Command::new("runuser") } else { Command::new("pg_ctl") };
        if is_root() {
            stop.args(["-u", "postgres", "--", "pg_ctl"]);
        }
        let _ = stop.args(["-D", data, "-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
