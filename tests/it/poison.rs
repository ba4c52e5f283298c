//! One message can't poison anyone's account: content nested too deep is refused before it is
//! stored, in both encodings and over HTTP, and a stored row that does not decode is read as
//! an `unsupported` message instead of failing every read of its recipients.

use serde_json::{Value, json};

use crate::harness::{ALL_VIAS, Api, Backend, Server, Via, user};
use crate::on_both;

on_both!(deep_content_is_refused_on_every_transport, a_bad_row_reads_as_unsupported, one_deep_send_fails_alone);

/// `levels` arrays, one inside the other.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("core"), |inner, _| json!([inner]))
}

fn custom(to: &str, data: Value, key: &str) -> Value {
    json!({"chatType": "single", "to": to, "kind": "custom", "content": {"data": data}, "clientMsgId": key})
}

async fn deep_content_is_refused_on_every_transport(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut bob, bob_id) = user(&server, Via::Http, "poison-bob").await;
    for via in ALL_VIAS {
        let (mut alice, _) = user(&server, via, &format!("poison-alice-{via:?}")).await;
        // 31 arrays inside `content.data` is 32 levels of content: the most there may be.
        alice.call("/message/send", custom(&bob_id, nested(31), &format!("{via:?}-ok"))).await.ok();
        for levels in [32, 100, 120] {
            alice
                .call("/message/send", custom(&bob_id, nested(levels), &format!("{via:?}-{levels}")))
                .await
                .fails("validation.content");
        }
    }
    // Bob's reads all answer, and hold only the three sends that fit.
    let synced = bob.call("/message/sync", json!({})).await.ok();
    let conversations = synced["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 3, "{synced}");
    for c in conversations {
        assert_eq!(c["messages"].as_array().unwrap().len(), 1, "{c}");
    }
    assert_eq!(bob.call("/conversation/list", json!({})).await.ok()["conversations"].as_array().unwrap().len(), 3);
}

/// `count` texts from `alice` to `to`, a user or a group as `chat` says.
async fn send_texts(alice: &mut Api, chat: &str, to: &str, count: usize) -> Vec<Value> {
    let mut sent = Vec::new();
    for i in 1..=count {
        let data = json!({"chatType": chat, "to": to, "kind": "text", "content": {"text": format!("t{i}")}, "clientMsgId": format!("{chat}-{i}")});
        sent.push(alice.call("/message/send", data).await.ok()["message"].clone());
    }
    sent
}

async fn a_bad_row_reads_as_unsupported(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "rows-alice").await;
    let (_, bob_id) = user(&server, Via::Http, "rows-bob").await;
    let group = alice.call("/group/room/add", json!({"name": "Rows", "members": [bob_id]})).await.ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let single = send_texts(&mut alice, "single", &bob_id, 3).await;
    let grouped = send_texts(&mut alice, "group", &group, 3).await;
    // Written behind the server's back: nesting no JSON reader takes, and text that is no JSON.
    let deep = format!("{{\"data\":{}}}", nested(300));
    server
        .execute_sql(&format!("UPDATE message SET content = '{deep}' WHERE id = {}", single[1]["id"].as_str().unwrap()))
        .await;
    server
        .execute_sql(&format!(
            "UPDATE message SET content = 'not json' WHERE id = {}",
            grouped[2]["id"].as_str().unwrap()
        ))
        .await;

    for via in ALL_VIAS {
        let mut bob = Api::new(&server, via).await;
        bob.call("/user/login", json!({"username": "rows-bob", "password": "a long enough password"})).await.ok();
        let history = bob.call("/message/history", json!({"conversationId": single[0]["conversationId"]})).await.ok();
        assert_eq!(
            kinds(&history["messages"]),
            vec![(1, "text".into()), (2, "unsupported".into()), (3, "text".into())]
        );
        assert_eq!(history["messages"][1]["content"], json!({}));
        assert_eq!(history["messages"][1]["id"], single[1]["id"]);
        let history = bob.call("/message/history", json!({"conversationId": format!("g:{group}")})).await.ok();
        let group_kinds: Vec<String> = kinds(&history["messages"]).into_iter().map(|(_, k)| k).collect();
        assert_eq!(group_kinds.last().map(String::as_str), Some("unsupported"), "{history}");

        let synced = bob.call("/message/sync", json!({})).await.ok();
        let mut synced_kinds: Vec<(i64, String)> = Vec::new();
        for c in synced["conversations"].as_array().unwrap() {
            synced_kinds.extend(kinds(&c["messages"]));
        }
        assert_eq!(synced_kinds.iter().filter(|(_, k)| k == "unsupported").count(), 2, "{synced}");

        let list = bob.call("/conversation/list", json!({})).await.ok();
        let last_kinds: Vec<&str> = list["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["lastMessage"]["kind"].as_str().unwrap())
            .collect();
        assert!(last_kinds.contains(&"unsupported") && last_kinds.contains(&"text"), "{list}");
        assert_eq!(bob.call("/conversation/unread", json!({})).await.ok()["total"], 3 + grouped.len());
    }
}

fn kinds(messages: &Value) -> Vec<(i64, String)> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_i64().unwrap(), m["kind"].as_str().unwrap().to_owned()))
        .collect()
}

/// Sends racing into one group-commit batch: the deep one is refused, every other is stored.
async fn one_deep_send_fails_alone(backend: Backend) {
    let server = Server::start(backend).await;
    let (_, bob_id) = user(&server, Via::Http, "batch-bob").await;
    let mut senders = Vec::new();
    for i in 0..16 {
        let (alice, _) = user(&server, Via::WsJson, &format!("batch-alice-{i}")).await;
        senders.push(alice);
    }
    let sends = senders.iter_mut().enumerate().map(|(i, alice)| {
        let data = if i == 7 { nested(100) } else { json!({"n": i}) };
        let body = custom(&bob_id, data, &format!("batch-{i}"));
        async move { alice.call("/message/send", body).await }
    });
    let replies = futures::future::join_all(sends).await;
    for (i, reply) in replies.into_iter().enumerate() {
        if i == 7 {
            reply.fails("validation.content");
        } else {
            assert_eq!(reply.ok()["message"]["content"]["data"]["n"], i);
        }
    }
}
