//! What the benchmark suite starts and runs: servers pinned to CPU 0 (chatgate, the bare
//! baseline, socket.io, PostgreSQL, Redis), the bots pinned to CPU 1, and readings of a
//! process's memory and CPU time.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The CPU servers run on.
pub const SERVER_CPU: &str = "0";
/// The CPU the bots run on.
pub const BOTS_CPU: &str = "1";

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the suite keeps state between runs (bot users, databases), so later runs reuse them.
pub fn state_dir(name: &str) -> PathBuf {
    let dir = root().join("target").join("bench-state").join(name);
    std::fs::create_dir_all(&dir).expect("bench state dir");
    dir
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `taskset -c cpu program args...`.
pub fn pinned(cpu: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(cpu).arg(program);
    command
}

/// A server process, killed when dropped.
pub struct Proc {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Proc {
    /// Spawns `command` (pinned to the server CPU) and waits for `port`.
    pub fn spawn(mut command: Command, port: u16, what: &str) -> Proc {
        let child =
            command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
        wait_port(port, what);
        Proc { child, port }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `ws://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flags every benchmarked chatgate gets: limits meant for people are lifted, since the
/// bots send far faster than any person.
pub const LOAD_FLAGS: &[&str] = &[
    "--log",
    "warn",
    "--rate-session",
    "1000000",
    "--rate-user",
    "1000000",
    "--rate-address",
    "1000000",
    "--login-attempts-per-minute",
    "1000000",
    "--max-sessions-per-user",
    "64",
    "--max-connections",
    "19500",
    "--group-max-members",
    "5000",
];

/// A release chatgate on SQLite in `data_dir` (reused between runs), pinned to the server CPU.
pub fn chatgate(data_dir: &Path, extra: &[&str]) -> Proc {
    let port = free_port();
    let mut command = pinned(SERVER_CPU, env!("CARGO_BIN_EXE_chatgate"));
    command.args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(data_dir).args(LOAD_FLAGS).args(extra);
    Proc::spawn(command, port, "chatgate")
}

/// The bare tokio-tungstenite broadcast server (this benchmark binary, run as `bare PORT`).
pub fn bare() -> Proc {
    bare_mode("bare")
}

/// The bare tokio-tungstenite echo server, the floor of memory and handshakes (`bare-echo PORT`).
pub fn bare_echo() -> Proc {
    bare_mode("bare-echo")
}

fn bare_mode(mode: &str) -> Proc {
    let port = free_port();
    let mut command = pinned(SERVER_CPU, std::env::current_exe().expect("bench exe"));
    command.args([mode, &port.to_string()]);
    Proc::spawn(command, port, mode)
}

/// Installs the socket.io peer's npm packages once; false if npm cannot.
pub fn socketio_installed() -> bool {
    let dir = root().join("bench/socketio");
    if dir.join("node_modules/socket.io").exists() {
        return true;
    }
    Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// A socket.io 4 server (Node), with the Redis adapter when `redis` is given.
pub fn socketio(redis: Option<&str>) -> Proc {
    let port = free_port();
    let mut command = pinned(SERVER_CPU, "node");
    command.arg(root().join("bench/socketio/server.js")).env("PORT", port.to_string());
    if let Some(url) = redis {
        command.env("REDIS_URL", url);
    }
    Proc::spawn(command, port, "socket.io")
}

/// A throwaway redis-server on the server CPU.
pub fn redis() -> Proc {
    let port = free_port();
    let mut command = pinned(SERVER_CPU, "redis-server");
    command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    Proc::spawn(command, port, "redis-server")
}

/// PostgreSQL tool runner, as the `postgres` user when root (PostgreSQL refuses root).
fn as_postgres(tool: &str) -> Command {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut path = std::env::var("PATH").unwrap_or_default();
    for dir in std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten() {
        path.push_str(&format!(":{}/bin", dir.path().display()));
    }
    let mut command = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", tool]);
        c
    } else {
        Command::new(tool)
    };
    command.env("PATH", path);
    command
}

/// A PostgreSQL server whose data lives in the suite's state dir (so its bot users survive
/// between runs), pinned to the server CPU; stopped on drop.
pub struct Postgres {
    data: PathBuf,
    /// Its port.
    pub port: u16,
}

impl Postgres {
    /// Starts it (creating the cluster and the `chatgate` database the first time).
    pub fn start() -> Postgres {
        let dir = state_dir("postgres");
        let data = dir.join("data");
        let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
        if !data.exists() {
            let ok = as_postgres("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "initdb failed");
        }
        let port = free_port();
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200", dir.display());
        let ok = as_postgres("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "pg_ctl start failed");
        if let Ok(pid) = std::fs::read_to_string(data.join("postmaster.pid")) {
            let pid = pid.lines().next().unwrap_or_default().to_owned();
            let _ = Command::new("taskset").args(["-a", "-cp", SERVER_CPU, &pid]).stdout(Stdio::null()).status();
        }
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-qc", "CREATE DATABASE chatgate"])
            .stderr(Stdio::null())
            .status();
        Postgres { data, port }
    }

    /// The database URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/chatgate", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ =
            as_postgres("pg_ctl").arg("-D").arg(&self.data).args(["-m", "fast", "stop"]).stdout(Stdio::null()).status();
    }
}

/// Resident memory of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user and system) `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

/// A bots run in progress.
pub struct Bots {
    child: Child,
    json: tempfile::NamedTempFile,
    /// Told when every session is open and the traffic starts.
    started: std::sync::mpsc::Receiver<()>,
    /// The command, as a reader would type it.
    pub command: String,
}

/// The release `chatgate-bots`, built once per run beside the `chatgate` this benchmark was
/// built with: the bots are a crate of their own, so cargo does not hand this package their path.
fn bots_binary() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "--locked", "-p", "chatgate-bots"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build for chatgate-bots");
        assert!(status.success(), "building chatgate-bots failed");
        Path::new(env!("CARGO_BIN_EXE_chatgate")).with_file_name("chatgate-bots")
    })
}

/// Starts `chatgate-bots run ARGS --json FILE` on the bots CPU; its progress lines pass through.
pub fn bots(args: &[&str]) -> Bots {
    let json = tempfile::NamedTempFile::new().expect("json file");
    let mut command = pinned(BOTS_CPU, bots_binary());
    command.arg("run").args(args).arg("--json").arg(json.path()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("starting the bots");
    let stderr = child.stderr.take().expect("bots stderr");
    let (tell, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            // The parent says this once every worker is ready and the go is given.
            if line.contains("sessions open") {
                let _ = tell.send(());
            }
            eprintln!("{line}");
        }
    });
    Bots { child, json, started, command: format!("chatgate-bots run {}", args.join(" ")) }
}

impl Bots {
    /// Waits (at most five minutes) until every session is open and the traffic has started.
    pub fn wait_started(&self) {
        let _ = self.started.recv_timeout(Duration::from_secs(300));
    }

    /// Waits for the run to end and returns its JSON report.
    pub fn finish(mut self) -> Value {
        let status = self.child.wait().expect("bots");
        assert!(status.success(), "{} failed", self.command);
        let text = std::fs::read_to_string(self.json.path()).expect("bots json");
        serde_json::from_str(&text).expect("bots json")
    }

    /// Whether the run is still going.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Runs the bots against the servers `pids` and measures the share of a core they used while
/// the traffic ran: sampled from one second after the traffic starts to one second before it
/// ends, so that opening the sessions does not count.
pub fn run_bots_measured(pids: &[u32], seconds: u64, args: &[&str]) -> (Value, String, f64) {
    let cpu = || pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();
    let run = bots(args);
    let command = run.command.clone();
    run.wait_started();
    std::thread::sleep(Duration::from_secs(1));
    let (before, wall) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds.saturating_sub(2).max(1)));
    let busy = (cpu() - before) / wall.elapsed().as_secs_f64();
    (run.finish(), command, busy)
}

/// Runs the bots to the end.
pub fn run_bots(args: &[&str]) -> (Value, String) {
    let bots = bots(args);
    let command = bots.command.clone();
    (bots.finish(), command)
}
