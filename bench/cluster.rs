//! Cross-node delivery: a group whose members are split over two nodes, against the same group
//! on one node, in one run on the local cluster of `scripts/cluster.sh` (release nodes,
//! PostgreSQL, Redis, haproxy).
//!
//! Run: `cargo bench --bench cluster`. Reports deliveries per second and end-to-end latency for
//! both layouts, their ratio, and the Redis PUBLISH calls per group message (read from Redis's
//! own command statistics).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

const MEMBERS: usize = 400;
const SECONDS: u64 = 8;

/// One sender on node 0; receivers on the given nodes, round robin. Returns the figures.
async fn fanout(cluster: &common::Cluster, label: &str, users: &[(String, String)], layout: &[usize]) -> Value {
    let node0 = cluster.node(0);
    let (_, owner_token) = &users[0];
    let members: Vec<&String> = users[1..].iter().map(|(id, _)| id).collect();
    let group = node0.call(owner_token, "/group/room/add", json!({"name": label, "members": members})).await;
    let gid = group["group"]["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let (stop, stopped) = watch::channel(false);
    let mut receivers = Vec::new();
    for (i, (_, token)) in users[1..].iter().enumerate() {
        let node = cluster.node(layout[i % layout.len()]);
        receivers.push(common::receive(
            node.socket(token).await,
            start,
            delivered.clone(),
            latency.clone(),
            stopped.clone(),
        ));
    }
    // Let every node finish subscribing to the group's channel.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let publishes_before = cluster.publishes();
    let began = Instant::now();
    let ws = node0.socket(owner_token).await;
    let sent = common::send_loop(ws, "group", gid, start, began + Duration::from_secs(SECONDS), 0).await;
    let expected = sent * (users.len() as u64 - 1);
    let waited = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = began.elapsed().as_secs_f64();
    let publishes = cluster.publishes() - publishes_before;
    let got = delivered.load(Ordering::Relaxed);
    let _ = stop.send(true);
    for r in receivers {
        let _ = r.await;
    }
    let rate = got as f64 / elapsed;
    println!(
        "{label:<10} {} members on nodes {layout:?}: {sent} messages, {got}/{expected} deliveries, {rate:.0}/s; {publishes} PUBLISH = {:.2} per message",
        users.len() - 1,
        publishes as f64 / sent as f64
    );
    let lat = common::summary(label, &*latency.lock().await);
    json!({"layout": label, "messages": sent, "deliveries": got, "expected": expected, "deliveries_per_sec": rate.round(),
           "publishes": publishes, "publishes_per_message": publishes as f64 / sent as f64, "latency": lat})
}

#[tokio::main]
async fn main() {
    let cluster = tokio::task::spawn_blocking(|| common::Cluster::start(2)).await.unwrap();
    let node0 = cluster.node(0);
    let single_users = node0.users("one", MEMBERS + 1).await;
    let split_users = node0.users("two", MEMBERS + 1).await;
    let single = fanout(&cluster, "one-node", &single_users, &[0]).await;
    let split = fanout(&cluster, "two-nodes", &split_users, &[0, 1]).await;
    let ratio = split["deliveries_per_sec"].as_f64().unwrap() / single["deliveries_per_sec"].as_f64().unwrap();
    let added = split["latency"]["p50_ms"].as_f64().unwrap() - single["latency"]["p50_ms"].as_f64().unwrap();
    println!("cross-node / single-node throughput: {ratio:.2}; p50 latency added: {added:.2} ms");
    println!("{}", json!({"bench": "cluster", "results": [single, split], "ratio": ratio, "p50_added_ms": added}));
}
