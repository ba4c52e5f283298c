//! Messages: every kind, idempotent sends, gapless seqs, exact sync, delivery to large groups.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::harness::{ALL_VIAS, Api, Backend, Server, Via, Wire, Ws, device, user};
use crate::on_both;

on_both!(
    every_kind_delivered_and_paged,
    retried_client_msg_id_stores_one_row,
    concurrent_senders_get_gapless_seqs,
    offline_user_recovers_everything,
    large_group_delivers_to_every_member,
    group_events_are_system_messages,
);

/// The transport's name, to keep each transport's users and clientMsgIds apart.
pub(crate) fn tag(via: Via) -> String {
    format!("{via:?}").to_lowercase()
}

/// A one-to-one text message, the body most tests send.
pub(crate) fn text(to: &str, body: &str, cmid: &str) -> Value {
    json!({"chatType": "single", "to": to, "kind": "text", "content": {"text": body}, "clientMsgId": cmid})
}

/// The seqs of a page of messages.
fn seqs(messages: &Value) -> Vec<i64> {
    messages.as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect()
}

/// One transport's run of every kind: alice sends, bob has two devices and alice a second one.
struct Kinds {
    t: String,
    alice: Api,
    alice_id: String,
    bob_id: String,
    bob_phone: Ws,
    bob_laptop: Ws,
    alice_other: Ws,
}

async fn every_kind_delivered_and_paged(backend: Backend) {
    let server = Server::start(backend).await;
    for via in ALL_VIAS {
        let mut kinds = kinds_cast(&server, via).await;
        let first_id = every_kind_reaches_every_device(&mut kinds, via).await;
        let conversation = reply_and_pages(&mut kinds, first_id).await;
        bad_sends_are_refused(&mut kinds, &conversation).await;
    }
}

/// Alice sends over `via`; bob and alice's other device listen over both wire formats.
async fn kinds_cast(server: &Server, via: Via) -> Kinds {
    let t = tag(via);
    let (alice, alice_id) = user(server, via, &format!("kinds-alice-{t}")).await;
    let (bob, bob_id) = user(server, Via::Http, &format!("kinds-bob-{t}")).await;
    let bob_phone = device(server, &bob, Wire::Json).await;
    let bob_laptop = device(server, &bob, Wire::MsgPack).await;
    let alice_other = device(server, &alice, Wire::Json).await;
    Kinds { t, alice, alice_id, bob_id, bob_phone, bob_laptop, alice_other }
}

/// One valid content of each kind, the first mentioning bob.
fn contents(bob_id: &str) -> [(&'static str, Value); 7] {
    [
        ("text", json!({"text": "hello", "mentions": [bob_id], "replyTo": null})),
        (
            "image",
            json!({"url": "https://img.test/a.png", "width": 640, "height": 480, "size": 1234, "mime": "image/png", "thumbnail": "https://img.test/a-small.png"}),
        ),
        (
            "video",
            json!({"url": "https://video.test/v1.mp4", "duration": 12.5, "width": 1280, "height": 720, "size": 99999, "mime": "video/mp4"}),
        ),
        ("audio", json!({"url": "https://audio.test/a1.ogg", "duration": 3, "size": 2048, "mime": "audio/ogg"})),
        (
            "file",
            json!({"url": "https://files.test/r.pdf", "name": "report.pdf", "size": 4096, "mime": "application/pdf"}),
        ),
        ("location", json!({"latitude": 51.5, "longitude": -0.12, "title": "London"})),
        ("custom", json!({"data": {"card": {"id": 7, "tags": ["a", "b"]}}})),
    ]
}

/// Sends one message of each kind; returns the first one's id, for a reply to point at.
async fn every_kind_reaches_every_device(kinds: &mut Kinds, via: Via) -> String {
    let Kinds { t, alice, alice_id, bob_id, bob_phone, bob_laptop, alice_other } = kinds;
    let contents = contents(bob_id);
    let mut first_id = String::new();
    for (i, (kind, content)) in contents.iter().enumerate() {
        let cmid = format!("{t}-{kind}");
        let sent = alice
            .call(
                "/message/send",
                json!({"chatType": "single", "to": bob_id, "kind": kind, "content": content, "clientMsgId": cmid}),
            )
            .await
            .ok()["message"]
            .clone();
        assert_eq!(sent["seq"], i as i64 + 1, "{sent}");
        assert_eq!(
            (sent["kind"].as_str(), sent["from"].as_str(), sent["to"].as_str()),
            (Some(*kind), Some(alice_id.as_str()), Some(bob_id.as_str()))
        );
        assert_eq!(sent["status"], "normal");
        assert!(sent["id"].is_string() && sent["sentAt"].as_i64().unwrap() > 0);
        if i == 0 {
            first_id = sent["id"].as_str().unwrap().to_owned();
            assert_eq!(sent["content"]["mentions"], json!([bob_id]));
        }
        // Every device of the recipient, and the sender's other device, get it.
        for ws in [&mut *bob_phone, &mut *bob_laptop, &mut *alice_other] {
            let pushed = ws.push("message.new").await["data"]["message"].clone();
            assert_eq!(pushed, sent);
        }
    }
    if via != Via::Http {
        // The sending socket has its reply; it gets no push of its own message.
        alice.ws.as_mut().unwrap().no_push().await;
    }
    first_id
}

/// A reply in the one-to-one conversation, then the conversation read back page by page;
/// returns the conversation's id.
async fn reply_and_pages(kinds: &mut Kinds, first_id: String) -> String {
    let Kinds { t, alice, alice_id, bob_id, .. } = kinds;
    let conversation = format!(
        "s:{}:{}",
        alice_id.parse::<i64>().unwrap().min(bob_id.parse().unwrap()),
        alice_id.parse::<i64>().unwrap().max(bob_id.parse().unwrap())
    );
    let reply = alice.call("/message/send", json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "re", "replyTo": first_id}, "clientMsgId": format!("{t}-reply")})).await.ok();
    assert_eq!(reply["message"]["content"]["replyTo"], first_id.as_str());
    assert_eq!(reply["message"]["conversationId"], conversation.as_str());

    // Paging: newest first by default, each page ascending.
    let newest = alice.call("/message/history", json!({"conversationId": conversation, "limit": 3})).await.ok();
    assert_eq!((seqs(&newest["messages"]), newest["hasMore"].as_bool()), (vec![6, 7, 8], Some(true)));
    let older =
        alice.call("/message/history", json!({"conversationId": conversation, "beforeSeq": 6, "limit": 3})).await.ok();
    assert_eq!(seqs(&older["messages"]), vec![3, 4, 5]);
    let oldest =
        alice.call("/message/history", json!({"conversationId": conversation, "beforeSeq": 3, "limit": 3})).await.ok();
    assert_eq!((seqs(&oldest["messages"]), oldest["hasMore"].as_bool()), (vec![1, 2], Some(false)));
    let after =
        alice.call("/message/history", json!({"conversationId": conversation, "afterSeq": 5, "limit": 2})).await.ok();
    assert_eq!((seqs(&after["messages"]), after["hasMore"].as_bool()), (vec![6, 7], Some(true)));
    alice
        .call("/message/history", json!({"conversationId": conversation, "afterSeq": 1, "beforeSeq": 5}))
        .await
        .fails("validation.afterSeq");
    alice
        .call("/message/history", json!({"conversationId": conversation, "limit": 101}))
        .await
        .fails("validation.limit");
    conversation
}

/// Sends that break one rule each, with the reason each must be refused for.
fn refused_sends(alice_id: &str, bob_id: &str) -> Vec<(Value, &'static str)> {
    let send = |body: Value| body;
    vec![
        (
            send(json!({"chatType": "single", "to": bob_id, "kind": "sticker", "content": {}, "clientMsgId": "k1"})),
            "validation.kind",
        ),
        (
            send(json!({"chatType": "single", "to": bob_id, "kind": "system", "content": {}, "clientMsgId": "k2"})),
            "validation.kind",
        ),
        (
            send(
                json!({"chatType": "pair", "to": bob_id, "kind": "text", "content": {"text": "x"}, "clientMsgId": "k3"}),
            ),
            "validation.chatType",
        ),
        (text("99999999", "who?", "k4"), "not_found"),
        (text("nonsense", "who?", "k5"), "not_found"),
        (text(alice_id, "me", "k6"), "validation.to"),
        (text(bob_id, "", "k7"), "validation.text"),
        (text(bob_id, &"x".repeat(5001), "k8"), "validation.text"),
        (text(bob_id, "ok", ""), "validation.clientMsgId"),
        (text(bob_id, "ok", &"c".repeat(65)), "validation.clientMsgId"),
        (
            send(
                json!({"chatType": "single", "to": bob_id, "kind": "image", "content": {"url": "javascript:alert(1)", "width": 1, "height": 1, "size": 1, "mime": "image/png"}, "clientMsgId": "k9"}),
            ),
            "validation.url",
        ),
        (
            send(
                json!({"chatType": "single", "to": bob_id, "kind": "image", "content": {"url": "data:image/png;base64,AA", "width": 1, "height": 1, "size": 1, "mime": "image/png"}, "clientMsgId": "k10"}),
            ),
            "validation.url",
        ),
        (
            send(
                json!({"chatType": "single", "to": bob_id, "kind": "audio", "content": {"url": "/file/x", "duration": -1, "size": 1, "mime": "audio/ogg"}, "clientMsgId": "k11"}),
            ),
            "validation.duration",
        ),
        (
            send(
                json!({"chatType": "single", "to": bob_id, "kind": "location", "content": {"latitude": 0, "longitude": 181}, "clientMsgId": "k12"}),
            ),
            "validation.longitude",
        ),
        (
            send(
                json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "x", "replyTo": "99999999"}, "clientMsgId": "k13"}),
            ),
            "validation.replyTo",
        ),
        (
            send(
                json!({"chatType": "single", "to": bob_id, "kind": "text", "content": "just text", "clientMsgId": "k14"}),
            ),
            "validation.content",
        ),
        (send(json!({"chatType": "single", "to": bob_id, "kind": "text", "clientMsgId": "k15"})), "validation.content"),
    ]
}

/// Every rule-breaking send is refused, and none of them is stored.
async fn bad_sends_are_refused(kinds: &mut Kinds, conversation: &str) {
    let Kinds { alice, alice_id, bob_id, .. } = kinds;
    let cases = refused_sends(alice_id, bob_id);
    for (body, reason) in cases {
        alice.call("/message/send", body).await.fails(reason);
    }
    let count = alice.call("/message/history", json!({"conversationId": conversation})).await.ok()["messages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(count, 8, "refused sends stored nothing");
}

async fn retried_client_msg_id_stores_one_row(backend: Backend) {
    let server = Server::start(backend).await;
    for via in ALL_VIAS {
        let t = tag(via);
        let (mut alice, _) = user(&server, via, &format!("retry-alice-{t}")).await;
        let (bob, bob_id) = user(&server, Via::Http, &format!("retry-bob-{t}")).await;
        let mut bob_ws = device(&server, &bob, Wire::Json).await;
        let first = alice.call("/message/send", text(&bob_id, "once", "same-key")).await.ok()["message"].clone();
        bob_ws.push("message.new").await;
        // A retry after a lost ack, even with different content, returns the first message.
        let again = alice.call("/message/send", text(&bob_id, "twice?", "same-key")).await.ok()["message"].clone();
        assert_eq!(again, first);
        // Concurrent retries too.
        let retries = futures::future::join_all((0..5).map(|_| {
            let mut api = Api::with_token(&server, alice.token.clone().unwrap());
            let body = text(&bob_id, "storm", "storm-key");
            async move { api.call("/message/send", body).await.ok()["message"]["id"].clone() }
        }))
        .await;
        assert!(retries.windows(2).all(|w| w[0] == w[1]), "{retries:?}");
        bob_ws.push("message.new").await;
        bob_ws.no_push().await;
        let history = alice.call("/message/history", json!({"conversationId": first["conversationId"]})).await.ok();
        assert_eq!(seqs(&history["messages"]), vec![1, 2], "one row per clientMsgId");
    }
}

async fn concurrent_senders_get_gapless_seqs(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, _) = user(&server, Via::Http, "gapless-owner").await;
    let mut senders = Vec::new();
    let mut ids = Vec::new();
    for i in 0..20 {
        let (api, id) = user(&server, Via::Http, &format!("gapless-{i}")).await;
        senders.push(api);
        ids.push(id);
    }
    let gid = owner.call("/group/room/add", json!({"name": "Busy", "members": ids})).await.ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let per_sender = 5;
    let results = futures::future::join_all(senders.iter_mut().enumerate().map(|(i, api)| {
        let gid = gid.clone();
        async move {
            let mut sent = Vec::new();
            for j in 0..per_sender {
                let body = json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": format!("{i}/{j}")}, "clientMsgId": format!("{i}-{j}")});
                sent.push(api.call("/message/send", body).await.ok()["message"]["seq"].as_i64().unwrap());
            }
            sent
        }
    }))
    .await;
    let mut all: Vec<i64> = results.into_iter().flatten().collect();
    all.sort();
    let conversation = format!("g:{gid}");
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let page = owner
            .call("/message/history", json!({"conversationId": conversation, "afterSeq": after, "limit": 100}))
            .await
            .ok();
        history.extend(page["messages"].as_array().unwrap().iter().cloned());
        after = history.last().unwrap()["seq"].as_i64().unwrap();
        if !page["hasMore"].as_bool().unwrap() {
            break;
        }
    }
    let history_seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(history_seqs, (1..=history.len() as i64).collect::<Vec<_>>(), "gapless from 1");
    let texts: Vec<&Value> = history.iter().filter(|m| m["kind"] == "text").collect();
    assert_eq!(texts.len(), 20 * per_sender, "every message exactly once");
    let mut acked = all.clone();
    acked.dedup();
    assert_eq!(acked.len(), all.len(), "no seq acknowledged twice");
    assert!(all.iter().all(|s| history_seqs.contains(s)));
}

async fn offline_user_recovers_everything(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut bob, bob_id) = user(&server, Via::WsJson, "offline-bob").await;
    // Bob goes offline; 10 conversations (9 one-to-one and a group) get 300 messages.
    bob.ws.take();
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    let (mut owner, _) = user(&server, Via::Http, "offline-owner").await;
    let gid = owner.call("/group/room/add", json!({"name": "Offline", "members": [bob_id]})).await.ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for p in 0..9 {
        let (mut peer, _) = user(&server, Via::Http, &format!("offline-peer-{p}")).await;
        for m in 0..20 {
            let msg = peer.call("/message/send", text(&bob_id, &format!("p{p}m{m}"), &format!("p{p}-{m}"))).await.ok()
                ["message"]
                .clone();
            sent.entry(msg["conversationId"].as_str().unwrap().to_owned())
                .or_default()
                .push(msg["id"].as_str().unwrap().to_owned());
        }
    }
    for m in 0..120 {
        let body = json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": format!("g{m}")}, "clientMsgId": format!("g-{m}")});
        let msg = owner.call("/message/send", body).await.ok()["message"].clone();
        sent.entry(msg["conversationId"].as_str().unwrap().to_owned())
            .or_default()
            .push(msg["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(sent.values().map(Vec::len).sum::<usize>(), 300);

    // Bob reconnects: one sync, then paging where hasMore says so.
    let mut bob = Api::new(&server, Via::WsMsgPack).await;
    bob.call("/user/login", json!({"username": "offline-bob", "password": "a long enough password"})).await.ok();
    let synced = bob.call("/message/sync", json!({})).await.ok();
    assert_eq!(synced["hasMore"], false);
    let conversations = synced["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 10);
    let mut received: HashMap<String, Vec<Value>> = HashMap::new();
    for c in conversations {
        let id = c["conversation"]["conversationId"].as_str().unwrap().to_owned();
        let mut messages: Vec<Value> = c["messages"].as_array().unwrap().clone();
        let mut has_more = c["hasMore"].as_bool().unwrap();
        while has_more {
            let after = messages.last().unwrap()["seq"].clone();
            let page =
                bob.call("/message/history", json!({"conversationId": id, "afterSeq": after, "limit": 100})).await.ok();
            messages.extend(page["messages"].as_array().unwrap().iter().cloned());
            has_more = page["hasMore"].as_bool().unwrap();
        }
        let s: Vec<i64> = messages.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(s, (1..=s.len() as i64).collect::<Vec<_>>(), "in order, once each, in {id}");
        received.insert(id, messages);
    }
    for (conversation, ids) in &sent {
        let got: Vec<String> = received[conversation]
            .iter()
            .filter(|m| m["kind"] == "text")
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(&got, ids, "{conversation}");
    }
    // Synced up: telling the server what it now has yields nothing new.
    let known: Vec<Value> =
        received.iter().map(|(id, m)| json!({"conversationId": id, "seq": m.last().unwrap()["seq"]})).collect();
    let again = bob.call("/message/sync", json!({"conversations": known})).await.ok();
    assert!(again["conversations"].as_array().unwrap().is_empty(), "{again}");
}

async fn large_group_delivers_to_every_member(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, _) = user(&server, Via::Http, "big-owner").await;
    let mut members = Vec::new();
    for chunk in (0..499).collect::<Vec<_>>().chunks(25) {
        let names: Vec<String> = chunk.iter().map(|i| format!("big-{i}")).collect();
        let made = futures::future::join_all(names.iter().map(|name| user(&server, Via::Http, name))).await;
        members.extend(made);
    }
    let ids: Vec<&String> = members.iter().map(|(_, id)| id).collect();
    let gid = owner.call("/group/room/add", json!({"name": "Stadium", "members": ids})).await.ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sockets = Vec::new();
    for (api, _) in &members {
        sockets.push(device(&server, api, if sockets.len() % 2 == 0 { Wire::Json } else { Wire::MsgPack }).await);
    }
    let sent = owner
        .call("/message/send", json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "goal!"}, "clientMsgId": "goal"}))
        .await
        .ok()["message"]
        .clone();
    let delivered = futures::future::join_all(sockets.iter_mut().map(|ws| async {
        loop {
            let m = ws.push("message.new").await["data"]["message"].clone();
            if m["clientMsgId"] == "goal" {
                return m;
            }
        }
    }))
    .await;
    assert_eq!(delivered.len(), 499);
    assert!(delivered.iter().all(|m| *m == sent));
}

async fn group_events_are_system_messages(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, owner_id) = user(&server, Via::Http, "sys-owner").await;
    let (_, member_id) = user(&server, Via::Http, "sys-member").await;
    let (mut joiner, joiner_id) = user(&server, Via::Http, "sys-joiner").await;
    let gid =
        owner.call("/group/room/add", json!({"name": "History", "members": [member_id]})).await.ok()["group"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    joiner.call("/group/room/join", json!({"groupId": gid})).await.ok();
    owner.call("/group/room/update", json!({"groupId": gid, "name": "History II"})).await.ok();
    owner.call("/group/room/kick", json!({"groupId": gid, "members": [member_id]})).await.ok();
    joiner.call("/group/room/quit", json!({"groupId": gid})).await.ok();
    owner.call("/group/room/dismiss", json!({"groupId": gid})).await.ok();
    let history = owner.call("/message/history", json!({"conversationId": format!("g:{gid}")})).await.ok();
    let events: Vec<(String, Value, String)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["kind"], "system");
            (
                m["content"]["event"].as_str().unwrap().to_owned(),
                m["content"]["userIds"].clone(),
                m["content"]["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("created".to_owned(), json!([member_id]), owner_id.clone()),
            ("joined".to_owned(), json!([joiner_id]), joiner_id.clone()),
            ("renamed".to_owned(), json!([]), owner_id.clone()),
            ("kicked".to_owned(), json!([member_id]), owner_id.clone()),
            ("left".to_owned(), json!([joiner_id]), joiner_id.clone()),
            ("dismissed".to_owned(), json!([]), owner_id.clone()),
        ]
    );
    assert_eq!(history["messages"][2]["content"]["name"], "History II");
    // The dismissed group takes no more messages.
    owner
        .call("/message/send", json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "anyone?"}, "clientMsgId": "late"}))
        .await
        .fails("not_found");
}
