//! A device returning to a real backlog syncs it over the socket: every reply is paged by bytes
//! as well as by count, so none is too large for the socket, and the device converges.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Backend, Server, Via, Wire, Ws, device, user};
use crate::on_both;

on_both!(a_device_back_from_a_busy_afternoon_syncs_it_all);

const GROUPS: usize = 200;
const PER_GROUP: usize = 100;
/// Sends in flight at once on the sender's socket.
const WINDOW: usize = 200;

/// The text of message `n` of a group: every tenth is 5,000 characters long.
fn text(n: usize) -> String {
    if n.is_multiple_of(10) { format!("{n:>5}").repeat(1000) } else { format!("message {n}") }
}

async fn a_device_back_from_a_busy_afternoon_syncs_it_all(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "backlog-alice").await;
    let (bob, bob_id) = user(&server, Via::Http, "backlog-bob").await;
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let made = alice.call("/group/room/add", json!({"name": format!("Busy {g}"), "members": [bob_id]})).await.ok();
        groups.push(made["group"]["id"].as_str().unwrap().to_owned());
    }
    // Bob is away while Alice's socket pipelines 20,000 sends.
    let mut sender = device(&server, &alice, Wire::MsgPack).await;
    let sends: Vec<(usize, usize)> = (1..=PER_GROUP).flat_map(|n| (0..GROUPS).map(move |g| (g, n))).collect();
    for window in sends.chunks(WINDOW) {
        for (i, &(g, n)) in window.iter().enumerate() {
            let data = json!({"chatType": "group", "to": groups[g], "kind": "text", "content": {"text": text(n)}, "clientMsgId": format!("{g}-{n}")});
            sender.send_value(&json!({"type": "req", "id": i, "route": "/message/send", "data": data})).await;
        }
        for _ in window {
            let reply = sender.recv().await.expect("the sender's socket stays open");
            assert_eq!(reply["code"], 0, "{reply}");
        }
    }

    for wire in [Wire::Json, Wire::MsgPack] {
        let mut phone = device(&server, &bob, wire).await;
        let started = Instant::now();
        let (got, calls) = sync_everything(&mut phone).await;
        let took = started.elapsed();
        assert_eq!(got.len(), GROUPS, "{wire:?}: conversations synced");
        for (conversation, seqs) in &got {
            // Each group's conversation holds its creation notice, then the 100 texts.
            let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
            assert_eq!(seqs, &expected, "{wire:?}: {conversation} arrived whole and in order");
            assert!(seqs.len() > PER_GROUP, "{wire:?}: {conversation} has {} messages", seqs.len());
        }
        assert!(took < Duration::from_secs(120) && calls < 2000, "{wire:?}: {calls} calls in {took:?}");
        // The socket is still open and serving.
        assert_eq!(phone.request("/user/info", json!({})).await["code"], 0);
    }
}

/// What the SDK does after a reconnection: sync from the known seqs until nothing is left,
/// paging a conversation that was cut short from history. Answers each conversation's seqs in
/// the order received, and how many calls it took.
async fn sync_everything(ws: &mut Ws) -> (BTreeMap<String, Vec<i64>>, usize) {
    let mut got: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut calls = 0;
    let take = |got: &mut BTreeMap<String, Vec<i64>>, messages: &Value| {
        for m in messages.as_array().unwrap() {
            got.entry(m["conversationId"].as_str().unwrap().to_owned()).or_default().push(m["seq"].as_i64().unwrap());
        }
    };
    loop {
        let known: Vec<Value> = got
            .iter()
            .map(|(id, seqs)| json!({"conversationId": id, "seq": seqs.last().copied().unwrap_or(0)}))
            .collect();
        let reply = ws.request("/message/sync", json!({"conversations": known})).await;
        calls += 1;
        assert_eq!(reply["code"], 0, "sync: {reply}");
        let data = &reply["data"];
        for c in data["conversations"].as_array().unwrap() {
            take(&mut got, &c["messages"]);
            let id = c["conversation"]["conversationId"].as_str().unwrap().to_owned();
            let mut more = c["hasMore"].as_bool().unwrap();
            while more {
                let after = got[&id].last().copied().unwrap_or(0);
                let page = ws
                    .request("/message/history", json!({"conversationId": id, "afterSeq": after, "limit": 100}))
                    .await;
                calls += 1;
                assert_eq!(page["code"], 0, "history: {page}");
                take(&mut got, &page["data"]["messages"]);
                more = page["data"]["hasMore"].as_bool().unwrap();
            }
        }
        if !data["hasMore"].as_bool().unwrap() {
            return (got, calls);
        }
        assert!(calls < 5000, "sync never finished");
    }
}
