//! Mentions: a group message mentions listed members or, from the owner and admins only,
//! `@all`; each conversation carries the caller's `mentionUnread`, which a mute does not stop,
//! which a read, a recall or a delete-for-me moves, and which an edit leaves alone; the mentions
//! of the caller are listed, newest page first.

use serde_json::{Value, json};

use crate::harness::{Api, Backend, Server, Via, user};
use crate::on_both;

on_both!(mentions_are_counted_listed_and_moved_by_reads_recalls_and_hides);

async fn send(api: &mut Api, group: &str, text: &str, mentions: Value) -> Value {
    let content = json!({"text": text, "mentions": mentions});
    let data = json!({"chatType": "group", "to": group, "kind": "text", "content": content, "clientMsgId": text.replace(|c: char| !c.is_ascii_alphanumeric(), "-")});
    api.call("/message/send", data).await.ok()["message"].clone()
}

async fn state(api: &mut Api, conversation: &str) -> (i64, i64) {
    let c = api.call("/conversation/info", json!({"conversationId": conversation})).await.ok()["conversation"].clone();
    (c["unread"].as_i64().unwrap(), c["mentionUnread"].as_i64().unwrap())
}

async fn listed(api: &mut Api, conversation: &str, query: Value) -> (Vec<String>, bool) {
    let mut query = query;
    query["conversationId"] = json!(conversation);
    let page = api.call("/message/mentions", query).await.ok();
    let texts = page["messages"].as_array().unwrap().iter().map(|m| m["content"]["text"].as_str().unwrap().to_owned());
    (texts.collect(), page["hasMore"].as_bool().unwrap())
}

async fn mentions_are_counted_listed_and_moved_by_reads_recalls_and_hides(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, owner_id) = user(&server, Via::Http, "mention-owner").await;
    let (mut bob, bob_id) = user(&server, Via::WsJson, "mention-bob").await;
    let (mut carol, carol_id) = user(&server, Via::WsMsgPack, "mention-carol").await;
    let (mut dave, dave_id) = user(&server, Via::Http, "mention-dave").await;
    let group = owner.call("/group/room/add", json!({"name": "Pinged", "members": [bob_id, carol_id]})).await.ok();
    let group = group["group"]["id"].as_str().unwrap().to_owned();
    let conversation = format!("g:{group}");

    // Only the owner and admins may mention everyone.
    let content = json!({"text": "everyone!", "mentions": "all"});
    let data = json!({"chatType": "group", "to": group, "kind": "text", "content": content, "clientMsgId": "b-all"});
    bob.call("/message/send", data).await.fails("validation.mentions");

    let all = send(&mut owner, &group, "all of you", json!("all")).await;
    let to_carol = send(&mut bob, &group, "carol, look", json!([carol_id])).await;
    assert_eq!(state(&mut carol, &conversation).await, (2, 2));
    assert_eq!(state(&mut bob, &conversation).await, (0, 0), "sending read the owner's @all");
    assert_eq!(state(&mut owner, &conversation).await, (1, 0), "their own @all is no mention of them");

    // Muted, the group still counts mentions.
    carol.call("/conversation/update", json!({"conversationId": conversation, "muted": true})).await.ok();
    assert_eq!(state(&mut carol, &conversation).await, (2, 2));
    assert_eq!(
        listed(&mut carol, &conversation, json!({})).await,
        (vec!["all of you".into(), "carol, look".into()], false)
    );
    assert_eq!(listed(&mut carol, &conversation, json!({"limit": 1})).await, (vec!["carol, look".into()], true));
    let older = json!({"beforeSeq": to_carol["seq"], "limit": 1});
    assert_eq!(listed(&mut carol, &conversation, older).await, (vec!["all of you".into()], false));
    assert_eq!(listed(&mut owner, &conversation, json!({})).await.0, Vec::<String>::new());

    // A recall takes the mention back; repeats and the sender themselves count once, or not.
    bob.call("/message/recall", json!({"messageId": to_carol["id"]})).await.ok();
    assert_eq!(state(&mut carol, &conversation).await, (1, 1));
    let again = send(&mut owner, &group, "carol twice", json!([carol_id, carol_id, owner_id])).await;
    assert_eq!(state(&mut carol, &conversation).await, (2, 2));
    assert_eq!(state(&mut owner, &conversation).await, (0, 0));

    // Deleting for oneself: no longer unread, no longer listed.
    carol.call("/message/hide", json!({"messageId": all["id"]})).await.ok();
    assert_eq!(state(&mut carol, &conversation).await, (1, 1));
    assert_eq!(listed(&mut carol, &conversation, json!({})).await.0, vec!["carol twice".to_owned()]);

    // An edit keeps the mentions it was sent with: no one new is pinged, no count moves.
    let edit = json!({"messageId": again["id"], "content": {"text": "bob now", "mentions": [bob_id]}});
    let edited = owner.call("/message/edit", edit).await.ok();
    assert_eq!(edited["message"]["content"]["mentions"], json!([carol_id.clone(), carol_id.clone(), owner_id]));
    assert_eq!(state(&mut bob, &conversation).await, (1, 0));
    assert_eq!(state(&mut carol, &conversation).await, (1, 1));

    // A read moves past them; a recall of a read mention changes nothing more.
    let seq = again["seq"].as_i64().unwrap();
    carol.call("/conversation/read", json!({"conversationId": conversation, "seq": seq})).await.ok();
    assert_eq!(state(&mut carol, &conversation).await, (0, 0));
    owner.call("/message/recall", json!({"messageId": again["id"]})).await.ok();
    assert_eq!(state(&mut carol, &conversation).await, (0, 0));

    // Someone who joins later has none of the earlier ones, and gets the next.
    owner.call("/group/room/invite", json!({"groupId": group, "members": [dave_id]})).await.ok();
    assert_eq!(state(&mut dave, &conversation).await.1, 0);
    let welcome = send(&mut owner, &group, "welcome all", json!("all")).await;
    assert_eq!(state(&mut dave, &conversation).await.1, 1);
    assert_eq!(state(&mut carol, &conversation).await, (1, 1));
    // Reading up to just before it (the invite's system message) leaves it unread.
    let before = welcome["seq"].as_i64().unwrap() - 1;
    assert!(before > seq, "the invite took a seq");
    carol.call("/conversation/read", json!({"conversationId": conversation, "seq": before})).await.ok();
    assert_eq!(state(&mut carol, &conversation).await, (1, 1));
    owner.call("/message/recall", json!({"messageId": all["id"]})).await.ok();
    assert_eq!(state(&mut carol, &conversation).await, (1, 1), "a hidden @all's recall leaves the count");
    assert_eq!(state(&mut bob, &conversation).await, (1, 1));
    assert_eq!(state(&mut dave, &conversation).await.1, 1);
}
