//! A node crash behind the load balancer: the local cluster of `scripts/cluster.sh`
//! (redis-server, PostgreSQL, two node processes, haproxy).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::WAIT;

struct Cluster {
    dir: tempfile::TempDir,
    lb: String,
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
        let mut cluster = Cluster { lb: String::new(), dir };
        assert!(out.status.success(), "cluster.sh start failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        cluster.lb = text.lines().find_map(|l| l.strip_prefix("LB_URL=")).expect("LB_URL").to_owned();
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
