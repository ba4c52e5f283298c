//! Unread counts are counters kept with the changes that move them, and they stay exact: after a
//! randomized workload of sends, recalls, deletes for everyone and for oneself, reads and mutes,
//! from several users at once, every count equals a recount from the messages themselves (a
//! message deleted for oneself reads as `hidden`, and so is not counted). Group messages mention
//! members at random (`@all` from the owner), and every `mentionUnread` equals a recount too.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::harness::{Api, Backend, Server, Via, user};
use crate::on_both;

on_both!(
    unread_counters_match_a_recount_after_a_random_workload,
    a_hide_racing_a_recall_of_the_same_message_both_succeed
);

const USERS: usize = 4;
const STEPS: usize = 150;

/// One user's random turn at the conversations it is in.
async fn workload(api: &mut Api, me: usize, ids: &[String], conversations: &[(String, Value)], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mine: Vec<Value> = Vec::new();
    for step in 0..STEPS {
        let (conversation, to) = &conversations[rng.random_range(0..conversations.len())];
        match rng.random_range(0..10) {
            0..4 => {
                let mut content = json!({"text": format!("{me}:{step}")});
                if to["chatType"] == "group" && rng.random_bool(0.5) {
                    // The owner (user 0) may mention everyone; anyone may list members.
                    content["mentions"] = if me == 0 && rng.random_bool(0.3) {
                        json!("all")
                    } else {
                        json!(ids.iter().filter(|_| rng.random_bool(0.5)).collect::<Vec<_>>())
                    };
                }
                let data = json!({"chatType": to["chatType"], "to": to["to"], "kind": "text", "content": content, "clientMsgId": format!("u{me}-{step}")});
                let reply = api.call("/message/send", data).await;
                if reply.code == 0 {
                    mine.push(reply.data["message"].clone());
                }
            }
            5 if !mine.is_empty() => {
                let message = mine.swap_remove(rng.random_range(0..mine.len()));
                api.call("/message/recall", json!({"messageId": message["id"]})).await.ok();
            }
            6 if !mine.is_empty() => {
                let message = mine.swap_remove(rng.random_range(0..mine.len()));
                api.call("/message/delete", json!({"messageId": message["id"]})).await.ok();
            }
            4 => {
                // Delete for me someone's message, wherever it is.
                let page = api.call("/message/history", json!({"conversationId": conversation, "limit": 20})).await;
                let Some(messages) = page.data["messages"].as_array().filter(|m| !m.is_empty()) else { continue };
                let message = &messages[rng.random_range(0..messages.len())];
                api.call("/message/hide", json!({"messageId": message["id"]})).await.ok();
            }
            7 | 8 => {
                // A one-to-one conversation exists from its first message on.
                let info = api.call("/conversation/info", json!({"conversationId": conversation})).await;
                let Some(last) = info.data["conversation"]["lastSeq"].as_i64() else { continue };
                let seq = if rng.random_bool(0.5) { last } else { rng.random_range(0..=last) };
                api.call("/conversation/read", json!({"conversationId": conversation, "seq": seq})).await.ok();
            }
            _ => {
                let muted = rng.random_bool(0.5);
                let reply =
                    api.call("/conversation/update", json!({"conversationId": conversation, "muted": muted})).await;
                assert!(reply.code == 0 || reply.error.as_deref() == Some("not_found"), "{reply:?}");
            }
        }
    }
}

/// Every message of a conversation, by paging its history forward.
async fn all_messages(api: &mut Api, conversation: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let after = out.last().map_or(0, |m| m["seq"].as_i64().unwrap());
        let page = api
            .call("/message/history", json!({"conversationId": conversation, "afterSeq": after, "limit": 100}))
            .await
            .ok();
        out.extend(page["messages"].as_array().unwrap().iter().cloned());
        if page["hasMore"] == false {
            return out;
        }
    }
}

async fn unread_counters_match_a_recount_after_a_random_workload(backend: Backend) {
    let server = Server::start(backend).await;
    let mut apis = Vec::new();
    let mut ids = Vec::new();
    for i in 0..USERS {
        let (api, id) = user(&server, Via::Http, &format!("unread-{i}")).await;
        apis.push(api);
        ids.push(id);
    }
    let group = apis[0].call("/group/room/add", json!({"name": "Counted", "members": ids[1..]})).await.ok();
    let group_id = group["group"]["id"].as_str().unwrap().to_owned();
    // Each user: the group, and a one-to-one conversation with each other user.
    let mut conversations: Vec<Vec<(String, Value)>> = vec![Vec::new(); USERS];
    for (me, list) in conversations.iter_mut().enumerate() {
        list.push((format!("g:{group_id}"), json!({"chatType": "group", "to": group_id})));
        for id in ids.iter().filter(|id| **id != ids[me]) {
            let (a, b) = (ids[me].parse::<i64>().unwrap(), id.parse::<i64>().unwrap());
            let (low, high) = (a.min(b), a.max(b));
            list.push((format!("s:{low}:{high}"), json!({"chatType": "single", "to": id})));
        }
    }
    let seed: u64 = rand::rng().random();
    println!("unread workload seed {seed}");
    let runs = apis
        .iter_mut()
        .zip(&conversations)
        .enumerate()
        .map(|(me, (api, list))| workload(api, me, &ids, list, seed.wrapping_add(me as u64)));
    futures::future::join_all(runs).await;
    // Mentions left unread at the end, whatever the workload read: the counts checked below are
    // not all zero.
    for (from, mentions) in [(0, json!("all")), (1, json!(ids))] {
        let content = json!({"text": "last", "mentions": mentions});
        let data =
            json!({"chatType": "group", "to": group_id, "kind": "text", "content": content, "clientMsgId": "last"});
        apis[from].call("/message/send", data).await.ok();
    }

    let mut checked = 0;
    let mut mentioned = 0;
    for (me, api) in apis.iter_mut().enumerate() {
        let listed = api.call("/conversation/list", json!({"limit": 100})).await.ok();
        let unread = api.call("/conversation/unread", json!({})).await.ok();
        let mut total = 0;
        let mut per: HashMap<String, i64> = HashMap::new();
        for c in listed["conversations"].as_array().unwrap() {
            let id = c["conversationId"].as_str().unwrap().to_owned();
            let read_seq = c["readSeq"].as_i64().unwrap();
            let messages = all_messages(api, &id).await;
            let unread: Vec<&Value> = messages
                .iter()
                .filter(|m| {
                    m["seq"].as_i64().unwrap() > read_seq
                        && m["from"] != ids[me]
                        && m["status"] == "normal"
                        && m["kind"] != "system"
                })
                .collect();
            let recount = unread.len() as i64;
            assert_eq!(c["unread"].as_i64().unwrap(), recount, "seed {seed}: user {me}'s unread in {id}");
            let me_id = json!(ids[me]);
            let mentions = unread
                .iter()
                .filter(|m| {
                    let listed = m["content"]["mentions"].as_array().is_some_and(|l| l.contains(&me_id));
                    c["chatType"] == "group" && (m["content"]["mentions"] == "all" || listed)
                })
                .count() as i64;
            assert_eq!(c["mentionUnread"].as_i64().unwrap(), mentions, "seed {seed}: user {me}'s mentions in {id}");
            mentioned += mentions;
            if c["muted"] == false {
                total += recount;
            }
            per.insert(id, recount);
            checked += 1;
        }
        assert_eq!(unread["total"].as_i64().unwrap(), total, "seed {seed}: user {me}'s total leaves out muted ones");
        assert_eq!(listed["totalUnread"].as_i64().unwrap(), total, "seed {seed}: the list's total");
    }
    assert!(checked >= USERS * USERS, "every conversation was checked: {checked}");
    assert!(mentioned >= USERS as i64, "seed {seed}: the last mentions were counted: {mentioned}");
}

/// Deleting a message for oneself while its sender recalls it: both lock the message and its
/// conversation, and must do so in the same order, or PostgreSQL finds a deadlock and one of
/// them fails with `internal`.
async fn a_hide_racing_a_recall_of_the_same_message_both_succeed(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut sender, _) = user(&server, Via::Http, "race-sender").await;
    let (mut hider, hider_id) = user(&server, Via::Http, "race-hider").await;
    for i in 0..40 {
        let data = json!({"chatType": "single", "to": hider_id, "kind": "text", "content": {"text": "x"}, "clientMsgId": format!("r{i}")});
        let id = sender.call("/message/send", data).await.ok()["message"]["id"].clone();
        let (recalled, hidden) = futures::join!(
            sender.call("/message/recall", json!({"messageId": id})),
            hider.call("/message/hide", json!({"messageId": id})),
        );
        assert_eq!((recalled.error, hidden.error), (None, None), "round {i}");
    }
}
