//! The conversation log: every change to a conversation's messages takes the next position,
//! pushes carry it, and a device that was away learns every change from sync alone, in order,
//! ending exactly where a device that stayed online is.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::{Api, Backend, Server, Via, Wire, Ws, device, user};
use crate::on_both;

on_both!(
    a_device_away_learns_every_change_from_sync,
    edits_keep_their_versions_within_the_rules,
    reactions_are_idempotent_and_bounded,
    a_change_retried_late_is_answered_as_done,
);

/// What a client holds of one message: its status, content, edit time and reaction counts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    pub(crate) status: String,
    content: Value,
    edited: bool,
    reactions: BTreeMap<String, i64>,
}

/// A client's view of one conversation, built only from what the server sent it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct View {
    pub(crate) messages: BTreeMap<i64, Held>,
    pub(crate) pos: i64,
}

impl View {
    /// Takes a message as it is now.
    pub(crate) fn message(&mut self, m: &Value) {
        let reactions = m["reactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["key"].as_str().unwrap().to_owned(), r["count"].as_i64().unwrap()))
            .collect();
        let held = Held {
            status: m["status"].as_str().unwrap().to_owned(),
            content: m["content"].clone(),
            edited: !m["editedAt"].is_null(),
            reactions,
        };
        self.messages.insert(m["seq"].as_i64().unwrap(), held);
    }

    /// Applies a change, which carries the state it left.
    pub(crate) fn change(&mut self, c: &Value) {
        let held = self.messages.get_mut(&c["seq"].as_i64().unwrap()).expect("a change to a message held");
        match c["type"].as_str().unwrap() {
            "recall" | "delete" => {
                held.status = if c["type"] == "recall" { "recalled" } else { "deleted" }.to_owned();
                held.content = json!({});
                held.reactions.clear();
            }
            "edit" => {
                held.content = c["content"].clone();
                held.edited = true;
            }
            "react" | "unreact" => {
                let key = c["key"].as_str().unwrap().to_owned();
                match c["count"].as_i64().unwrap() {
                    0 => held.reactions.remove(&key),
                    n => held.reactions.insert(key, n),
                };
            }
            other => panic!("unknown change {other}"),
        }
    }

    /// Takes an entry's position, which must be the next one.
    pub(crate) fn advance(&mut self, pos: i64) {
        assert_eq!(pos, self.pos + 1, "positions follow one another");
        self.pos = pos;
    }
}

/// One `message.*` push applied to `view`.
fn apply_push(view: &mut View, push: &Value) {
    let data = &push["data"];
    if push["event"] == "message.new" {
        view.advance(data["message"]["pos"].as_i64().unwrap());
        view.message(&data["message"]);
    } else {
        view.advance(data["pos"].as_i64().unwrap());
        view.change(data);
    }
}

/// Syncs `conversation` by position from `view.pos` until nothing more comes.
pub(crate) async fn sync_into(api: &mut Api, conversation: &str, view: &mut View) -> Vec<String> {
    let mut types = Vec::new();
    loop {
        let known = json!([{"conversationId": conversation, "pos": view.pos}]);
        let reply = api.call("/message/sync", json!({"log": true, "conversations": known})).await.ok();
        let Some(synced) = reply["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["conversation"]["conversationId"] == conversation)
            .cloned()
        else {
            return types;
        };
        let mut entries: Vec<(i64, Value, bool)> = synced["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["pos"].as_i64().unwrap(), m.clone(), true))
            .collect();
        entries.extend(
            synced["changes"].as_array().unwrap().iter().map(|c| (c["pos"].as_i64().unwrap(), c.clone(), false)),
        );
        entries.sort_by_key(|e| e.0);
        for (pos, entry, is_message) in entries {
            view.advance(pos);
            if is_message {
                types.push("new".into());
                view.message(&entry);
            } else {
                types.push(entry["type"].as_str().unwrap().to_owned());
                view.change(&entry);
            }
        }
        assert_eq!(synced["pos"], view.pos, "the answer's pos is the last entry's");
        if synced["hasMore"] == false && reply["hasMore"] == false {
            return types;
        }
    }
}

/// Reads the next `message.*` push, skipping others.
async fn next_message_push(ws: &mut Ws) -> Value {
    loop {
        let frame = ws.recv().await.expect("socket open");
        if frame["type"] == "push" && frame["event"].as_str().unwrap().starts_with("message.") {
            return frame;
        }
    }
}

async fn a_device_away_learns_every_change_from_sync(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "log-alice").await;
    let (mut bob, bob_id) = user(&server, Via::Http, "log-bob").await;
    let group = alice.call("/group/room/add", json!({"name": "Log", "members": [bob_id]})).await.ok();
    let group_id = group["group"]["id"].as_str().unwrap().to_owned();
    for (chat_type, to) in [("single", bob_id.clone()), ("group", group_id.clone())] {
        let mut phone = device(&server, &bob, Wire::MsgPack).await;
        let mut ids = Vec::new();
        for i in 0..4 {
            let data = json!({"chatType": chat_type, "to": to, "kind": "text", "content": {"text": format!("m{i}")}, "clientMsgId": format!("log-{chat_type}-{i}")});
            ids.push(alice.call("/message/send", data).await.ok()["message"].clone());
        }
        let conversation = ids[0]["conversationId"].as_str().unwrap().to_owned();

        let edited = alice
            .call("/message/edit", json!({"messageId": ids[0]["id"], "content": {"text": "m0, better"}}))
            .await
            .ok();
        let reacted = bob.call("/message/react", json!({"messageId": ids[1]["id"], "key": "👍"})).await.ok();
        alice.call("/message/react", json!({"messageId": ids[1]["id"], "key": "👍"})).await.ok();
        alice.call("/message/unreact", json!({"messageId": ids[1]["id"], "key": "👍"})).await.ok();
        alice.call("/message/recall", json!({"messageId": ids[2]["id"]})).await.ok();
        alice.call("/message/delete", json!({"messageId": ids[3]["id"]})).await.ok();
        let positions: Vec<i64> = [&edited, &reacted].iter().map(|r| r["pos"].as_i64().unwrap()).collect();
        assert_eq!(positions[1], positions[0] + 1, "{chat_type}: changes take the next positions");
        assert_eq!(reacted["message"]["reactions"], json!([{"key": "👍", "count": 1, "mine": true}]));

        // The laptop was away for all of it: sync alone brings every entry, in order.
        let mut away = View::default();
        let types = sync_into(&mut bob, &conversation, &mut away).await;
        let tail: Vec<&str> = types.iter().rev().take(10).rev().map(String::as_str).collect();
        assert_eq!(
            tail,
            ["new", "new", "new", "new", "edit", "react", "react", "unreact", "recall", "delete"],
            "{chat_type}: every change, in order"
        );
        // The phone, online all along, saw the same through pushes: both end in the same
        // state. (Bob reacted over HTTP, so his phone hears of it too.)
        let mut live = View { pos: away.pos - 10, ..View::default() };
        while live.pos < away.pos {
            let push = next_message_push(&mut phone).await;
            let data = &push["data"];
            if data["message"]["pos"].as_i64().or(data["pos"].as_i64()).unwrap() > live.pos {
                apply_push(&mut live, &push);
            }
        }
        let only_recent = |view: &View| -> BTreeMap<i64, Held> {
            view.messages
                .iter()
                .filter(|(seq, _)| ids.iter().any(|m| m["seq"] == **seq))
                .map(|(k, v)| (*k, v.clone()))
                .collect()
        };
        assert_eq!(live.pos, away.pos, "{chat_type}: both hold the same position");
        assert_eq!(only_recent(&live), only_recent(&away), "{chat_type}: both hold the same state");
        let held = only_recent(&away);
        let states: Vec<&str> = held.values().map(|h| h.status.as_str()).collect();
        assert_eq!(states, ["normal", "normal", "recalled", "deleted"]);
        assert_eq!(held.values().next().unwrap().content, json!({"text": "m0, better"}));
        let reactions: Vec<&BTreeMap<String, i64>> = held.values().map(|h| &h.reactions).collect();
        let bobs = BTreeMap::from([("👍".to_owned(), 1)]);
        assert_eq!(reactions, [&BTreeMap::new(), &bobs, &BTreeMap::new(), &BTreeMap::new()], "Alice took hers back");

        // A device that held everything up to the first change gets the changes only.
        let mut partial = View { pos: away.pos - 6, ..View::default() };
        for m in &ids {
            partial.message(m);
        }
        let types = sync_into(&mut bob, &conversation, &mut partial).await;
        assert_eq!(types, ["edit", "react", "react", "unreact", "recall", "delete"], "{chat_type}");
        assert_eq!(only_recent(&partial), held, "{chat_type}: from a later position too");
    }
}

async fn edits_keep_their_versions_within_the_rules(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "edit-alice").await;
    let (mut bob, bob_id) = user(&server, Via::Http, "edit-bob").await;
    let send = |text: &str, key: &str| json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": text, "replyTo": null}, "clientMsgId": key});
    let first = alice.call("/message/send", send("one", "e1")).await.ok()["message"].clone();
    let reply = json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "re", "replyTo": first["id"]}, "clientMsgId": "e2"});
    let second = alice.call("/message/send", reply).await.ok()["message"].clone();
    let quote = &second["quote"];
    assert_eq!(
        (&quote["messageId"], &quote["status"], &quote["snippet"]),
        (&first["id"], &json!("normal"), &json!("one"))
    );

    let once = alice.call("/message/edit", json!({"messageId": first["id"], "content": {"text": "two"}})).await.ok();
    assert_eq!(once["message"]["content"], json!({"text": "two"}));
    assert!(once["message"]["editedAt"].as_i64().is_some());
    alice.call("/message/edit", json!({"messageId": first["id"], "content": {"text": "three"}})).await.ok();
    let retried =
        alice.call("/message/edit", json!({"messageId": first["id"], "content": {"text": "three"}})).await.ok();
    assert_eq!(retried["pos"], Value::Null, "an edit to what it says already changes nothing");
    let versions = bob.call("/message/versions", json!({"messageId": first["id"]})).await.ok()["versions"].clone();
    let texts: Vec<&Value> = versions.as_array().unwrap().iter().map(|v| &v["content"]["text"]).collect();
    assert_eq!(texts, [&json!("one"), &json!("two")], "earlier versions, oldest first, for every participant");

    // A reply keeps what it quotes.
    let edited = alice.call("/message/edit", json!({"messageId": second["id"], "content": {"text": "re!"}})).await.ok();
    assert_eq!(edited["message"]["content"]["replyTo"], first["id"]);

    bob.call("/message/edit", json!({"messageId": first["id"], "content": {"text": "mine"}})).await.fails("forbidden");
    alice
        .call("/message/edit", json!({"messageId": first["id"], "content": {"text": ""}}))
        .await
        .fails("validation.text");
    alice.call("/message/edit", json!({"messageId": "99999", "content": {"text": "x"}})).await.fails("not_found");
    let image = json!({"chatType": "single", "to": bob_id, "kind": "location", "content": {"latitude": 1.0, "longitude": 2.0}, "clientMsgId": "e3"});
    let located = alice.call("/message/send", image).await.ok()["message"].clone();
    alice
        .call("/message/edit", json!({"messageId": located["id"], "content": {"text": "x"}}))
        .await
        .fails("validation.messageId");

    alice.call("/message/recall", json!({"messageId": first["id"]})).await.ok();
    alice
        .call("/message/edit", json!({"messageId": first["id"], "content": {"text": "four"}}))
        .await
        .fails("message.not_editable");
    let versions = bob.call("/message/versions", json!({"messageId": first["id"]})).await.ok();
    assert_eq!(versions["versions"], json!([]), "a recall takes the earlier versions with it");
    // A reply's quote follows the quoted message: recalled, it shows no text.
    let page = bob.call("/message/history", json!({"conversationId": first["conversationId"]})).await.ok();
    let reply = page["messages"].as_array().unwrap().iter().find(|m| m["id"] == second["id"]).unwrap().clone();
    assert_eq!((&reply["quote"]["status"], &reply["quote"]["snippet"]), (&json!("recalled"), &json!("")));

    // Past the window, nothing can be edited.
    let strict = Server::start_with(backend, &["--edit-window-secs", "0"]).await;
    let (mut carol, _) = user(&strict, Via::Http, "edit-carol").await;
    let (_, dan_id) = user(&strict, Via::Http, "edit-dan").await;
    let sent = carol.call("/message/send", json!({"chatType": "single", "to": dan_id, "kind": "text", "content": {"text": "late"}, "clientMsgId": "late"})).await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    carol
        .call("/message/edit", json!({"messageId": sent["message"]["id"], "content": {"text": "later"}}))
        .await
        .fails("message.not_editable");
}

async fn reactions_are_idempotent_and_bounded(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::WsJson, "react-alice").await;
    let (mut bob, bob_id) = user(&server, Via::Http, "react-bob").await;
    let sent = alice
        .call(
            "/message/send",
            json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "hi"}, "clientMsgId": "r1"}),
        )
        .await
        .ok()["message"]
        .clone();
    let id = &sent["id"];
    let first = bob.call("/message/react", json!({"messageId": id, "key": "🎉"})).await.ok();
    let again = bob.call("/message/react", json!({"messageId": id, "key": "🎉"})).await.ok();
    assert_eq!(first["pos"], sent["pos"].as_i64().unwrap() + 1);
    assert_eq!(again["pos"], Value::Null, "a second add changes nothing and logs nothing");
    alice.call("/message/react", json!({"messageId": id, "key": "🎉"})).await.ok();
    let history = bob.call("/message/history", json!({"conversationId": sent["conversationId"]})).await.ok();
    assert_eq!(history["messages"][0]["reactions"], json!([{"key": "🎉", "count": 2, "mine": true}]));
    let gone = bob.call("/message/unreact", json!({"messageId": id, "key": "🎉"})).await.ok();
    assert_eq!(gone["message"]["reactions"], json!([{"key": "🎉", "count": 1, "mine": false}]));
    let nothing = bob.call("/message/unreact", json!({"messageId": id, "key": "🎉"})).await.ok();
    assert_eq!(nothing["pos"], Value::Null);

    for key in ["", &"x".repeat(33), "a\u{7}"] {
        bob.call("/message/react", json!({"messageId": id, "key": key})).await.fails("validation.key");
    }
    // Twenty distinct keys at most; those there can still be added.
    for i in 1..20 {
        bob.call("/message/react", json!({"messageId": id, "key": format!("k{i}")})).await.ok();
    }
    bob.call("/message/react", json!({"messageId": id, "key": "one-too-many"})).await.fails("message.reactions_full");
    alice.call("/message/react", json!({"messageId": id, "key": "k7"})).await.ok();
    let (mut eve, _) = user(&server, Via::Http, "react-eve").await;
    eve.call("/message/react", json!({"messageId": id, "key": "🎉"})).await.fails("not_found");
}

async fn a_change_retried_late_is_answered_as_done(backend: Backend) {
    let server = Server::start_with(backend, &["--recall-window-secs", "1"]).await;
    let (mut alice, _) = user(&server, Via::Http, "late-alice").await;
    let (_, bob_id) = user(&server, Via::Http, "late-bob").await;
    let text =
        json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "oops"}, "clientMsgId": "late"});
    let sent = alice.call("/message/send", text).await.ok()["message"].clone();
    let recalled = alice.call("/message/recall", json!({"messageId": sent["id"]})).await.ok();
    assert_eq!(recalled["change"]["pos"], recalled["pos"], "the reply carries the change as pushed");
    assert_eq!(recalled["change"]["type"], "recall");
    assert!(recalled["change"]["at"].as_i64().is_some());
    // The recall window passes before the retry of a recall whose answer was lost.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = alice.call("/message/recall", json!({"messageId": sent["id"]})).await.ok();
    assert_eq!(
        (&again["pos"], &again["change"], &again["message"]["status"]),
        (&Value::Null, &Value::Null, &json!("recalled"))
    );
    let deleted = alice.call("/message/delete", json!({"messageId": sent["id"]})).await.ok();
    assert_eq!(deleted["message"]["status"], "deleted");
    let again = alice.call("/message/delete", json!({"messageId": sent["id"]})).await.ok();
    assert_eq!(again["pos"], Value::Null);
}
