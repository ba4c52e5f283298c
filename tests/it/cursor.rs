//! Sync by cursor: a device names one cursor instead of each conversation it holds, and gets
//! every entry of every conversation that moved since, continuing each exactly where it stood,
//! paged by bytes, with conversations that did not move left out; it ends where a device
//! syncing each conversation from its start ends.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::{Api, Backend, Server, Via, user};
use crate::log::{View, sync_into};
use crate::on_both;

on_both!(a_cursor_brings_what_moved_and_nothing_else, a_cursor_keeps_up_with_writers);

/// What one round of sync by cursor brought.
#[derive(Default)]
struct Round {
    /// Conversations with entries, by id.
    moved: Vec<String>,
    /// Conversations whose answer started past what the device held.
    fetched: Vec<String>,
    /// Answers it took.
    pages: usize,
}

/// Syncs by cursor from `cursor` until the round ends, applying every entry to `views`; returns
/// the cursor reached. Each conversation must go on from the position held of it, unless the
/// answer starts past it (then it is fetched by position first).
async fn cursor_round(api: &mut Api, cursor: &str, views: &mut BTreeMap<String, View>) -> (String, Round) {
    let mut cursor = cursor.to_owned();
    let mut round = Round::default();
    loop {
        let reply = api.call("/message/sync", json!({"cursor": cursor})).await.ok();
        round.pages += 1;
        for synced in reply["conversations"].as_array().unwrap() {
            let id = synced["conversation"]["conversationId"].as_str().unwrap().to_owned();
            let view = views.entry(id.clone()).or_default();
            let from = synced["from"].as_i64().unwrap();
            if view.pos < from {
                sync_into(api, &id, view).await;
                round.fetched.push(id);
                continue;
            }
            // Fetched by position, a conversation may be held past the round's end.
            let ahead = views_fetched(&round, &id);
            assert!(from == view.pos || ahead, "{id}: the answer goes on from where the device stood");
            apply(view, synced, ahead);
            if !round.moved.contains(&id) {
                round.moved.push(id);
            }
        }
        cursor = reply["cursor"].as_str().expect("a cursor in every answer").to_owned();
        if reply["hasMore"] == false {
            return (cursor, round);
        }
    }
}

fn views_fetched(round: &Round, id: &String) -> bool {
    round.fetched.contains(id)
}

/// Applies one conversation's answer in log order (what is held already, once only).
fn apply(view: &mut View, synced: &Value, ahead: bool) {
    let mut entries: Vec<(i64, &Value, bool)> =
        synced["messages"].as_array().unwrap().iter().map(|m| (m["pos"].as_i64().unwrap(), m, true)).collect();
    entries.extend(synced["changes"].as_array().unwrap().iter().map(|c| (c["pos"].as_i64().unwrap(), c, false)));
    entries.sort_by_key(|e| e.0);
    let held = view.pos;
    for (pos, entry, is_message) in entries.into_iter().filter(|e| e.0 > held) {
        view.advance(pos);
        if is_message { view.message(entry) } else { view.change(entry) }
    }
    if !ahead {
        assert_eq!(synced["pos"], view.pos, "the answer's pos is its last entry's");
    }
}

/// Every conversation synced by position from its start, as a fresh device syncing the old
/// way (naming each conversation it holds) would.
async fn from_scratch(api: &mut Api, ids: impl Iterator<Item = &String>) -> BTreeMap<String, View> {
    let mut views: BTreeMap<String, View> = ids.map(|id| (id.clone(), View::default())).collect();
    loop {
        let known: Vec<Value> = views.iter().map(|(id, v)| json!({"conversationId": id, "pos": v.pos})).collect();
        let reply = api.call("/message/sync", json!({"log": true, "conversations": known})).await.ok();
        let mut more = reply["hasMore"] == true;
        for synced in reply["conversations"].as_array().unwrap() {
            let id = synced["conversation"]["conversationId"].as_str().unwrap();
            let view = views.get_mut(id).expect("only conversations the device is in");
            assert_eq!(synced["from"], view.pos);
            apply(view, synced, false);
            more |= synced["hasMore"] == true;
        }
        if !more {
            return views;
        }
    }
}

fn text(chat_type: &str, to: &str, text: String, key: String) -> Value {
    json!({"chatType": chat_type, "to": to, "kind": "text", "content": {"text": text}, "clientMsgId": key})
}

async fn a_cursor_brings_what_moved_and_nothing_else(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "cur-alice").await;
    let (mut bob, bob_id) = user(&server, Via::WsJson, "cur-bob").await;
    let mut groups = Vec::new();
    for name in ["Quiet", "Busy", "Changed"] {
        let group = alice.call("/group/room/add", json!({"name": name, "members": [bob_id]})).await.ok();
        groups.push(group["group"]["id"].as_str().unwrap().to_owned());
    }
    // A group Bob is not in yet, with history of its own.
    let later = alice.call("/group/room/add", json!({"name": "Later", "members": []})).await.ok();
    let later = later["group"]["id"].as_str().unwrap().to_owned();
    let mut sent = Vec::new();
    for (i, group) in groups.iter().chain([&later]).enumerate() {
        sent.push(
            alice.call("/message/send", text("group", group, format!("first {i}"), format!("c0-{i}"))).await.ok(),
        );
    }
    alice.call("/message/send", text("single", &bob_id, "hello".into(), "c0-single".into())).await.ok();

    // Bob's laptop holds nothing: the cursor "0" brings everything it is in.
    let mut laptop = BTreeMap::new();
    let (cursor, round) = cursor_round(&mut bob, "0", &mut laptop).await;
    assert_eq!(round.moved.len(), 4, "three groups and the one-to-one chat: {:?}", round.moved);
    let again = bob.call("/message/sync", json!({"cursor": cursor})).await.ok();
    assert_eq!(again["conversations"], json!([]), "nothing moved since");
    assert_eq!(again["cursor"], cursor.as_str(), "so the cursor stays");

    // While it is away: a backlog of long texts in one group, changes in another, a message to
    // the one-to-one chat, and Bob added to a group with history.
    let long = "x".repeat(4990);
    for i in 0..60 {
        alice.call("/message/send", text("group", &groups[1], format!("{i:02} {long}"), format!("c1-{i}"))).await.ok();
    }
    let changed = &sent[2]["message"]["id"];
    alice.call("/message/edit", json!({"messageId": changed, "content": {"text": "first 2, edited"}})).await.ok();
    alice.call("/message/react", json!({"messageId": changed, "key": "🎉"})).await.ok();
    alice.call("/message/recall", json!({"messageId": sent[0]["message"]["id"]})).await.ok();
    let quiet = sent[0]["message"]["conversationId"].as_str().unwrap().to_owned();
    alice.call("/message/send", text("single", &bob_id, "again".into(), "c1-single".into())).await.ok();
    alice.call("/group/room/invite", json!({"groupId": later, "members": [bob_id]})).await.ok();
    alice.call("/message/send", text("group", &later, "welcome".into(), "c1-later".into())).await.ok();

    let (cursor, round) = cursor_round(&mut bob, &cursor, &mut laptop).await;
    assert!(round.pages >= 2, "300 KB of texts take more than one answer");
    let joined = sent[3]["message"]["conversationId"].as_str().unwrap().to_owned();
    assert_eq!(round.fetched, [joined], "the group joined since is fetched from its start");
    let fresh = from_scratch(&mut bob, laptop.keys()).await;
    assert_eq!(laptop.len(), 5, "the group Bob joined is held too");
    for (id, view) in &laptop {
        assert_eq!(view, &fresh[id], "{id}: the laptop holds what a fresh device gets");
    }
    let quiet_held = &laptop[&quiet];
    assert_eq!(quiet_held.messages.values().last().unwrap().status, "recalled", "the recall came");
    assert!(round.moved.contains(&quiet), "a conversation with a change moved");
    assert!(bob.call("/message/sync", json!({"cursor": cursor})).await.ok()["conversations"] == json!([]));
}

/// Rounds taken while others keep writing, messages and changes to many conversations, lose
/// nothing: after the writers stop, one more round makes the laptop equal a fresh device.
async fn a_cursor_keeps_up_with_writers(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut bob, bob_id) = user(&server, Via::WsMsgPack, "race-bob").await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let (mut api, _) = user(&server, Via::Http, &format!("race-w{w}")).await;
        let bob_id = bob_id.clone();
        writers.push(tokio::spawn(async move {
            let group =
                api.call("/group/room/add", json!({"name": format!("Race {w}"), "members": [bob_id]})).await.ok();
            let group = group["group"]["id"].as_str().unwrap().to_owned();
            for i in 0..80 {
                let to = if i % 3 == 0 { &bob_id } else { &group };
                let chat_type = if i % 3 == 0 { "single" } else { "group" };
                let sent =
                    api.call("/message/send", text(chat_type, to, format!("{w}-{i}"), format!("r{w}-{i}"))).await.ok();
                if i % 5 == 0 {
                    api.call("/message/react", json!({"messageId": sent["message"]["id"], "key": "👍"})).await.ok();
                }
                if i % 7 == 0 {
                    api.call("/message/recall", json!({"messageId": sent["message"]["id"]})).await.ok();
                }
            }
        }));
    }
    let mut laptop = BTreeMap::new();
    let mut cursor = "0".to_owned();
    let mut rounds = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        (cursor, _) = cursor_round(&mut bob, &cursor, &mut laptop).await;
        rounds += 1;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    cursor_round(&mut bob, &cursor, &mut laptop).await;
    assert!(rounds > 1, "rounds ran during the writes");
    assert_eq!(laptop.len(), 8, "four groups and four one-to-one chats");
    let fresh = from_scratch(&mut bob, laptop.keys()).await;
    for (id, view) in &laptop {
        assert_eq!(view, &fresh[id], "{id}: nothing lost, nothing twice");
    }
}

/// A cursor the server did not give, or one with named conversations, is refused by field.
#[tokio::test]
async fn a_bad_cursor_is_refused_by_field() {
    let server = Server::start(Backend::Sqlite).await;
    let (mut bob, _) = user(&server, Via::WsJson, "badcur-bob").await;
    for bad in ["", "x", "-1", "1.2", "5.3.g:1.0", "1.2.nowhere.3", "1.2.g:1.-4"] {
        bob.call("/message/sync", json!({"cursor": bad})).await.fails("validation.cursor");
    }
    let named = json!({"cursor": "0", "conversations": [{"conversationId": "g:1", "pos": 0}]});
    bob.call("/message/sync", named).await.fails("validation.conversations");
    let fresh = bob.call("/message/sync", json!({"cursor": "0"})).await.ok();
    assert_eq!(fresh["hasMore"], false);
    assert!(fresh["cursor"].as_str().unwrap().parse::<i64>().is_ok(), "a stamp: {}", fresh["cursor"]);
}
