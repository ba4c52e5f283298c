//! The exactness run: bots send, edit, react, recall and read over pipelined sockets while the
//! server may be killed and restarted under them; then every bot syncs from nothing and the
//! report counts what the server got wrong against what it acknowledged.
//!
//! Each bot keeps a ledger of the operations the server acknowledged, which is the truth the
//! server promised: an acknowledged message is durable, one session's sends keep their order, an
//! acknowledged change is applied once. A connection that drops (the server killed, say) is
//! opened again, and every operation not yet acknowledged is sent again, in order, with the same
//! idempotency key: the server must answer a repeat with what it stored the first time.

mod verify;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::cli::Args;
use crate::conn::{self, Protocol};
use crate::users::{BotUser, Pool};

/// How long, past the run, bots keep trying to get their last operations acknowledged.
const DRAIN: Duration = Duration::from_secs(60);
/// A socket silent this long while answers are due is taken for dead.
const STALL: Duration = Duration::from_secs(5);
/// Reasons that mean "not now" rather than "no": the operation is sent again.
const TRANSIENT: &[&str] = &["rate_limited", "unavailable", "internal", "timeout", "busy", "shutting_down"];
/// The reaction keys bots use.
const KEYS: &[&str] = &["👍", "🎉", "❤"];

/// A conversation a bot writes to.
#[derive(Debug, Clone)]
struct Target {
    conversation: String,
    chat_type: &'static str,
    to: String,
}

/// An operation, as sent.
#[derive(Debug, Clone)]
enum Op {
    Send { target: Target, key: String, text: String },
    Edit { id: String, text: String },
    React { id: String, key: &'static str, add: bool },
    Recall { id: String },
    Read { conversation: String, seq: i64 },
}

/// An operation waiting for its answer: its place in the bot's order, and its request id on
/// the current socket once sent there.
struct Pending {
    index: u64,
    op: Op,
    request: Option<u64>,
}

/// What the server acknowledged to one bot, in the bot's order.
#[derive(Debug, Default)]
pub struct Ledger {
    /// The bot's user id.
    pub user: String,
    /// `(index, conversation, message id, seq, text)` of each message stored.
    pub sent: Vec<(u64, String, String, i64, String)>,
    /// `(index, message id, text)` of each edit applied.
    pub edits: Vec<(u64, String, String)>,
    /// `(index, message id, key, added)` of each reaction change applied.
    pub reactions: Vec<(u64, String, String, bool)>,
    /// Messages recalled.
    pub recalls: Vec<String>,
    /// Operations refused, by reason.
    pub refused: HashMap<String, u64>,
    /// Operations never answered, even after the drain.
    pub unresolved: u64,
    /// Times the socket was opened again.
    pub reconnects: u64,
}

/// Messages any bot may react to: `(id, conversation)`.
type Board = Arc<Mutex<Vec<(String, String)>>>;

/// A small deterministic generator: a run's choices replay from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// One bot: its user, where it writes, and what it knows.
struct Bot {
    user: BotUser,
    targets: Vec<Target>,
    rng: Rng,
    next: u64,
    pending: VecDeque<Pending>,
    ledger: Ledger,
    /// Its own messages that may still be edited or recalled: `(id, conversation)`.
    own: Vec<(String, String)>,
    /// The newest seq it knows of each conversation.
    newest: HashMap<String, i64>,
    board: Board,
}

/// Runs the exactness scenario against the first server of `args` and prints its report.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    if args.protocol != Protocol::Chatgate {
        bail!("the exact scenario speaks chatgate's protocol only");
    }
    let server = args.nodes()?[0];
    let mut pool = Pool::open(&args.state, &server.to_string())?;
    let users = pool.users(&format!("{}-exact-", args.prefix), args.users.clamp(2, 64)).await?;
    let group = pool.group(&format!("{}-exact-g{}", args.prefix, users.len()), &users).await?;
    let board: Board = Arc::default();
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let mut bots = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let peer = &users[(i + 1) % users.len()];
        let targets = vec![
            Target { conversation: format!("g:{group}"), chat_type: "group", to: group.clone() },
            Target { conversation: single(&user.id, &peer.id), chat_type: "single", to: peer.id.clone() },
        ];
        let ledger = Ledger { user: user.id.clone(), ..Ledger::default() };
        let bot = Bot {
            user: user.clone(),
            targets,
            rng: Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1)),
            next: 0,
            pending: VecDeque::new(),
            ledger,
            own: Vec::new(),
            newest: HashMap::new(),
            board: board.clone(),
        };
        let window = args.window.clamp(1, 64) as usize;
        bots.push(tokio::spawn(bot.run(server, window, deadline)));
    }
    eprintln!("{} sessions open; running for {} s", users.len(), args.duration);
    let mut ledgers = Vec::new();
    for bot in bots {
        ledgers.push(bot.await?);
    }
    eprintln!("the run is over; every bot syncs from nothing and checks what it holds");
    let report = verify::check(&pool, &users, &ledgers).await?;
    eprintln!("{}", verify::summary(&report));
    let json = serde_json::to_string(&json!({"scenario": "exact", "stats": report}))?;
    match args.json.as_deref() {
        Some(path) if path == std::path::Path::new("-") => println!("{json}"),
        Some(path) => std::fs::write(path, json)?,
        None => {}
    }
    Ok(())
}

/// The id of the one-to-one conversation of two users.
fn single(a: &str, b: &str) -> String {
    let (a, b): (i64, i64) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
    format!("s:{}:{}", a.min(b), a.max(b))
}

impl Bot {
    /// Operates until `deadline`, then until every operation is answered (or the drain ends).
    async fn run(mut self, server: SocketAddr, window: usize, deadline: Instant) -> Ledger {
        let give_up = deadline + DRAIN;
        let mut first = true;
        while Instant::now() < give_up && (Instant::now() < deadline || !self.pending.is_empty()) {
            let ws = match conn::open(Protocol::Chatgate, server, None, Some(&self.user.token), None).await {
                Ok(ws) => ws,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if !first {
                self.ledger.reconnects += 1;
            }
            first = false;
            self.session(ws, window, deadline, give_up).await;
        }
        self.ledger.unresolved = self.pending.len() as u64;
        self.ledger
    }

    /// One socket's life: what waits is sent again first, in order.
    async fn session(&mut self, ws: conn::Socket, window: usize, deadline: Instant, give_up: Instant) {
        let (mut tx, mut rx) = ws.split();
        let mut request = 0u64;
        for p in self.pending.iter_mut() {
            p.request = None;
        }
        loop {
            // Send what waits, then new operations while the window has room.
            while let Some(p) = self.pending.iter_mut().find(|p| p.request.is_none()) {
                request += 1;
                p.request = Some(request);
                if tx.send(Message::Text(frame(request, &p.op).into())).await.is_err() {
                    return;
                }
            }
            if Instant::now() < deadline && self.pending.len() < window {
                if let Some(op) = self.choose() {
                    self.next += 1;
                    self.pending.push_back(Pending { index: self.next, op, request: None });
                }
                continue;
            }
            if Instant::now() >= give_up || (Instant::now() >= deadline && self.pending.is_empty()) {
                return;
            }
            let frame = match tokio::time::timeout(STALL, rx.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(_))) => continue,
                // Closed, broken, or silent with answers due: open another.
                _ => return,
            };
            let Ok(frame) = serde_json::from_str::<Value>(&frame) else { continue };
            if frame["type"] == "push" && frame["event"] == "message.new" {
                let m = &frame["data"]["message"];
                self.saw(m["conversationId"].as_str().unwrap_or_default(), m["seq"].as_i64().unwrap_or(0));
            } else if frame["type"] == "res" && !self.answered(&frame) {
                return;
            }
        }
    }

    /// Applies an answer; false if the socket should be opened again (a transient refusal:
    /// what waits is then sent again in order).
    fn answered(&mut self, frame: &Value) -> bool {
        let Some(id) = frame["id"].as_u64() else { return true };
        let Some(at) = self.pending.iter().position(|p| p.request == Some(id)) else { return true };
        if let Some(reason) = frame["error"].as_str() {
            if TRANSIENT.contains(&reason) {
                return false;
            }
            *self.ledger.refused.entry(reason.to_owned()).or_default() += 1;
            self.pending.remove(at);
            return true;
        }
        let Some(p) = self.pending.remove(at) else { return true };
        let data = &frame["data"];
        match p.op {
            Op::Send { target, text, .. } => {
                let m = &data["message"];
                let (id, seq) = (m["id"].as_str().unwrap_or_default().to_owned(), m["seq"].as_i64().unwrap_or(0));
                self.saw(&target.conversation, seq);
                self.ledger.sent.push((p.index, target.conversation.clone(), id.clone(), seq, text));
                self.own.push((id.clone(), target.conversation.clone()));
                self.board.lock().unwrap_or_else(|e| e.into_inner()).push((id, target.conversation));
            }
            Op::Edit { id, text } => self.ledger.edits.push((p.index, id, text)),
            Op::React { id, key, add } => self.ledger.reactions.push((p.index, id, key.to_owned(), add)),
            Op::Recall { id } => self.ledger.recalls.push(id),
            Op::Read { .. } => {}
        }
        true
    }

    fn saw(&mut self, conversation: &str, seq: i64) {
        let newest = self.newest.entry(conversation.to_owned()).or_default();
        *newest = (*newest).max(seq);
    }

    /// The next operation: mostly sends, then reads, reactions, edits and recalls.
    fn choose(&mut self) -> Option<Op> {
        let roll = self.rng.below(100);
        let target = self.targets[self.rng.below(self.targets.len())].clone();
        if roll < 50 || self.own.is_empty() {
            let text = format!("{}-{}", self.user.id, self.next + 1);
            return Some(Op::Send { key: format!("x{text}"), text, target });
        }
        if roll < 70 {
            let seq = self.newest.get(&target.conversation).copied()?;
            return Some(Op::Read { conversation: target.conversation, seq });
        }
        if roll < 85 {
            let mine: Vec<String> = self.targets.iter().map(|t| t.conversation.clone()).collect();
            let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
            let reachable: Vec<&(String, String)> = board.iter().filter(|(_, c)| mine.contains(c)).collect();
            let (id, _) = reachable.get(self.rng.below(reachable.len()))?;
            let (id, key, add) = (id.clone(), KEYS[self.rng.below(KEYS.len())], self.rng.below(3) > 0);
            return Some(Op::React { id, key, add });
        }
        let at = self.rng.below(self.own.len());
        if roll < 95 {
            let id = self.own[at].0.clone();
            return Some(Op::Edit { text: format!("{id}/edit{}", self.next + 1), id });
        }
        let (id, _) = self.own.swap_remove(at);
        Some(Op::Recall { id })
    }
}

/// The request frame of `op`, with request id `id`.
fn frame(id: u64, op: &Op) -> String {
    let (route, data) = match op {
        Op::Send { target, key, text } => (
            "/message/send",
            json!({"chatType": target.chat_type, "to": target.to, "kind": "text", "content": {"text": text}, "clientMsgId": key}),
        ),
        Op::Edit { id, text } => ("/message/edit", json!({"messageId": id, "content": {"text": text}})),
        Op::React { id, key, add } => {
            (if *add { "/message/react" } else { "/message/unreact" }, json!({"messageId": id, "key": key}))
        }
        Op::Recall { id } => ("/message/recall", json!({"messageId": id})),
        Op::Read { conversation, seq } => ("/conversation/read", json!({"conversationId": conversation, "seq": seq})),
    };
    json!({"type": "req", "id": id, "route": route, "data": data}).to_string()
}
