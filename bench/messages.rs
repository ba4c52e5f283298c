//! Message throughput and latency, on one node with SQLite.
//!
//! Run: `cargo bench --bench messages`. Two scenarios, back to back, against a release
//! `chatgate` pinned to CPU 0 (this load generator pins itself to CPU 1):
//!
//! - **direct**: `PAIRS` sender/receiver pairs over WebSockets; each sender keeps `WINDOW`
//!   sends in flight for `SECONDS`. Reports persisted (acknowledged) messages per second and
//!   end-to-end latency, from the send to the receiver's `message.new`.
//! - **fanout**: one sender in a 1000-member group, every other member online; reports
//!   deliveries per second and end-to-end latency.
//!
//! Latency is measured on this one clock: each message carries its send time (µs since the
//! start) in a `custom` payload.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

const PAIRS: usize = 32;
use common::WINDOW;
const SECONDS: u64 = 10;
const GROUP_MEMBERS: usize = 1000;

async fn direct(server: &common::Server) -> Value {
    let users = server.users("pair", PAIRS * 2).await;
    let start = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let (stop, stopped) = watch::channel(false);
    let mut receivers = Vec::new();
    for pair in users.chunks(2) {
        receivers.push(common::receive(
            server.socket(&pair[1].1).await,
            start,
            delivered.clone(),
            latency.clone(),
            stopped.clone(),
        ));
    }
    let began = Instant::now();
    let deadline = began + Duration::from_secs(SECONDS);
    let mut senders = Vec::new();
    for (i, pair) in users.chunks(2).enumerate() {
        let ws = server.socket(&pair[0].1).await;
        senders.push(tokio::spawn(common::send_loop(ws, "single", pair[1].0.clone(), start, deadline, i)));
    }
    let mut acked = 0;
    for s in senders {
        acked += s.await.unwrap();
    }
    let elapsed = began.elapsed().as_secs_f64();
    let waited = Instant::now();
    while delivered.load(Ordering::Relaxed) < acked && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    for r in receivers {
        let _ = r.await;
    }
    let rate = acked as f64 / elapsed;
    println!(
        "direct   {PAIRS} pairs x {WINDOW} in flight: {acked} persisted in {elapsed:.1} s = {rate:.0} msg/s; {} delivered",
        delivered.load(Ordering::Relaxed)
    );
    let lat = common::summary("direct", &*latency.lock().await);
    json!({"scenario": "direct", "pairs": PAIRS, "window": WINDOW, "persisted": acked, "msgs_per_sec": rate.round(), "latency": lat})
}

async fn fanout(server: &common::Server) -> Value {
    let users = server.users("member", GROUP_MEMBERS).await;
    let (owner_id, owner_token) = users[0].clone();
    let _ = owner_id;
    let members: Vec<&String> = users[1..].iter().map(|(id, _)| id).collect();
    let group = server.call(&owner_token, "/group/room/add", json!({"name": "Fan-out", "members": members})).await;
    let gid = group["group"]["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let (stop, stopped) = watch::channel(false);
    let mut receivers = Vec::new();
    for (_, token) in &users[1..] {
        receivers.push(common::receive(
            server.socket(token).await,
            start,
            delivered.clone(),
            latency.clone(),
            stopped.clone(),
        ));
    }
    let began = Instant::now();
    let ws = server.socket(&owner_token).await;
    let sent = common::send_loop(ws, "group", gid, start, began + Duration::from_secs(SECONDS), 0).await;
    let expected = sent * (GROUP_MEMBERS as u64 - 1);
    let waited = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = began.elapsed().as_secs_f64();
    let got = delivered.load(Ordering::Relaxed);
    let _ = stop.send(true);
    for r in receivers {
        let _ = r.await;
    }
    let rate = got as f64 / elapsed;
    println!(
        "fanout   1 sender, {} online members: {sent} messages, {got}/{expected} deliveries in {elapsed:.1} s = {rate:.0} deliveries/s",
        GROUP_MEMBERS - 1
    );
    let lat = common::summary("fanout", &*latency.lock().await);
    json!({"scenario": "fanout", "members": GROUP_MEMBERS, "messages": sent, "deliveries": got, "expected": expected,
           "deliveries_per_sec": rate.round(), "latency": lat})
}

#[tokio::main]
async fn main() {
    // The load generator gets the other core.
    let _ = std::process::Command::new("taskset").args(["-cp", "1", &std::process::id().to_string()]).output();
    let extra: Vec<String> = std::env::args().skip(1).filter(|a| a.starts_with("--") && a != "--bench").collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let server = common::Server::start(&extra).await;
    let direct = direct(&server).await;
    let fanout = fanout(&server).await;
    println!("{}", json!({"bench": "messages", "backend": "sqlite", "results": [direct, fanout]}));
}
