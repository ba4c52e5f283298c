//! The bots' command line, and the bounds every run is held to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::conn::Protocol;

/// Load-test bots for chatgate (and, for comparison, for socket.io and a bare WebSocket
/// broadcast server). Every run is bounded in sessions and time and targets loopback only.
#[derive(Debug, Parser)]
#[command(name = "chatgate-bots", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A scenario, or the worker a scenario starts.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario.
    Run(Box<Args>),
    /// One worker process of a run (started by `run`).
    #[command(hide = true)]
    Worker {
        /// The plan file the parent wrote.
        #[arg(long)]
        plan: PathBuf,
        /// Which share of it.
        #[arg(long)]
        index: usize,
    },
}

/// What the bots do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Hold `--users` × `--devices` sessions.
    Idle,
    /// `--pairs` pairs, one sending to the other, at `--rate` in total (open loop) or with
    /// `--window` unacknowledged sends each (closed loop).
    Direct,
    /// `--groups` groups of `--members`, `--senders` per group sending at `--rate` per group,
    /// or with `--window` messages in flight until a probe member receives them.
    Group,
    /// Connect and authenticate at `--storm-rate` sessions per second.
    Storm,
    /// Idle sessions, direct pairs, groups and a storm, all at once.
    Mixed,
    /// `--users` anonymous sessions sending malformed frames, `--rate` per second in all.
    Flood,
    /// `--users` bots in one group and in pairs send, edit, react, recall and read with
    /// `--window` operations in flight each, surviving server restarts; then each syncs from
    /// nothing and the report counts what is lost, duplicated, reordered or missed.
    Exact,
}

/// A run's settings.
#[derive(Debug, Clone, Parser)]
pub struct Args {
    /// The scenario.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// Server URLs (`ws://127.0.0.1:8080`, comma-separated or repeated): sessions are spread
    /// over them. Loopback addresses only.
    #[arg(long, env = "CHATGATE_BOTS_URL", value_delimiter = ',', default_value = "ws://127.0.0.1:8080")]
    pub url: Vec<String>,

    /// The servers' protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Chatgate)]
    pub protocol: Protocol,

    /// Seconds of traffic, after every session is open (at most 3600).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds receivers keep counting after the senders stop.
    #[arg(long, default_value_t = 3.0)]
    pub drain: f64,

    /// Worker processes: one process holds at most about 19,900 sockets here.
    #[arg(long, default_value_t = 1)]
    pub procs: usize,

    /// Source addresses to spread connections over (each has ~28k ephemeral ports): a list,
    /// or a range such as `127.0.0.2-127.0.0.9`. Loopback only. Default: the kernel's choice.
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<String>,

    /// Users (idle, storm, mixed).
    #[arg(long, default_value_t = 100)]
    pub users: usize,

    /// Sessions per user (idle, mixed).
    #[arg(long, default_value_t = 1)]
    pub devices: usize,

    /// Sender/receiver pairs (direct, mixed).
    #[arg(long, default_value_t = 16)]
    pub pairs: usize,

    /// Groups (group, mixed).
    #[arg(long, default_value_t = 1)]
    pub groups: usize,

    /// Members per group, senders included (group, mixed).
    #[arg(long, default_value_t = 100)]
    pub members: usize,

    /// Senders per group.
    #[arg(long, default_value_t = 1)]
    pub senders: usize,

    /// Messages per second: in all (direct) or per group (group). 0: closed loop (`--window`).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,

    /// Closed loop: messages in flight per sender.
    #[arg(long, default_value_t = 8)]
    pub window: u64,

    /// Bytes of padding in every message, to make them larger (at most 60,000).
    #[arg(long, default_value_t = 0)]
    pub pad: usize,

    /// Extra members of the first group that never read: slow consumers.
    #[arg(long, default_value_t = 0)]
    pub slow: usize,

    /// Sessions per second opened during the run (storm, mixed; 0: as fast as
    /// `--concurrency` allows).
    #[arg(long, default_value_t = 100.0)]
    pub storm_rate: f64,

    /// Storm: opens in flight at most.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Storm: keep the opened sessions until the end instead of closing each once ready.
    #[arg(long)]
    pub hold: bool,

    /// Sessions one worker opens at once while setting up.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,

    /// Bot user names start with this.
    #[arg(long, default_value = "bot")]
    pub prefix: String,

    /// Where bot users and groups are remembered between runs.
    #[arg(long, default_value = ".chatgate-bots/state.json")]
    pub state: PathBuf,

    /// Also write the results as JSON to this file (`-` for stdout, instead of the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Sessions one run may hold at most, over all its processes.
pub const MAX_SESSIONS: usize = 200_000;
/// Longest run, in seconds.
const MAX_SECONDS: f64 = 3600.0;
/// Highest rate of messages or sessions per second.
const MAX_RATE: f64 = 1_000_000.0;

impl Args {
    /// The server addresses, checked to be loopback.
    pub fn nodes(&self) -> anyhow::Result<Vec<SocketAddr>> {
        self.url.iter().map(|u| loopback_url(u)).collect()
    }

    /// The source addresses, expanded and checked to be loopback.
    pub fn source_ips(&self) -> anyhow::Result<Vec<IpAddr>> {
        let mut out = Vec::new();
        for item in &self.sources {
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (Ipv4Addr, Ipv4Addr) = (a.trim().parse()?, b.trim().parse()?);
                    let (a, b) = (u32::from(a), u32::from(b));
                    if b < a || b - a > 4096 {
                        bail!("source range {item} is reversed or too large");
                    }
                    out.extend((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
                }
                None => out.push(item.trim().parse().with_context(|| format!("source address {item}"))?),
            }
        }
        if let Some(ip) = out.iter().find(|ip| !ip.is_loopback()) {
            bail!("source address {ip} is not a loopback address");
        }
        Ok(out)
    }

    /// Checks the run is bounded and aimed at loopback.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.nodes()?;
        self.source_ips()?;
        if !(self.duration > 0.0 && self.duration <= MAX_SECONDS && (0.0..=60.0).contains(&self.drain)) {
            bail!("--duration must be in (0, {MAX_SECONDS}] seconds and --drain in [0, 60]");
        }
        if !(0.0..=MAX_RATE).contains(&self.rate) || !(0.0..=MAX_RATE).contains(&self.storm_rate) {
            bail!("--rate and --storm-rate must be between 0 and {MAX_RATE}");
        }
        if self.pad > 60_000 {
            bail!("--pad must be at most 60000 bytes");
        }
        if self.procs == 0 || self.procs > 64 || self.window == 0 || self.concurrency == 0 {
            bail!("--procs must be 1 to 64; --window and --concurrency positive");
        }
        if self.senders == 0 || self.senders >= self.members.max(1) {
            bail!("--senders must be at least 1 and fewer than --members");
        }
        if self.rate == 0.0 && self.senders > 1 && matches!(self.scenario, Scenario::Group | Scenario::Mixed) {
            bail!("a closed-loop group run (--rate 0) has one sender per group; give --rate for more");
        }
        let sessions = self.planned_sessions();
        if sessions > MAX_SESSIONS {
            bail!("{sessions} sessions is more than a run may hold ({MAX_SESSIONS})");
        }
        let storm_total = self.storm_rate * self.duration;
        if matches!(self.scenario, Scenario::Storm | Scenario::Mixed) && storm_total > (10 * MAX_SESSIONS) as f64 {
            bail!("the storm would open {storm_total:.0} sessions; at most {} per run", 10 * MAX_SESSIONS);
        }
        Ok(())
    }

    /// Sessions held from the start.
    pub fn planned_sessions(&self) -> usize {
        let idle = self.users.saturating_mul(self.devices);
        let direct = self.pairs.saturating_mul(2);
        let group = self.groups.saturating_mul(self.members).saturating_add(self.slow);
        match self.scenario {
            Scenario::Idle => idle,
            Scenario::Direct => direct,
            Scenario::Group => group,
            Scenario::Storm => 0,
            Scenario::Flood | Scenario::Exact => self.users,
            Scenario::Mixed => idle.saturating_add(direct).saturating_add(group),
        }
    }
}

/// `ws://host:port[/...]` with a loopback host, as a socket address.
fn loopback_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("ws://").or_else(|| url.strip_prefix("http://"));
    let rest = rest.with_context(|| format!("{url}: only ws:// (or http://) URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority.rsplit_once(':').with_context(|| format!("{url}: give the port"))?;
    let ip: IpAddr = if host == "localhost" { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { host.parse()? };
    if !ip.is_loopback() {
        bail!("{url}: the bots only target loopback addresses (127.0.0.0/8)");
    }
    Ok(SocketAddr::new(ip, port.parse().with_context(|| format!("{url}: bad port"))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["chatgate-bots", "run"];
        argv.extend_from_slice(extra);
        match Cli::parse_from(argv).command {
            Command::Run(args) => *args,
            Command::Worker { .. } => unreachable!("parsed a run"),
        }
    }

    #[test]
    fn only_loopback_targets_and_sources() {
        assert!(args(&["idle", "--url", "ws://127.0.0.1:8080"]).validate().is_ok());
        assert!(args(&["idle", "--url", "ws://localhost:9/ws"]).validate().is_ok());
        assert!(args(&["idle", "--url", "ws://10.0.0.1:8080"]).validate().is_err());
        assert!(args(&["idle", "--url", "ws://example.com:80"]).validate().is_err());
        assert!(args(&["idle", "--url", "wss://127.0.0.1:443"]).validate().is_err());
        let a = args(&["idle", "--sources", "127.0.0.2-127.0.0.4,127.0.0.9"]);
        assert_eq!(a.source_ips().unwrap().len(), 4);
        assert!(args(&["idle", "--sources", "192.168.1.1"]).validate().is_err());
    }

    #[test]
    fn runs_are_bounded() {
        assert!(args(&["idle", "--duration", "0"]).validate().is_err());
        assert!(args(&["idle", "--duration", "7200"]).validate().is_err());
        assert!(args(&["idle", "--users", "100000", "--devices", "3"]).validate().is_err());
        assert!(args(&["storm", "--storm-rate", "1000000", "--duration", "3600"]).validate().is_err());
        assert!(args(&["group", "--senders", "2"]).validate().is_err(), "closed loop needs one sender");
        assert!(args(&["group", "--senders", "2", "--rate", "100"]).validate().is_ok());
        assert_eq!(
            args(&["mixed", "--users", "10", "--devices", "2", "--pairs", "3", "--members", "5", "--slow", "1"])
                .planned_sessions(),
            20 + 6 + 6
        );
    }
}
