//! The per-user feed: a device that was away learns from sync alone what changed in its user's
//! own state: groups joined, left, removed from, renamed or dismissed, conversations read,
//! pinned or given a draft elsewhere, and the profile.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::harness::{Api, Backend, Server, Via, user};
use crate::on_both;

on_both!(a_device_away_learns_its_own_changes_from_the_feed);

/// Syncs the feed from `pos` until it has nothing more; returns the changes by subject (the
/// latest of each) and the position reached.
async fn feed_since(api: &mut Api, mut pos: i64) -> (HashMap<String, Value>, i64) {
    let mut seen = HashMap::new();
    loop {
        let reply = api.call("/message/sync", json!({"log": true, "feedPos": pos})).await.ok();
        let feed = &reply["feed"];
        for change in feed["changes"].as_array().unwrap() {
            assert!(change["pos"].as_i64().unwrap() > pos, "only what came after: {change}");
            let subject = match change["type"].as_str().unwrap() {
                "conversation" => change["conversation"]["conversationId"].as_str().unwrap().to_owned(),
                "group" => format!("g{}", change["group"]["id"].as_str().unwrap()),
                "left" => format!("g{}", change["groupId"].as_str().unwrap()),
                "profile" => "profile".to_owned(),
                "hidden" => format!("m{}", change["messageId"].as_str().unwrap()),
                other => panic!("unknown feed change {other}"),
            };
            seen.insert(subject, change.clone());
        }
        let next = feed["pos"].as_i64().unwrap();
        assert!(next >= pos, "the position only moves forward");
        pos = next;
        if feed["hasMore"] == false {
            return (seen, pos);
        }
    }
}

async fn a_device_away_learns_its_own_changes_from_the_feed(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "feed-alice").await;
    let (mut bob, bob_id) = user(&server, Via::WsJson, "feed-bob").await;
    let group = |name: &str| json!({"name": name, "members": [bob_id]});
    let kicked = alice.call("/group/room/add", group("Kicked")).await.ok()["group"]["id"].as_str().unwrap().to_owned();
    let renamed =
        alice.call("/group/room/add", group("Renamed")).await.ok()["group"]["id"].as_str().unwrap().to_owned();
    let dismissed =
        alice.call("/group/room/add", group("Dismissed")).await.ok()["group"]["id"].as_str().unwrap().to_owned();
    let text =
        json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "hi"}, "clientMsgId": "f1"});
    let single = alice.call("/message/send", text).await.ok()["message"]["conversationId"].as_str().unwrap().to_owned();
    alice.call("/message/send", json!({"chatType": "group", "to": renamed, "kind": "text", "content": {"text": "hey"}, "clientMsgId": "f2"})).await.ok();

    let other = json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "ignore me"}, "clientMsgId": "f3"});
    let unwanted = alice.call("/message/send", other).await.ok()["message"].clone();

    // The laptop syncs, then goes away.
    let (_, laptop) = feed_since(&mut bob, 0).await;
    let (again, same) = feed_since(&mut bob, laptop).await;
    assert!(again.is_empty() && same == laptop, "nothing new: {again:?}");

    let joined = alice.call("/group/room/add", group("Joined")).await.ok()["group"]["id"].as_str().unwrap().to_owned();
    alice.call("/group/room/kick", json!({"groupId": kicked, "members": [bob_id]})).await.ok();
    alice.call("/group/room/update", json!({"groupId": renamed, "name": "Renamed again"})).await.ok();
    alice.call("/group/room/dismiss", json!({"groupId": dismissed})).await.ok();
    // Bob's phone reads one chat, pins the group's, leaves a draft, and changes his profile.
    bob.call("/conversation/read", json!({"conversationId": single, "seq": 1})).await.ok();
    let group_conversation = format!("g:{renamed}");
    bob.call("/conversation/update", json!({"conversationId": group_conversation, "pinned": true, "draft": "later"}))
        .await
        .ok();
    bob.call("/user/info", json!({"userinfo": {"nickname": "Bobby"}})).await.ok();
    // And deletes one of Alice's messages for himself only: unread, it stops counting.
    let before =
        bob.call("/conversation/info", json!({"conversationId": single})).await.ok()["conversation"]["unread"].clone();
    let hidden = bob.call("/message/hide", json!({"messageId": unwanted["id"]})).await.ok();
    assert_eq!((&hidden["message"]["status"], &hidden["message"]["content"]), (&json!("hidden"), &json!({})));
    let after =
        bob.call("/conversation/info", json!({"conversationId": single})).await.ok()["conversation"]["unread"].clone();
    assert_eq!((before.as_i64(), after.as_i64()), (Some(1), Some(0)));
    let hers = alice.call("/message/history", json!({"conversationId": single})).await.ok();
    assert_eq!(hers["messages"][1]["status"], "normal", "others still see it");

    let (changes, reached) = feed_since(&mut bob, laptop).await;
    assert!(reached > laptop);
    assert_eq!(changes[&format!("g{joined}")]["type"], "group", "{changes:?}");
    assert_eq!(changes[&format!("g{joined}")]["group"]["name"], "Joined");
    assert_eq!(changes[&format!("g{kicked}")]["type"], "left", "a removal is learnt from sync alone");
    assert_eq!(changes[&format!("g{renamed}")]["group"]["name"], "Renamed again");
    assert_eq!(changes[&format!("g{dismissed}")]["type"], "left", "so is a dismissal");
    let read = &changes[&single]["conversation"];
    assert_eq!((read["readSeq"].as_i64(), read["unread"].as_i64()), (Some(1), Some(0)));
    let gone = &changes[&format!("m{}", unwanted["id"].as_str().unwrap())];
    assert_eq!((&gone["type"], &gone["seq"]), (&json!("hidden"), &unwanted["seq"]));
    let pinned = &changes[&group_conversation]["conversation"];
    assert_eq!((&pinned["pinned"], &pinned["draft"]), (&json!(true), &json!("later")));
    assert_eq!(changes["profile"]["userinfo"]["nickname"], "Bobby");
    assert_eq!(changes.len(), 8, "each subject once, at its latest: {:?}", changes.keys());

    // Alice's feed holds her own changes, not Bob's.
    let (hers, _) = feed_since(&mut alice, 0).await;
    assert!(!hers.contains_key("profile") && !hers.contains_key(&single), "{:?}", hers.keys());
}
