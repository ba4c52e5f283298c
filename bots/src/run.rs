//! The parent of a run: sets users and groups up, writes the plan, starts the workers, shows a
//! live progress line, and merges what they measured into one table (and JSON).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::cli::{Args, Scenario};
use crate::conn::Protocol;
use crate::plan::{Plan, Role, Sender, SessionPlan, Share, Storm};
use crate::stats::Stats;
use crate::users::{BotUser, Pool};
use crate::worker::wall_us;

/// How long workers may take beyond the run's own length before they are killed.
const OVERRUN: Duration = Duration::from_secs(120);

/// Builds each worker's share of a run.
struct Layout {
    workers: Vec<Share>,
    nodes: usize,
    next: usize,
}

impl Layout {
    fn new(workers: usize, nodes: usize) -> Layout {
        Layout { workers: vec![Share::default(); workers], nodes, next: 0 }
    }

    /// Places a session on `worker` (or round-robin) and `node` (or round-robin).
    fn put(&mut self, worker: Option<usize>, node: Option<usize>, token: Option<&BotUser>, role: Role) {
        let n = self.next;
        self.next += 1;
        let worker = worker.unwrap_or(n) % self.workers.len();
        let node = node.unwrap_or(n) % self.nodes.max(1);
        self.workers[worker].sessions.push(SessionPlan { node, token: token.map(|u| u.token.clone()), role });
    }
}

/// Users for `count` sessions of `label`, or none for protocols without accounts.
async fn users(
    pool: &mut Option<Pool>,
    args: &Args,
    label: &str,
    count: usize,
) -> anyhow::Result<Vec<Option<BotUser>>> {
    match pool {
        Some(pool) => {
            Ok(pool.users(&format!("{}-{label}-", args.prefix), count).await?.into_iter().map(Some).collect())
        }
        None => Ok(vec![None; count]),
    }
}

async fn plan_idle(layout: &mut Layout, pool: &mut Option<Pool>, args: &Args) -> anyhow::Result<()> {
    for user in users(pool, args, "u", args.users).await? {
        for _ in 0..args.devices {
            layout.put(None, None, user.as_ref(), Role::Idle);
        }
    }
    Ok(())
}

async fn plan_direct(layout: &mut Layout, pool: &mut Option<Pool>, args: &Args, run: &str) -> anyhow::Result<()> {
    if pool.is_none() {
        bail!("the direct scenario needs chatgate (one-to-one messages)");
    }
    let people = users(pool, args, "p", args.pairs * 2).await?;
    for (p, pair) in people.chunks(2).enumerate() {
        let (sender, receiver) = (pair[0].as_ref(), pair[1].as_ref());
        let to = receiver.map(|r| r.id.clone()).unwrap_or_default();
        let role = Role::Send(Sender {
            chat_type: "single".into(),
            to,
            key: format!("{run}-p{p}"),
            rate: args.rate / args.pairs as f64,
            window: args.window,
            gate: None,
            pad: args.pad,
        });
        // A pair lives in one worker; over several nodes, its two ends sit on different ones.
        layout.put(Some(p), Some(p), sender, role);
        layout.put(Some(p), Some(p + 1), receiver, Role::Receive);
    }
    Ok(())
}

async fn plan_groups(layout: &mut Layout, pool: &mut Option<Pool>, args: &Args, run: &str) -> anyhow::Result<()> {
    for g in 0..args.groups {
        let members = users(pool, args, &format!("g{}x{g}", args.members), args.members).await?;
        let to = match pool {
            Some(pool) => {
                let accounts: Vec<BotUser> = members.iter().flatten().cloned().collect();
                pool.group(&format!("{}-g{}x{g}", args.prefix, args.members), &accounts).await?
            }
            None => String::new(),
        };
        let closed_loop = args.rate <= 0.0;
        let gate = closed_loop.then_some(g);
        // A group's senders, and the probe that reopens their window, share worker and node 0.
        for (s, member) in members[..args.senders].iter().enumerate() {
            let role = Role::Send(Sender {
                chat_type: "group".into(),
                to: to.clone(),
                key: format!("{run}-g{g}s{s}"),
                rate: args.rate / args.senders as f64,
                window: args.window,
                gate,
                pad: args.pad,
            });
            layout.put(Some(g), Some(0), member.as_ref(), role);
        }
        for (i, member) in members[args.senders..].iter().enumerate() {
            match gate {
                Some(gate) if i == 0 => layout.put(Some(g), Some(0), member.as_ref(), Role::Probe { gate }),
                _ => layout.put(None, None, member.as_ref(), Role::Receive),
            }
        }
        if g == 0 {
            for slow in members.iter().rev().take(args.slow) {
                layout.put(None, Some(0), slow.as_ref(), Role::Slow);
            }
        }
    }
    Ok(())
}

async fn plan_storm(layout: &mut Layout, pool: &mut Option<Pool>, args: &Args) -> anyhow::Result<()> {
    let tokens: Vec<String> =
        users(pool, args, "u", args.users).await?.into_iter().flatten().map(|u| u.token).collect();
    let k = layout.workers.len();
    for (w, share) in layout.workers.iter_mut().enumerate() {
        share.storm = Some(Storm {
            rate: args.storm_rate / k as f64,
            concurrency: (args.concurrency / k).max(1),
            tokens: tokens.iter().skip(w).step_by(k).cloned().collect(),
            hold: args.hold,
        });
    }
    Ok(())
}

/// Sets users and groups up and lays the run out over the workers.
async fn plan(args: &Args) -> anyhow::Result<Plan> {
    let nodes = args.nodes()?;
    let mut pool = match args.protocol {
        Protocol::Chatgate => Some(Pool::open(&args.state, &nodes[0].to_string())?),
        Protocol::Socketio | Protocol::Soketi | Protocol::Bare => None,
    };
    let run = format!("{:x}", wall_us());
    let mut layout = Layout::new(args.procs, nodes.len());
    match args.scenario {
        Scenario::Idle => plan_idle(&mut layout, &mut pool, args).await?,
        Scenario::Direct => plan_direct(&mut layout, &mut pool, args, &run).await?,
        Scenario::Group => plan_groups(&mut layout, &mut pool, args, &run).await?,
        Scenario::Storm => plan_storm(&mut layout, &mut pool, args).await?,
        Scenario::Flood => {
            for _ in 0..args.users {
                layout.put(None, None, None, Role::Flood { rate: args.rate / args.users.max(1) as f64 });
            }
        }
        Scenario::Exact => bail!("the exact scenario runs in this process, without workers"),
        Scenario::Mixed => {
            plan_idle(&mut layout, &mut pool, args).await?;
            plan_direct(&mut layout, &mut pool, args, &run).await?;
            plan_groups(&mut layout, &mut pool, args, &run).await?;
            if args.storm_rate > 0.0 {
                plan_storm(&mut layout, &mut pool, args).await?;
            }
        }
    }
    Ok(Plan {
        protocol: args.protocol,
        nodes,
        sources: args.source_ips()?,
        duration_ms: (args.duration * 1000.0) as u64,
        drain_ms: (args.drain * 1000.0) as u64,
        connect_concurrency: args.connect_concurrency,
        workers: layout.workers,
    })
}

/// A line a worker wrote, or its end.
enum Said {
    Line(usize, Value),
    Ended(usize),
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
}

fn spawn_workers(plan_path: &std::path::Path, count: usize, said: mpsc::Sender<Said>) -> anyhow::Result<Vec<Worker>> {
    let exe = std::env::current_exe().context("finding the bots binary")?;
    let mut workers = Vec::with_capacity(count);
    for index in 0..count {
        let mut child = Command::new(&exe)
            .args(["worker", "--plan"])
            .arg(plan_path)
            .args(["--index", &index.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting a worker")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let said = said.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = said.send(Said::Line(index, value)).await;
                }
            }
            let _ = said.send(Said::Ended(index)).await;
        });
        workers.push(Worker { child, stdin });
    }
    Ok(workers)
}

/// Runs a scenario and reports it.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.validate()?;
    if args.scenario == Scenario::Exact {
        return crate::exact::run(&args).await;
    }
    let plan = plan(&args).await?;
    let dir = tempfile::tempdir()?;
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec(&plan)?)?;
    let planned: usize = plan.workers.iter().map(|w| w.sessions.len()).sum();
    eprintln!("opening {planned} sessions in {} worker(s)...", args.procs);

    let (tell, mut heard) = mpsc::channel(1024);
    let mut workers = spawn_workers(&plan_path, args.procs, tell)?;
    wait_ready(&mut heard, workers.len(), &args).await?;
    for worker in &mut workers {
        worker.stdin.write_all(b"go\n").await?;
        worker.stdin.flush().await?;
    }

    let results = collect(&mut heard, workers.len(), &args).await?;
    for worker in &mut workers {
        let _ = worker.child.kill().await;
    }
    if results.len() < workers.len() {
        bail!("only {} of {} workers reported", results.len(), workers.len());
    }
    let mut total = Stats::default();
    for stats in results.values() {
        total.merge(stats);
    }
    report(&args, &total)
}

/// Waits until each of the `count` workers has opened its sessions, and says how that went.
async fn wait_ready(heard: &mut mpsc::Receiver<Said>, count: usize, args: &Args) -> anyhow::Result<()> {
    let deadline =
        Instant::now() + Duration::from_secs_f64(args.duration + args.drain) + OVERRUN + Duration::from_secs(600);
    let opening = Instant::now();
    let mut ready = vec![false; count];
    let mut opened = 0u64;
    let mut failed = 0u64;
    while !ready.iter().all(|r| *r) {
        match tokio::time::timeout_at(deadline.into(), heard.recv()).await {
            Ok(Some(Said::Line(i, line))) if line["type"] == "ready" => {
                ready[i] = true;
                opened += line["sessions"].as_u64().unwrap_or(0);
                failed += line["failed"].as_u64().unwrap_or(0);
            }
            Ok(Some(Said::Line(..))) => {}
            Ok(Some(Said::Ended(i))) => bail!("worker {i} ended before it was ready"),
            Ok(None) | Err(_) => bail!("the workers did not get ready in time"),
        }
    }
    eprintln!(
        "{opened} sessions open ({failed} failed) in {:.1} s; running for {} s",
        opening.elapsed().as_secs_f64(),
        args.duration
    );
    Ok(())
}

/// The live progress line, shown about once a second from the workers' latest counters.
struct Progress {
    latest: BTreeMap<usize, Value>,
    started: Instant,
    shown: Instant,
    last_deliveries: u64,
}

impl Progress {
    /// Notes worker `i`'s counters; shows the sum once every one of the `count` workers has sent some.
    fn note(&mut self, i: usize, line: Value, count: usize) {
        self.latest.insert(i, line);
        if self.shown.elapsed() < Duration::from_millis(900) || self.latest.len() != count {
            return;
        }
        let sum = |k: &str| self.latest.values().map(|p| p[k].as_u64().unwrap_or(0)).sum::<u64>();
        let deliveries = sum("deliveries");
        let per_sec = (deliveries - self.last_deliveries.min(deliveries)) as f64 / self.shown.elapsed().as_secs_f64();
        eprintln!(
            "[{:>5.1}s] sessions {}  sent {}  acked {}  deliveries {} ({:.0}/s)  errors {}",
            self.started.elapsed().as_secs_f64(),
            sum("sessions"),
            sum("sent"),
            sum("acked"),
            deliveries,
            per_sec,
            sum("errors")
        );
        self.last_deliveries = deliveries;
        self.shown = Instant::now();
    }
}

/// Shows progress until the `count` workers end (or overrun the run), and gathers their results.
async fn collect(
    heard: &mut mpsc::Receiver<Said>,
    count: usize,
    args: &Args,
) -> anyhow::Result<BTreeMap<usize, Stats>> {
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(args.duration + args.drain) + OVERRUN;
    let mut progress = Progress { latest: BTreeMap::new(), started, shown: Instant::now(), last_deliveries: 0 };
    let mut results: BTreeMap<usize, Stats> = BTreeMap::new();
    let mut ended = 0;
    while ended < count {
        match tokio::time::timeout_at(end.into(), heard.recv()).await {
            Ok(Some(Said::Line(i, line))) => match line["type"].as_str() {
                Some("progress") => progress.note(i, line, count),
                Some("result") => {
                    let stats: Stats = serde_json::from_value(line["stats"].clone()).context("a worker's result")?;
                    results.insert(i, stats);
                }
                _ => {}
            },
            Ok(Some(Said::Ended(_))) => ended += 1,
            Ok(None) => break,
            Err(_) => {
                eprintln!("workers overran the run; killing them");
                break;
            }
        }
    }
    Ok(results)
}

fn report(args: &Args, total: &Stats) -> anyhow::Result<()> {
    let json = json!({
        "scenario": format!("{:?}", args.scenario).to_lowercase(),
        "protocol": args.protocol,
        "urls": args.url,
        "duration_s": args.duration,
        "procs": args.procs,
        "settings": {"users": args.users, "devices": args.devices, "pairs": args.pairs, "groups": args.groups,
                     "members": args.members, "senders": args.senders, "rate": args.rate, "window": args.window,
                     "slow": args.slow, "storm_rate": args.storm_rate, "concurrency": args.concurrency, "pad": args.pad},
        "stats": total.to_json(args.duration),
    });
    match args.json.as_deref() {
        Some(path) if path.as_os_str() == "-" => println!("{json}"),
        Some(path) => {
            std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
            print!("{}", total.table(args.duration));
        }
        None => print!("{}", total.table(args.duration)),
    }
    Ok(())
}
