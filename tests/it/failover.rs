//! A node crash behind the load balancer: the local cluster of `scripts/cluster.sh`
//! (redis-server, PostgreSQL, two node processes, haproxy).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::WAIT;

struct Cluster {
    dir: tempfile::TempDir,
    lb: String,
    nodes: Vec<String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh")
}

impl Cluster {
    fn start(nodes: usize) -> Cluster {
        let dir = tempfile::Builder::new().prefix("chatgate-cluster-").tempdir().unwrap();
        let out = Command::new(script())
            .args(["start", dir.path().to_str().unwrap(), &nodes.to_string()])
            .env("CHATGATE_BIN", env!("CARGO_BIN_EXE_chatgate"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // Built before the checks so that a failed start is still stopped on drop.
        let mut cluster = Cluster { lb: String::new(), dir, nodes: Vec::new() };
        assert!(out.status.success(), "cluster.sh start failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        cluster.lb = text.lines().find_map(|l| l.strip_prefix("LB_URL=")).expect("LB_URL").to_owned();
        let nodes = text.lines().find_map(|l| l.strip_prefix("NODE_URLS=")).expect("NODE_URLS");
        cluster.nodes = nodes.split_whitespace().map(str::to_owned).collect();
        cluster
    }

    fn kill_node(&self, i: usize) {
        let status = Command::new(script())
            .args(["kill-node", self.dir.path().to_str().unwrap(), &i.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["stop", self.dir.path().to_str().unwrap()]).status();
    }
}

/// A client that talks to the load balancer only.
struct Client {
    lb: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    async fn register(lb: &str, name: &str) -> (Client, String) {
        let (token, id) = crate::harness::register_at(lb, name).await;
        (Client { lb: lb.to_owned(), token, http: reqwest::Client::new() }, id)
    }

    /// Calls a route, retrying while the balancer still routes to the dead node: the
    /// `clientMsgId` makes a retried send safe.
    async fn call(&self, route: &str, data: Value) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let sent = self.http.post(format!("{}{route}", self.lb)).bearer_auth(&self.token).json(&data).send().await;
            if let Ok(resp) = sent
                && resp.status().is_success()
                && let Ok(body) = resp.json::<Value>().await
            {
                return body["data"].clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "{route} kept failing");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn socket(&self) -> Option<crate::harness::Ws> {
        let url = self.lb.replace("http://", "ws://") + "/ws";
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {}", self.token).parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        Some(crate::harness::Ws::wrap(socket))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_its_clients_reconnect_and_catch_up() {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(2)).await.unwrap();
    let (sender, _) = Client::register(&cluster.lb, "f-sender").await;
    let mut receivers = Vec::new();
    for i in 0..4 {
        let (client, id) = Client::register(&cluster.lb, &format!("f-receiver-{i}")).await;
        let ws = client.socket().await.expect("connects through the balancer");
        receivers.push((client, id, ws));
    }
    let mut acked: Vec<Vec<String>> = vec![Vec::new(); receivers.len()];
    let send = |to: &str, n: usize| json!({"chatType": "single", "to": to, "kind": "text", "content": {"text": format!("m{n}")}, "clientMsgId": format!("{to}-{n}")});
    for (i, (_, id, _)) in receivers.iter().enumerate() {
        let m = sender.call("/message/send", send(id, 0)).await;
        acked[i].push(m["message"]["id"].as_str().unwrap().to_owned());
    }

    cluster.kill_node(1);
    // Messages keep flowing through the balancer while node 1 is dead.
    for round in 1..=3 {
        for (i, (_, id, _)) in receivers.iter().enumerate() {
            let m = sender.call("/message/send", send(id, round)).await;
            acked[i].push(m["message"]["id"].as_str().unwrap().to_owned());
        }
    }

    let mut dropped = 0;
    for (i, (client, _, ws)) in receivers.iter_mut().enumerate() {
        // A socket on the dead node ends; its client reconnects through the balancer.
        let ended = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                match ws.recv().await {
                    Ok(_) => continue,
                    Err(closed) => return closed,
                }
            }
        })
        .await;
        if ended.is_ok() {
            dropped += 1;
            let deadline = tokio::time::Instant::now() + WAIT;
            *ws = loop {
                if let Some(ws) = client.socket().await {
                    break ws;
                }
                assert!(tokio::time::Instant::now() < deadline, "could not reconnect");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
        }
        // Every receiver, moved or not, recovers everything by seq.
        let synced = client.call("/message/sync", json!({})).await;
        let conversation = &synced["conversations"][0];
        let ids: Vec<String> =
            conversation["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids, acked[i], "receiver {i}");
        let seqs: Vec<i64> =
            conversation["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }
    assert!(dropped >= 1, "the balancer put no socket on node 1");
}

/// An HTTP client whose connections leave from `address` (127.0.0.2, 127.0.0.3, ...).
fn from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(address)).build().unwrap()
}

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = http.post(url).json(&body).header("x-forwarded-for", "203.0.113.9");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// Behind the shipped haproxy, each client is known by its own address: the login log records
/// it, per-address limits are its own, and a forged `X-Forwarded-For` changes nothing, through
/// the balancer or straight to a node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_passes_on_each_clients_own_address() {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(2)).await.unwrap();
    let (two, three) = (from([127, 0, 0, 2]), from([127, 0, 0, 3]));
    let lb = |route: &str| format!("{}{route}", cluster.lb);
    let credentials = |name: &str| json!({"username": name, "password": "a long enough password"});
    let mut tokens = Vec::new();
    for (http, name) in [(&two, "addr-two"), (&three, "addr-three")] {
        let reply = post(http, lb("/user/register"), None, credentials(name)).await;
        tokens.push(reply["data"]["token"].as_str().expect("registered").to_owned());
    }
    let direct = format!("{}/user/login", cluster.nodes[0]);
    assert_eq!(post(&two, direct, None, credentials("addr-two")).await["code"], 0);
    for (http, token, ip) in [(&two, &tokens[0], "127.0.0.2"), (&three, &tokens[1], "127.0.0.3")] {
        let request = http.get(lb("/user/loginLog")).bearer_auth(token).header("x-forwarded-for", "203.0.113.9");
        let log: Value = request.send().await.unwrap().json().await.unwrap();
        let ips: Vec<&str> =
            log["data"]["logs"].as_array().unwrap().iter().map(|l| l["ip"].as_str().unwrap()).collect();
        assert!(!ips.is_empty() && ips.iter().all(|i| *i == ip), "{ip}: {log}");
    }

    // 127.0.0.2 runs through its own per-address buckets (50/s, bursts of 100, on each node);
    // 127.0.0.3 is not touched by it.
    let flood = futures::stream::iter(0..600)
        .map(|_| post(&two, lb("/no/such/route"), None, json!({})))
        .buffer_unordered(16)
        .collect::<Vec<Value>>()
        .await;
    let limited = flood.iter().filter(|r| r["error"] == "rate_limited").count();
    assert!(limited > 0, "600 requests from one address were never limited");
    let other = post(&three, lb("/no/such/route"), None, json!({})).await;
    assert_eq!(other["error"], "route.unknown", "127.0.0.3 was limited with 127.0.0.2: {other}");
}
