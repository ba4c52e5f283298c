//! Conversations: unread counts and read positions, who may see or touch one, list state and pushes.

use serde_json::{Value, json};

use crate::harness::{ALL_VIAS, Api, Backend, Server, Via, Wire, Ws, device, user};
use crate::messages::{tag, text};
use crate::on_both;

on_both!(unread_counts_are_exact, outsiders_get_nothing, conversation_state_and_pushes);

async fn unread_counts_are_exact(backend: Backend) {
    let server = Server::start(backend).await;
    for via in ALL_VIAS {
        let t = tag(via);
        let (mut alice, alice_id) = user(&server, Via::Http, &format!("unread-alice-{t}")).await;
        let (mut bob, _) = user(&server, via, &format!("unread-bob-{t}")).await;
        let bob_id = bob.call("/user/info", json!({})).await.ok()["userinfo"]["id"].as_str().unwrap().to_owned();
        let mut bob_other = device(&server, &bob, Wire::MsgPack).await;
        let mut alice_ws = device(&server, &alice, Wire::Json).await;

        let mut last = Value::Null;
        for i in 0..5 {
            last = alice.call("/message/send", text(&bob_id, &format!("m{i}"), &format!("{t}-u{i}"))).await.ok()["message"].clone();
        }
        let conversation = last["conversationId"].as_str().unwrap().to_owned();
        let unread = |v: &Value| (v["total"].as_i64().unwrap(), v["conversations"].clone());
        let got = bob.call("/conversation/unread", json!({})).await.ok();
        assert_eq!(unread(&got), (5, json!([{"conversationId": conversation, "unread": 5}])));
        // The sender's own messages never count.
        assert_eq!(alice.call("/conversation/unread", json!({})).await.ok()["total"], 0);

        // Reading on one device updates the other and tells the peer.
        let read = bob.call("/conversation/read", json!({"conversationId": conversation, "seq": 3})).await.ok();
        assert_eq!(
            (read["conversation"]["readSeq"].as_i64(), read["conversation"]["unread"].as_i64()),
            (Some(3), Some(2))
        );
        let pushed = bob_other.push("conversation.updated").await["data"]["conversation"].clone();
        assert_eq!((pushed["readSeq"].as_i64(), pushed["unread"].as_i64()), (Some(3), Some(2)));
        assert_eq!(
            alice_ws.push("message.read").await["data"],
            json!({"conversationId": conversation, "userId": bob_id, "seq": 3})
        );
        // Read positions only move forward, and stop at the last seq.
        let back = bob.call("/conversation/read", json!({"conversationId": conversation, "seq": 1})).await.ok();
        assert_eq!(back["conversation"]["readSeq"], 3);
        alice_ws.no_push().await;

        // A recalled message no longer counts.
        alice.call("/message/recall", json!({"messageId": last["id"]})).await.ok();
        let recall = bob_other.push("message.recalled").await["data"].clone();
        assert_eq!(
            [&recall["type"], &recall["conversationId"], &recall["messageId"], &recall["seq"], &recall["pos"]],
            [&json!("recall"), &json!(conversation), &last["id"], &json!(5), &json!(6)],
            "the recall is the log's sixth entry, after the five messages"
        );
        assert_eq!(bob.call("/conversation/unread", json!({})).await.ok()["total"], 1);
        let recalled = bob.call("/message/history", json!({"conversationId": conversation, "afterSeq": 4})).await.ok()
            ["messages"][0]
            .clone();
        assert_eq!((recalled["status"].as_str(), &recalled["content"]), (Some("recalled"), &json!({})));

        // A group message counts for the others, not the sender, and system messages never count.
        let gid = alice.call("/group/room/add", json!({"name": format!("U{t}"), "members": [bob_id]})).await.ok()["group"]["id"].clone();
        alice.call("/message/send", json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "hey"}, "clientMsgId": format!("{t}-g1")})).await.ok();
        let got = bob.call("/conversation/unread", json!({})).await.ok();
        assert_eq!(got["total"], 2);
        // Muting leaves a conversation out of the total, not out of its own count.
        bob.call(
            "/conversation/update",
            json!({"conversationId": format!("g:{}", gid.as_str().unwrap()), "muted": true}),
        )
        .await
        .ok();
        let got = bob.call("/conversation/unread", json!({})).await.ok();
        assert_eq!(got["total"], 1);
        assert_eq!(got["conversations"].as_array().unwrap().len(), 2);
        let list = bob.call("/conversation/list", json!({})).await.ok();
        assert_eq!(list["totalUnread"], 1);
        let read_all = bob.call("/conversation/read", json!({"conversationId": conversation, "seq": 1000})).await.ok();
        assert_eq!(
            (read_all["conversation"]["readSeq"].as_i64(), read_all["conversation"]["unread"].as_i64()),
            (Some(5), Some(0))
        );
        assert_eq!(bob.call("/conversation/unread", json!({})).await.ok()["total"], 0);
        let _ = alice_id;
    }
}

async fn outsiders_get_nothing(backend: Backend) {
    let server = Server::start_with(backend, &["--recall-window-secs", "1"]).await;
    for via in ALL_VIAS {
        let t = tag(via);
        let (mut alice, _) = user(&server, Via::Http, &format!("authz-alice-{t}")).await;
        let (mut bob, bob_id) = user(&server, Via::Http, &format!("authz-bob-{t}")).await;
        let (mut eve, _) = user(&server, via, &format!("authz-eve-{t}")).await;
        let (_, muted_id) = user(&server, Via::Http, &format!("authz-muted-{t}")).await;
        let private =
            alice.call("/message/send", text(&bob_id, "secret", &format!("{t}-s"))).await.ok()["message"].clone();
        let gid = alice.call("/group/room/add", json!({"name": "Club", "members": [bob_id, muted_id]})).await.ok()["group"]["id"].as_str().unwrap().to_owned();
        let group_msg = bob
            .call("/message/send", json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "club talk"}, "clientMsgId": format!("{t}-g")}))
            .await
            .ok()["message"]
            .clone();
        let single = private["conversationId"].as_str().unwrap().to_owned();
        let group = format!("g:{gid}");

        let before = (
            alice.call("/message/history", json!({"conversationId": single})).await.ok(),
            alice.call("/conversation/info", json!({"conversationId": group})).await.ok(),
        );
        for conversation in [&single, &group, &"s:1:999999".to_owned(), &"garbage".to_owned()] {
            eve.call("/message/history", json!({"conversationId": conversation})).await.fails("not_found");
            eve.call("/conversation/info", json!({"conversationId": conversation})).await.fails("not_found");
            eve.call("/conversation/read", json!({"conversationId": conversation, "seq": 1})).await.fails("not_found");
            eve.call("/conversation/update", json!({"conversationId": conversation, "pinned": true, "draft": "x"}))
                .await
                .fails("not_found");
            eve.call("/message/typing", json!({"conversationId": conversation})).await.fails("not_found");
        }
        for message in [&private, &group_msg] {
            eve.call("/message/recall", json!({"messageId": message["id"]})).await.fails("not_found");
            eve.call("/message/readers", json!({"messageId": message["id"]})).await.fails("not_found");
        }
        eve.call("/message/send", json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "let me in"}, "clientMsgId": format!("{t}-e")})).await.fails("forbidden");
        let synced =
            eve.call("/message/sync", json!({"conversations": [{"conversationId": single, "seq": 0}]})).await.ok();
        assert!(synced["conversations"].as_array().unwrap().is_empty());
        assert!(eve.call("/conversation/list", json!({})).await.ok()["conversations"].as_array().unwrap().is_empty());
        assert_eq!(eve.call("/conversation/unread", json!({})).await.ok()["total"], 0);
        // Nothing changed for the participants.
        let after = (
            alice.call("/message/history", json!({"conversationId": single})).await.ok(),
            alice.call("/conversation/info", json!({"conversationId": group})).await.ok(),
        );
        assert_eq!(before, after);

        // Recall: not someone else's in a one-to-one chat; a group admin may.
        alice.call("/message/recall", json!({"messageId": private["id"]})).await.ok();
        bob.call("/message/recall", json!({"messageId": private["id"]})).await.fails("forbidden");
        alice.call("/message/recall", json!({"messageId": group_msg["id"]})).await.ok();
        // Past the recall window the sender may not.
        let late =
            bob.call("/message/send", text(&muted_id, "too late", &format!("{t}-late"))).await.ok()["message"].clone();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        bob.call("/message/recall", json!({"messageId": late["id"]})).await.fails("forbidden");

        // A muted member cannot send; the group mute spares admins.
        let until = chatgate::now_ms() + 60_000;
        alice.call("/group/room/mute", json!({"groupId": gid, "userId": muted_id, "until": until})).await.ok();
        let mut muted = Api::new(&server, via).await;
        muted
            .call("/user/login", json!({"username": format!("authz-muted-{t}"), "password": "a long enough password"}))
            .await
            .ok();
        let body = json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "mmm"}, "clientMsgId": format!("{t}-m")});
        muted.call("/message/send", body).await.fails("group.muted");
        alice.call("/group/room/mute", json!({"groupId": gid, "until": until})).await.ok();
        let body = json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "b"}, "clientMsgId": format!("{t}-b")});
        bob.call("/message/send", body).await.fails("group.muted");
        let body = json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "owner"}, "clientMsgId": format!("{t}-o")});
        alice.call("/message/send", body).await.ok();
    }
}

async fn conversation_state_and_pushes(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, alice_id) = user(&server, Via::Http, "state-alice").await;
    let mut alice_ws = device(&server, &alice, Wire::Json).await;
    let mut peers = Vec::new();
    for i in 0..3 {
        let (mut peer, _) = user(&server, Via::Http, &format!("state-peer-{i}")).await;
        peer.call("/message/send", text(&alice_id, &format!("hello {i}"), &format!("h{i}"))).await.ok();
        peers.push(peer);
    }
    let list = alice.call("/conversation/list", json!({})).await.ok();
    let order: Vec<String> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["peer"]["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["state-peer-2", "state-peer-1", "state-peer-0"], "latest activity first");
    let oldest = list["conversations"][2]["conversationId"].as_str().unwrap().to_owned();
    let newest = list["conversations"][0]["conversationId"].as_str().unwrap().to_owned();
    assert_eq!(list["conversations"][0]["lastMessage"]["content"]["text"], "hello 2");

    // Pinning puts a conversation first and tells the caller's other sessions.
    let pinned = alice
        .call("/conversation/update", json!({"conversationId": oldest, "pinned": true, "draft": "half a thought"}))
        .await
        .ok();
    assert_eq!(
        (pinned["conversation"]["pinned"].as_bool(), pinned["conversation"]["draft"].as_str()),
        (Some(true), Some("half a thought"))
    );
    assert_eq!(alice_ws.push("conversation.updated").await["data"]["conversation"]["conversationId"], oldest.as_str());
    let list = alice.call("/conversation/list", json!({"limit": 2})).await.ok();
    assert_eq!(list["conversations"][0]["conversationId"], oldest.as_str());
    let rest = alice.call("/conversation/list", json!({"limit": 2, "cursor": list["nextCursor"]})).await.ok();
    assert_eq!(rest["conversations"].as_array().unwrap().len(), 1);
    assert!(rest["nextCursor"].is_null());

    // Hiding removes it from the list until the next message.
    alice.call("/conversation/update", json!({"conversationId": newest, "hidden": true})).await.ok();
    let ids = |v: &Value| {
        v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["conversationId"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(!ids(&alice.call("/conversation/list", json!({})).await.ok()).contains(&newest));
    peers[2].call("/message/send", text(&alice_id, "you there?", "h2b")).await.ok();
    assert!(ids(&alice.call("/conversation/list", json!({})).await.ok()).contains(&newest));
    typing_and_readers(&server, &mut alice, &mut alice_ws, &alice_id, peers, &oldest).await;
}

/// Typing and read receipts, which reach other participants without being messages themselves.
async fn typing_and_readers(
    server: &Server,
    alice: &mut Api,
    alice_ws: &mut Ws,
    alice_id: &str,
    mut peers: Vec<Api>,
    oldest: &str,
) {
    // Typing reaches the other participant only, and is never stored.
    let mut peer_ws = device(server, &peers[0], Wire::MsgPack).await;
    alice_ws.request("/message/typing", json!({"conversationId": oldest})).await;
    assert_eq!(peer_ws.push("typing").await["data"], json!({"conversationId": oldest, "userId": alice_id}));
    alice_ws.no_push().await;

    // Readers: who has read a group message.
    let gid = alice.call("/group/room/add", json!({"name": "Readers"})).await.ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for peer in &mut peers {
        peer.call("/group/room/join", json!({"groupId": gid})).await.ok();
    }
    let msg = alice
        .call("/message/send", json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "read me"}, "clientMsgId": "r1"}))
        .await
        .ok()["message"]
        .clone();
    for peer in &mut peers[..2] {
        peer.call("/conversation/read", json!({"conversationId": format!("g:{gid}"), "seq": msg["seq"]})).await.ok();
    }
    let readers = alice.call("/message/readers", json!({"messageId": msg["id"]})).await.ok();
    assert_eq!(readers["count"], 2);
    assert_eq!(readers["userIds"].as_array().unwrap().len(), 2);
    alice
        .call("/conversation/update", json!({"conversationId": oldest, "draft": "x".repeat(5001)}))
        .await
        .fails("validation.draft");
    alice.call("/conversation/read", json!({"conversationId": oldest, "seq": -1})).await.fails("validation.seq");
}
