//! Who may recall whose messages in a group: the owner anyone's, an admin only members'.

use serde_json::{Value, json};

use crate::harness::{Api, Backend, Server, Via, user};
use crate::on_both;

on_both!(admins_recall_only_members_messages);

async fn say(api: &mut Api, group: &str, key: &str) -> Value {
    let data = json!({"chatType": "group", "to": group, "kind": "text", "content": {"text": key}, "clientMsgId": key});
    api.call("/message/send", data).await.ok()["message"]["id"].clone()
}

async fn admins_recall_only_members_messages(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, _) = user(&server, Via::Http, "mod-owner").await;
    let (mut first_admin, first_id) = user(&server, Via::WsJson, "mod-admin-1").await;
    let (mut second_admin, second_id) = user(&server, Via::WsMsgPack, "mod-admin-2").await;
    let (mut member, member_id) = user(&server, Via::Http, "mod-member").await;
    let group = owner
        .call("/group/room/add", json!({"name": "Moderated", "members": [first_id, second_id, member_id]}))
        .await
        .ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for admin in [&first_id, &second_id] {
        owner.call("/group/room/role", json!({"groupId": group, "userId": admin, "role": "admin"})).await.ok();
    }
    let by_owner = say(&mut owner, &group, "owner-says").await;
    let by_admin = say(&mut first_admin, &group, "admin-says").await;
    let by_member = say(&mut member, &group, "member-says").await;

    second_admin.call("/message/recall", json!({"messageId": by_owner})).await.fails("forbidden");
    second_admin.call("/message/recall", json!({"messageId": by_admin})).await.fails("forbidden");
    let recalled = second_admin.call("/message/recall", json!({"messageId": by_member})).await.ok();
    assert_eq!(recalled["message"]["status"], "recalled");
    member.call("/message/recall", json!({"messageId": by_admin})).await.fails("forbidden");
    let recalled = owner.call("/message/recall", json!({"messageId": by_admin})).await.ok();
    assert_eq!(recalled["message"]["status"], "recalled");
    // The owner's own message is still there for everyone.
    let history = member.call("/message/history", json!({"conversationId": format!("g:{group}")})).await.ok();
    let owner_message = history["messages"].as_array().unwrap().iter().find(|m| m["id"] == by_owner).cloned();
    assert_eq!(owner_message.unwrap()["status"], "normal");
}
