//! Group read receipts: as members read, the sender is pushed how many have read each of their
//! messages, at most once a second per conversation (reads in between come together in the
//! next push); `/message/readers` pages who has read a message and who has not. One-to-one, a
//! device acknowledges what it received, and the peer hears it (a delivered receipt).
//! `/message/reactors` pages who reacted to a message with one key.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, Backend, Server, Via, Wire, device, user};
use crate::on_both;

on_both!(
    senders_hear_read_counts_debounced_and_readers_are_paged,
    one_to_one_has_delivered_receipts,
    who_reacted_is_paged_per_key
);

/// A group made by `<prefix>-owner` (over HTTP) with three members (over `via`): the owner,
/// the members, their ids and the group's id.
async fn group_of_four(server: &Server, prefix: &str, via: Via) -> (Api, Vec<Api>, Vec<String>, String) {
    let (mut owner, _) = user(server, Via::Http, &format!("{prefix}-owner")).await;
    let (mut members, mut ids) = (Vec::new(), Vec::new());
    for name in ["b", "c", "d"] {
        let (api, id) = user(server, via, &format!("{prefix}-{name}")).await;
        members.push(api);
        ids.push(id);
    }
    let group = owner.call("/group/room/add", json!({"name": prefix, "members": ids})).await.ok();
    let group = group["group"]["id"].as_str().unwrap().to_owned();
    (owner, members, ids, group)
}

fn counts(push: &Value) -> Vec<(String, i64)> {
    let counts = push["data"]["counts"].as_array().unwrap();
    counts.iter().map(|c| (c["messageId"].as_str().unwrap().to_owned(), c["read"].as_i64().unwrap())).collect()
}

async fn senders_hear_read_counts_debounced_and_readers_are_paged(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, mut readers, ids, group) = group_of_four(&server, "receipt", Via::Http).await;
    let conversation = format!("g:{group}");
    let mut sent = Vec::new();
    for i in 0..3 {
        let content = json!({"text": format!("m{i}")});
        let data = json!({"chatType": "group", "to": group, "kind": "text", "content": content, "clientMsgId": format!("r{i}")});
        sent.push(owner.call("/message/send", data).await.ok()["message"].clone());
    }
    let id = |i: usize| sent[i]["id"].as_str().unwrap().to_owned();
    let seq = |i: usize| sent[i]["seq"].as_i64().unwrap();
    let mut owner_ws = device(&server, &owner, Wire::Json).await;

    // The first read of a quiet conversation is pushed at once.
    let read = |to: i64| json!({"conversationId": conversation, "seq": to});
    readers[0].call("/conversation/read", read(seq(2))).await.ok();
    let first = owner_ws.push("message.readCount").await;
    let at = Instant::now();
    assert_eq!(first["data"]["conversationId"], conversation);
    assert_eq!(counts(&first), vec![(id(0), 1), (id(1), 1), (id(2), 1)]);

    // Two more reads within the second come as one push, at its end, counted as they are then.
    readers[1].call("/conversation/read", read(seq(1))).await.ok();
    readers[2].call("/conversation/read", read(seq(2))).await.ok();
    let second = owner_ws.push("message.readCount").await;
    assert!(at.elapsed() >= Duration::from_millis(900), "pushed {:?} after the first", at.elapsed());
    assert_eq!(counts(&second), vec![(id(0), 3), (id(1), 3), (id(2), 2)]);
    let quiet = tokio::time::timeout(Duration::from_millis(1500), owner_ws.push("message.readCount")).await;
    assert!(quiet.is_err(), "one push for both reads: {quiet:?}");

    // Who has read the last message, and who has not, paged.
    let page = |extra: Value| {
        let mut query = json!({"messageId": id(2)});
        query.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        query
    };
    let all = readers[0].call("/message/readers", page(json!({}))).await.ok();
    assert_eq!(all, json!({"count": 2, "unreadCount": 1, "userIds": [ids[0], ids[2]], "hasMore": false}));
    let one = readers[0].call("/message/readers", page(json!({"limit": 1}))).await.ok();
    assert_eq!((one["userIds"].clone(), one["hasMore"].clone()), (json!([ids[0]]), json!(true)));
    let next = readers[0].call("/message/readers", page(json!({"limit": 1, "after": ids[0]}))).await.ok();
    assert_eq!((next["userIds"].clone(), next["hasMore"].clone()), (json!([ids[2]]), json!(false)));
    let not_yet = readers[0].call("/message/readers", page(json!({"unread": true}))).await.ok();
    assert_eq!(not_yet["userIds"], json!([ids[1]]));
    readers[0].call("/message/readers", page(json!({"limit": 0}))).await.fails("validation.limit");
}

async fn one_to_one_has_delivered_receipts(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "delivered-alice").await;
    let (mut bob, bob_id) = user(&server, Via::WsMsgPack, "delivered-bob").await;
    let (mut eve, _) = user(&server, Via::Http, "delivered-eve").await;
    let mut last = Value::Null;
    for i in 0..3 {
        let content = json!({"text": format!("d{i}")});
        let data = json!({"chatType": "single", "to": bob_id, "kind": "text", "content": content, "clientMsgId": format!("d{i}")});
        last = alice.call("/message/send", data).await.ok()["message"].clone();
    }
    let conversation = last["conversationId"].as_str().unwrap().to_owned();
    let mut alice_ws = device(&server, &alice, Wire::Json).await;
    let peer = |c: &Value| (c["peerReadSeq"].clone(), c["peerDeliveredSeq"].clone());
    let info = alice.call("/conversation/info", json!({"conversationId": conversation})).await.ok();
    assert_eq!(peer(&info["conversation"]), (json!(0), json!(0)));

    // Bob's device received the first two: Alice hears it, and sees it in the conversation.
    let delivered = |seq: i64| json!({"conversationId": conversation, "seq": seq});
    bob.call("/conversation/delivered", delivered(2)).await.ok();
    let pushed = alice_ws.push("message.delivered").await;
    assert_eq!(pushed["data"], json!({"conversationId": conversation, "userId": bob_id, "seq": 2}));
    // Again, or less, moves nothing and tells no one; past the last seq stops at it.
    bob.call("/conversation/delivered", delivered(1)).await.ok();
    alice_ws.no_push().await;
    bob.call("/conversation/delivered", delivered(99)).await.ok();
    assert_eq!(alice_ws.push("message.delivered").await["data"]["seq"], 3);
    // Reading is receiving too; Bob's own view shows Alice's positions.
    bob.call("/conversation/read", delivered(1)).await.ok();
    let info = alice.call("/conversation/info", json!({"conversationId": conversation})).await.ok();
    assert_eq!(peer(&info["conversation"]), (json!(1), json!(3)));
    let own = bob.call("/conversation/info", json!({"conversationId": conversation})).await.ok();
    assert_eq!(peer(&own["conversation"]), (json!(3), json!(3)), "the sender read and has what they sent");

    // Not for outsiders, and not for groups.
    eve.call("/conversation/delivered", delivered(1)).await.fails("not_found");
    let group = alice.call("/group/room/add", json!({"name": "No ticks", "members": [bob_id]})).await.ok();
    let group = format!("g:{}", group["group"]["id"].as_str().unwrap());
    let in_group = json!({"conversationId": group, "seq": 1});
    bob.call("/conversation/delivered", in_group).await.fails("validation.conversationId");
    let info = alice.call("/conversation/info", json!({"conversationId": group})).await.ok();
    assert_eq!(peer(&info["conversation"]), (Value::Null, Value::Null));
}

/// Who reacted with a key, paged by id; an unreact takes one out; outsiders learn nothing.
async fn who_reacted_is_paged_per_key(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, mut members, ids, group) = group_of_four(&server, "react", Via::WsJson).await;
    let data =
        json!({"chatType": "group", "to": group, "kind": "text", "content": {"text": "vote"}, "clientMsgId": "v"});
    let message = owner.call("/message/send", data).await.ok()["message"]["id"].as_str().unwrap().to_owned();
    for (i, member) in members.iter_mut().enumerate() {
        let key = if i == 1 { "❤️" } else { "👍" };
        member.call("/message/react", json!({"messageId": message, "key": key})).await.ok();
    }
    let who = |extra: Value| {
        let mut query = json!({"messageId": message, "key": "👍"});
        query.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        query
    };
    let all = owner.call("/message/reactors", who(json!({}))).await.ok();
    assert_eq!(all, json!({"userIds": [ids[0], ids[2]], "hasMore": false}));
    let one = owner.call("/message/reactors", who(json!({"limit": 1}))).await.ok();
    assert_eq!(one, json!({"userIds": [ids[0]], "hasMore": true}));
    let next = owner.call("/message/reactors", who(json!({"limit": 1, "after": ids[0]}))).await.ok();
    assert_eq!(next, json!({"userIds": [ids[2]], "hasMore": false}));
    let heart = owner.call("/message/reactors", json!({"messageId": message, "key": "❤️"})).await.ok();
    assert_eq!(heart["userIds"], json!([ids[1]]));

    members[0].call("/message/unreact", json!({"messageId": message, "key": "👍"})).await.ok();
    let after = owner.call("/message/reactors", who(json!({}))).await.ok();
    assert_eq!(after["userIds"], json!([ids[2]]));

    let (mut outsider, _) = user(&server, Via::Http, "react-outsider").await;
    outsider.call("/message/reactors", who(json!({}))).await.fails("not_found");
    owner.call("/message/reactors", who(json!({"limit": 501}))).await.fails("validation.limit");
}
