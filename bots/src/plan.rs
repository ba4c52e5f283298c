//! What each worker process does: the plan the parent writes after setting users and groups
//! up, and every worker reads.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::conn::Protocol;

/// One run, split between workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The servers' protocol.
    pub protocol: Protocol,
    /// The nodes sessions are spread over.
    pub nodes: Vec<SocketAddr>,
    /// Source addresses connections are spread over (ephemeral ports run out per address).
    pub sources: Vec<IpAddr>,
    /// How long traffic runs, after every session is open.
    pub duration_ms: u64,
    /// How long receivers keep counting after the senders stop.
    pub drain_ms: u64,
    /// Sessions one worker opens at once while setting up.
    pub connect_concurrency: usize,
    /// Each worker's share.
    pub workers: Vec<Share>,
}

/// One worker's sessions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Share {
    /// Sessions opened before traffic starts.
    pub sessions: Vec<SessionPlan>,
    /// Sessions opened during the run, at a rate.
    pub storm: Option<Storm>,
}

/// One session to hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionPlan {
    /// Index into [`Plan::nodes`].
    pub node: usize,
    /// chatgate's login token.
    pub token: Option<String>,
    /// What it does.
    pub role: Role,
}

/// What a session does during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Role {
    /// Holds the connection, answering pings.
    Idle,
    /// Counts deliveries and checks their seqs.
    Receive,
    /// A receiver whose deliveries open the window of the senders with the same `gate`.
    Probe {
        /// The gate it opens.
        gate: usize,
    },
    /// Sends messages.
    Send(Sender),
    /// Never reads: a slow consumer.
    Slow,
    /// Sends malformed frames at `rate` per second, counting the typed errors and closes they
    /// get (and opening a new socket after each close).
    Flood {
        /// Bad frames per second.
        rate: f64,
    },
}

/// How a sender sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sender {
    /// `single` or `group` (chatgate).
    pub chat_type: String,
    /// The peer's or group's id (chatgate).
    pub to: String,
    /// This sender's idempotency-key prefix, unique per run.
    pub key: String,
    /// Sends per second, open loop; 0 for a closed-loop window.
    pub rate: f64,
    /// Closed loop: sends outstanding at most.
    pub window: u64,
    /// Closed loop on deliveries: the window is reopened by this gate's probe, not by acks.
    pub gate: Option<usize>,
    /// Bytes of padding each message carries.
    pub pad: usize,
}

/// Sessions opened during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Storm {
    /// Sessions per second; 0 for as fast as `concurrency` allows.
    pub rate: f64,
    /// Opens in flight at most.
    pub concurrency: usize,
    /// Tokens used round-robin (chatgate).
    pub tokens: Vec<String>,
    /// Keep the sessions open until the end, instead of closing each once it is ready.
    pub hold: bool,
}
