//! A worker process: opens its share of the sessions, says it is ready, waits for the go,
//! runs the traffic, and reports what it measured as JSON lines on stdout.

mod flood;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt, stream};
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::conn::{self, Incoming, Protocol, Socket};
use crate::gap::GapCheck;
use crate::pace::{Next, Pacer};
use crate::plan::{Plan, Role, Sender, SessionPlan, Storm};
use crate::stats::{Recorder, Shared, Stats};
use flood::flood;

/// Receive buffer of a slow consumer's socket: small, so the server's queue fills fast.
const SLOW_RCVBUF: u32 = 4096;
/// How often a slow consumer checks whether the server dropped it.
const SLOW_PROBE: Duration = Duration::from_millis(20);
/// Ack latencies remembered per sender at most (open loop may run far ahead of the acks).
const MAX_PENDING_ACKS: usize = 100_000;

/// Microseconds since the Unix epoch: every process on the machine shares this clock, so a
/// send time written by one bot process is comparable with a receive time read by another.
pub fn wall_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Counters the progress line reads while tasks run.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    acked: AtomicU64,
    deliveries: AtomicU64,
    errors: AtomicU64,
    sessions: AtomicU64,
}

fn emit(line: serde_json::Value) {
    println!("{line}");
}

/// Runs worker `index` of `plan`.
pub async fn run(plan: Plan, index: usize) -> anyhow::Result<()> {
    let share = plan.workers.get(index).cloned().unwrap_or_default();
    let plan = Arc::new(plan);
    let live = Arc::new(Live::default());
    let mut setup = Stats::default();
    let opened = open_all(&plan, index, &share.sessions, &mut setup).await;
    live.sessions.store(setup.sessions, Ordering::Relaxed);
    emit(json!({"type": "ready", "sessions": setup.sessions, "failed": setup.connect_failures.values().sum::<u64>()}));

    wait_for_go().await?;

    let start = Instant::now();
    let start_us = wall_us();
    let senders_stop = CancellationToken::new();
    let all_stop = CancellationToken::new();
    let base = Ctx {
        protocol: plan.protocol,
        live: live.clone(),
        latency: Shared::default(),
        ack_latency: Shared::default(),
        connect_latency: Shared::default(),
        start,
        start_us,
        stop: all_stop.clone(),
        all_stop: all_stop.clone(),
    };
    let mut tasks = spawn_sessions(&base, &plan, opened, &gates(&share.sessions), &senders_stop);
    if let Some(storm) = share.storm.clone() {
        tasks.push(tokio::spawn(storm_run(base.until(&senders_stop), plan.clone(), index, storm)));
    }

    let progress = spawn_progress(live.clone(), start);
    tokio::time::sleep(Duration::from_millis(plan.duration_ms)).await;
    senders_stop.cancel();
    let in_window = (live.deliveries.load(Ordering::Relaxed), live.acked.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_millis(plan.drain_ms)).await;
    all_stop.cancel();
    let mut total = setup;
    for task in tasks {
        if let Ok(stats) = task.await {
            total.merge(&stats);
        }
    }
    progress.abort();
    total.latency.add(&base.latency.take());
    total.ack_latency.add(&base.ack_latency.take());
    total.connect_latency.add(&base.connect_latency.take());
    (total.deliveries_in_window, total.acked_in_window) = in_window;
    emit(json!({"type": "result", "stats": total}));
    Ok(())
}

/// Waits for the parent's go, so every worker starts its traffic at once.
async fn wait_for_go() -> anyhow::Result<()> {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    match tokio::time::timeout(Duration::from_secs(600), stdin.next_line()).await {
        Ok(Ok(Some(line))) if line.trim() == "go" => Ok(()),
        _ => anyhow::bail!("no go from the parent"),
    }
}

/// One window per gated group, shared by its senders and reopened by its probe.
fn gates(sessions: &[SessionPlan]) -> HashMap<usize, Arc<Semaphore>> {
    sessions
        .iter()
        .filter_map(|s| match &s.role {
            Role::Send(Sender { gate: Some(gate), window, .. }) => Some((*gate, *window)),
            _ => None,
        })
        .map(|(gate, window)| (gate, Arc::new(Semaphore::new(window.max(1) as usize))))
        .collect()
}

/// Starts each open session's task; senders stop at `senders_stop`, the rest when everything does.
fn spawn_sessions(
    base: &Ctx,
    plan: &Arc<Plan>,
    opened: Vec<(SessionPlan, Socket)>,
    gates: &HashMap<usize, Arc<Semaphore>>,
    senders_stop: &CancellationToken,
) -> Vec<JoinHandle<Stats>> {
    let mut tasks = Vec::new();
    for (plan_of, ws) in opened {
        let ctx = base.until(if matches!(plan_of.role, Role::Send(_)) { senders_stop } else { &base.all_stop });
        let task = match plan_of.role {
            Role::Idle | Role::Receive => tokio::spawn(receive(ctx, ws, None, true)),
            Role::Probe { gate } => tokio::spawn(receive(ctx, ws, gates.get(&gate).cloned(), true)),
            Role::Send(sender) => {
                let gate = sender.gate.and_then(|g| gates.get(&g).cloned());
                tokio::spawn(send(ctx, ws, sender, gate))
            }
            Role::Slow => tokio::spawn(slow(ctx, ws)),
            Role::Flood { rate } => tokio::spawn(flood(ctx, plan.clone(), plan_of.node, ws, rate)),
        };
        tasks.push(task);
    }
    tasks
}

/// Emits the live counters every second, for the parent's progress line, until aborted.
fn spawn_progress(live: Arc<Live>, start: Instant) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.tick().await;
        loop {
            every.tick().await;
            emit(json!({"type": "progress", "elapsed_ms": start.elapsed().as_millis() as u64,
                "sessions": live.sessions.load(Ordering::Relaxed), "sent": live.sent.load(Ordering::Relaxed),
                "acked": live.acked.load(Ordering::Relaxed), "deliveries": live.deliveries.load(Ordering::Relaxed),
                "errors": live.errors.load(Ordering::Relaxed)}));
        }
    })
}

/// Opens every planned session, `connect_concurrency` at a time.
async fn open_all(
    plan: &Plan,
    index: usize,
    sessions: &[SessionPlan],
    stats: &mut Stats,
) -> Vec<(SessionPlan, Socket)> {
    let results: Vec<(SessionPlan, Duration, Result<Socket, String>)> = stream::iter(sessions.iter().enumerate())
        .map(|(i, s)| async move {
            let rcvbuf = matches!(s.role, Role::Slow).then_some(SLOW_RCVBUF);
            let source = source_of(plan, index, i);
            let began = Instant::now();
            let ws =
                conn::open(plan.protocol, plan.nodes[s.node % plan.nodes.len()], source, s.token.as_deref(), rcvbuf)
                    .await;
            (s.clone(), began.elapsed(), ws)
        })
        .buffer_unordered(plan.connect_concurrency.max(1))
        .collect()
        .await;
    let mut open = Vec::with_capacity(results.len());
    for (s, took, ws) in results {
        match ws {
            Ok(ws) => {
                stats.sessions += 1;
                stats.connect_latency.record(took.as_micros() as u64);
                open.push((s, ws));
            }
            Err(reason) => Stats::fail(&mut stats.connect_failures, &reason),
        }
    }
    open
}

/// Spreads a worker's connections over the source addresses.
fn source_of(plan: &Plan, worker: usize, i: usize) -> Option<std::net::IpAddr> {
    (!plan.sources.is_empty()).then(|| plan.sources[(worker + i * plan.workers.len().max(1)) % plan.sources.len()])
}

/// What every session task shares.
struct Ctx {
    protocol: Protocol,
    live: Arc<Live>,
    /// Delivery latencies of the whole worker.
    latency: Shared,
    /// Acknowledgement latencies.
    ack_latency: Shared,
    /// Storm sessions' open latencies.
    connect_latency: Shared,
    start: Instant,
    start_us: u64,
    /// When this task must stop its work.
    stop: CancellationToken,
    /// When everything stops.
    all_stop: CancellationToken,
}

impl Ctx {
    /// The same context, stopping at `stop`.
    fn until(&self, stop: &CancellationToken) -> Ctx {
        Ctx {
            protocol: self.protocol,
            live: self.live.clone(),
            latency: self.latency.clone(),
            ack_latency: self.ack_latency.clone(),
            connect_latency: self.connect_latency.clone(),
            start: self.start,
            start_us: self.start_us,
            stop: stop.clone(),
            all_stop: self.all_stop.clone(),
        }
    }
}

/// What a reading task does with each frame.
struct Reader {
    stats: Stats,
    gaps: GapCheck,
    check_gaps: bool,
    gate: Option<Arc<Semaphore>>,
    latency: Recorder,
    ack_latency: Recorder,
}

impl Reader {
    fn new(ctx: &Ctx, gate: Option<Arc<Semaphore>>, check_gaps: bool) -> Reader {
        Reader {
            stats: Stats::default(),
            gaps: GapCheck::default(),
            check_gaps,
            gate,
            latency: ctx.latency.recorder(),
            ack_latency: ctx.ack_latency.recorder(),
        }
    }

    /// Handles one text frame; returns an answer to send back, if the protocol needs one.
    fn frame(&mut self, ctx: &Ctx, text: &str, acks: Option<&mut AckBook>) -> Option<&'static str> {
        match conn::classify(ctx.protocol, text) {
            Incoming::Delivery { conversation, seq, sent_us } => {
                self.stats.deliveries += 1;
                self.stats.delivered_bytes += text.len() as u64;
                ctx.live.deliveries.fetch_add(1, Ordering::Relaxed);
                self.latency.record(wall_us().saturating_sub(sent_us));
                if self.check_gaps {
                    self.gaps.see(conversation, seq);
                }
                if let Some(gate) = &self.gate {
                    gate.add_permits(1);
                }
                None
            }
            Incoming::Reply { id, error, .. } => {
                if let Some(acks) = acks {
                    acks.answered(&mut self.stats, &mut self.ack_latency, ctx, id, error);
                }
                None
            }
            Incoming::Ping(answer) => Some(answer),
            Incoming::Other => None,
        }
    }

    fn finish(mut self) -> Stats {
        self.stats.gaps.add(&self.gaps.gaps());
        self.stats
    }
}

/// A sender's outstanding requests.
struct AckBook {
    sent_at: HashMap<u64, u64>,
    window: Option<Arc<Semaphore>>,
}

impl AckBook {
    fn answered(&mut self, stats: &mut Stats, latency: &mut Recorder, ctx: &Ctx, id: u64, error: Option<&str>) {
        if let Some(at) = self.sent_at.remove(&id) {
            match error {
                None => {
                    stats.acked += 1;
                    ctx.live.acked.fetch_add(1, Ordering::Relaxed);
                    latency.record(wall_us().saturating_sub(at));
                }
                Some(reason) => {
                    ctx.live.errors.fetch_add(1, Ordering::Relaxed);
                    Stats::fail(&mut stats.errors, reason);
                }
            }
            if let Some(window) = &self.window {
                window.add_permits(1);
            }
        }
    }
}

fn close_reason(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    frame.map_or("no_close_frame".into(), |f| format!("{} {}", u16::from(f.code), f.reason))
}

/// A frame read, or why reading ends (recorded in the reader's stats).
fn text_of(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    reader: &mut Reader,
) -> Option<Option<Utf8Bytes>> {
    match frame {
        Some(Ok(Message::Text(text))) => Some(Some(text)),
        Some(Ok(Message::Close(frame))) => {
            Stats::fail(&mut reader.stats.closed, &close_reason(frame));
            None
        }
        Some(Ok(_)) => Some(None),
        Some(Err(_)) | None => {
            Stats::fail(&mut reader.stats.closed, "connection lost");
            None
        }
    }
}

/// Reads until the stop: deliveries, pings, closes.
async fn receive(ctx: Ctx, ws: Socket, gate: Option<Arc<Semaphore>>, check_gaps: bool) -> Stats {
    let (mut sink, mut source) = ws.split();
    let mut reader = Reader::new(&ctx, gate, check_gaps);
    loop {
        let frame = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            frame = source.next() => frame,
        };
        let Some(text) = text_of(frame, &mut reader) else { break };
        if let Some(answer) = text.and_then(|t| reader.frame(&ctx, &t, None))
            && sink.send(Message::Text(answer.into())).await.is_err()
        {
            break;
        }
    }
    reader.finish()
}

/// Sends on the schedule or window of `sender`, reading replies and deliveries meanwhile.
async fn send(ctx: Ctx, ws: Socket, sender: Sender, gate: Option<Arc<Semaphore>>) -> Stats {
    let (mut sink, source) = ws.split();
    let ack_window =
        (sender.rate <= 0.0 && gate.is_none()).then(|| Arc::new(Semaphore::new(sender.window.max(1) as usize)));
    let book = Arc::new(std::sync::Mutex::new(AckBook { sent_at: HashMap::new(), window: ack_window.clone() }));
    // What the reading half must answer (socket.io's pings) goes out through this writing half.
    let (answer, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let reading = tokio::spawn(read_replies(ctx.until(&ctx.all_stop), source, book.clone(), answer));
    let mut sent = 0u64;
    let pad = conn::pad_member(sender.pad);
    let mut pacer = Pacer::new(sender.rate);
    let window = gate.or(ack_window);
    loop {
        let sent_us = match (&mut pacer, &window) {
            (Some(pacer), _) => match pacer.next(ctx.start.elapsed()) {
                Next::Send(due) => ctx.start_us + due.as_micros() as u64,
                Next::Wait(due) => {
                    tokio::select! {
                        _ = ctx.stop.cancelled() => break,
                        Some(reply) = answers.recv() => {
                            if sink.send(Message::Text(reply.into())).await.is_err() { break }
                            continue;
                        }
                        _ = tokio::time::sleep_until((ctx.start + due).into()) => continue,
                    }
                }
            },
            (None, Some(window)) => {
                tokio::select! {
                    _ = ctx.stop.cancelled() => break,
                    Some(reply) = answers.recv() => {
                        if sink.send(Message::Text(reply.into())).await.is_err() { break }
                        continue;
                    }
                    permit = window.acquire() => match permit {
                        Ok(permit) => permit.forget(),
                        Err(_) => break,
                    },
                }
                wall_us()
            }
            (None, None) => break,
        };
        if ctx.stop.is_cancelled() {
            break;
        }
        sent += 1;
        let frame = conn::send_frame(ctx.protocol, sent, &sender.chat_type, &sender.to, &sender.key, sent_us, &pad);
        if ctx.protocol == Protocol::Chatgate {
            let mut book = book.lock().unwrap_or_else(|e| e.into_inner());
            if book.sent_at.len() < MAX_PENDING_ACKS {
                book.sent_at.insert(sent, sent_us);
            }
        }
        ctx.live.sent.fetch_add(1, Ordering::Relaxed);
        let mut ok = true;
        while let (true, Ok(reply)) = (ok, answers.try_recv()) {
            ok = sink.feed(Message::Text(reply.into())).await.is_ok();
        }
        if !ok || sink.send(Message::Text(frame.into())).await.is_err() {
            break;
        }
    }
    // Replies to the last sends still count, until everything stops.
    let mut stats = reading.await.unwrap_or_default();
    stats.sent += sent;
    stats
}

async fn read_replies(
    ctx: Ctx,
    mut source: SplitStream<Socket>,
    book: Arc<std::sync::Mutex<AckBook>>,
    answer: tokio::sync::mpsc::UnboundedSender<&'static str>,
) -> Stats {
    // A sender's own stream is not a complete sequence (its own messages come back as
    // replies), so it is not gap-checked.
    let mut reader = Reader::new(&ctx, None, false);
    loop {
        let frame = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            frame = source.next() => frame,
        };
        let Some(text) = text_of(frame, &mut reader) else { break };
        if let Some(text) = text {
            let mut book = book.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(reply) = reader.frame(&ctx, &text, Some(&mut book)) {
                let _ = answer.send(reply);
            }
        }
    }
    reader.finish()
}

/// Never reads. Writes a small ping now and then: once the server has dropped the session, a
/// write fails, which tells when.
async fn slow(ctx: Ctx, mut ws: Socket) -> Stats {
    let mut stats = Stats::default();
    let mut every = tokio::time::interval(SLOW_PROBE);
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => break,
            _ = every.tick() => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    stats.dropped_after_ms = Some(ctx.start.elapsed().as_secs_f64() * 1000.0);
                    Stats::fail(&mut stats.closed, "slow consumer dropped");
                    break;
                }
            }
        }
    }
    stats
}

/// Opens sessions at `storm.rate` (or as fast as `storm.concurrency` allows) until the stop.
async fn storm_run(ctx: Ctx, plan: Arc<Plan>, index: usize, storm: Storm) -> Stats {
    let in_flight = Arc::new(Semaphore::new(storm.concurrency.max(1)));
    let mut pacer = Pacer::new(storm.rate);
    let mut opened = tokio::task::JoinSet::new();
    let mut stats = Stats::default();
    let mut n = 0usize;
    loop {
        // Sessions that are done leave the set as it goes: a long storm holds only those open.
        while let Some(done) = opened.try_join_next() {
            if let Ok(s) = done {
                stats.merge(&s);
            }
        }
        let due_us = match &mut pacer {
            Some(pacer) => match pacer.next(ctx.start.elapsed()) {
                Next::Send(due) => ctx.start_us + due.as_micros() as u64,
                Next::Wait(due) => {
                    tokio::select! {
                        _ = ctx.stop.cancelled() => break,
                        _ = tokio::time::sleep_until((ctx.start + due).into()) => continue,
                    }
                }
            },
            None => wall_us(),
        };
        let permit = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            permit = in_flight.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
        };
        let token = (!storm.tokens.is_empty()).then(|| storm.tokens[n % storm.tokens.len()].clone());
        let node = plan.nodes[n % plan.nodes.len()];
        let source = source_of(&plan, index, n);
        let (protocol, live, hold, stop) = (ctx.protocol, ctx.live.clone(), storm.hold, ctx.all_stop.clone());
        let mut connect_latency = ctx.connect_latency.recorder();
        n += 1;
        opened.spawn(async move {
            let mut stats = Stats::default();
            match conn::open(protocol, node, source, token.as_deref(), None).await {
                Ok(mut ws) => {
                    stats.sessions += 1;
                    live.sessions.fetch_add(1, Ordering::Relaxed);
                    // From the scheduled time: a late open counts its wait.
                    connect_latency.record(wall_us().saturating_sub(due_us));
                    drop(permit);
                    if hold {
                        stop.cancelled().await;
                    }
                    let _ = ws.close(None).await;
                }
                Err(reason) => Stats::fail(&mut stats.connect_failures, &reason),
            }
            stats
        });
    }
    while let Some(done) = opened.join_next().await {
        if let Ok(s) = done {
            stats.merge(&s);
        }
    }
    stats
}

/// Reads a plan file and runs worker `index` of it.
pub async fn main(plan_path: &std::path::Path, index: usize) -> anyhow::Result<()> {
    let plan: Plan = serde_json::from_slice(&std::fs::read(plan_path)?)?;
    run(plan, index).await
}
