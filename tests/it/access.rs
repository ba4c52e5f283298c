//! The access matrix: every route, tried by an outsider (and by a plain member where a route
//! needs an admin), against another user's private data, conversations and messages and a
//! group the caller may not touch. Each gets its refusal, nothing leaks, and nothing changes.

use serde_json::{Value, json};

use crate::harness::Wire;
use crate::harness::{ALL_VIAS, Api, Backend, Server, Via, device, user};
use crate::on_both;

on_both!(every_route_refuses_outsiders);

/// What the victims can see of their own state: it must read the same after the attempts.
async fn snapshot(alice: &mut Api, single: &str, group: &str, gid: &str) -> Value {
    json!({
        "me": alice.call("/user/info", json!({})).await.ok(),
        "log": alice.call("/user/loginLog", json!({})).await.ok(),
        "list": alice.call("/conversation/list", json!({})).await.ok(),
        "unread": alice.call("/conversation/unread", json!({})).await.ok(),
        "single": alice.call("/message/history", json!({"conversationId": single})).await.ok(),
        "group": alice.call("/message/history", json!({"conversationId": group})).await.ok(),
        "info": alice.call("/group/room/info", json!({"groupId": gid})).await.ok(),
        "members": alice.call("/group/room/members", json!({"groupId": gid})).await.ok(),
    })
}

/// The victims, the outsider `eve`, the plain member `mallory`, and what they may not touch.
struct Scene {
    t: &'static str,
    alice: Api,
    alice_id: String,
    bob_id: String,
    mallory_id: String,
    eve: Api,
    eve_id: String,
    mallory: Api,
    private: Value,
    said: Value,
    gid: String,
    single: String,
    group: String,
}

async fn every_route_refuses_outsiders(backend: Backend) {
    let server = Server::start(backend).await;
    for via in ALL_VIAS {
        let mut s = scene(&server, via).await;
        let mut alice_ws = device(&server, &s.alice, Wire::Json).await;
        let before = snapshot(&mut s.alice, &s.single, &s.group, &s.gid).await;
        for (who, route, data, refusal) in attempts(&s) {
            let caller = if who == "e" { &mut s.eve } else { &mut s.mallory };
            let reply = caller.call(route, data.clone()).await;
            assert_eq!(
                reply.error.as_deref(),
                Some(refusal),
                "{via:?} {who} {route} {data}: {:?} {}",
                reply.error,
                reply.data
            );
            assert!(reply.data.is_null(), "{route} leaked {}", reply.data);
        }
        outsider_reads_nothing_private(&mut s).await;

        // Nothing changed, and the victim heard nothing.
        let after = snapshot(&mut s.alice, &s.single, &s.group, &s.gid).await;
        assert_eq!(before, after, "{via:?}: an outsider changed something");
        alice_ws.no_push().await;
    }
}

/// Alice and Bob share a private chat and an invite-only group with Mallory in it.
async fn scene(server: &Server, via: Via) -> Scene {
    let t = match via {
        Via::WsJson => "j",
        Via::WsMsgPack => "m",
        Via::Http => "h",
    };
    let (mut alice, alice_id) = user(server, Via::Http, &format!("matrix-alice-{t}")).await;
    let (mut bob, bob_id) = user(server, Via::Http, &format!("matrix-bob-{t}")).await;
    let (_, mallory_id) = user(server, Via::Http, &format!("matrix-mallory-{t}")).await;
    let (eve, eve_id) = user(server, via, &format!("matrix-eve-{t}")).await;
    let mut mallory = Api::new(server, via).await;
    mallory
        .call("/user/login", json!({"username": format!("matrix-mallory-{t}"), "password": "a long enough password"}))
        .await
        .ok();
    let private = alice
        .call("/message/send", json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "secret"}, "clientMsgId": format!("{t}-p")}))
        .await
        .ok()["message"]
        .clone();
    bob.call("/conversation/read", json!({"conversationId": private["conversationId"], "seq": 1})).await.ok();
    let gid = alice
        .call(
            "/group/room/add",
            json!({"name": "Inner circle", "members": [bob_id, mallory_id], "joinPolicy": "invite"}),
        )
        .await
        .ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let said = bob
        .call("/message/send", json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": "members only"}, "clientMsgId": format!("{t}-g")}))
        .await
        .ok()["message"]
        .clone();
    let single = private["conversationId"].as_str().unwrap().to_owned();
    let group = format!("g:{gid}");
    Scene { t, alice, alice_id, bob_id, mallory_id, eve, eve_id, mallory, private, said, gid, single, group }
}

/// (who, route, data, refusal): `e` is the outsider, `m` a plain member of the group.
fn attempts(s: &Scene) -> Vec<(&'static str, &'static str, Value, &'static str)> {
    let (t, g, single, group) = (s.t, s.gid.as_str(), &s.single, &s.group);
    let (private, said, eve_id, bob_id, mallory_id) = (&s.private, &s.said, &s.eve_id, &s.bob_id, &s.mallory_id);
    let text = |to: &str, chat: &str| json!({"chatType": chat, "to": to, "kind": "text", "content": {"text": "hi"}, "clientMsgId": format!("{t}-x-{chat}")});
    vec![
        ("e", "/message/send", text(g, "group"), "forbidden"),
        ("e", "/message/history", json!({"conversationId": single}), "not_found"),
        ("e", "/message/history", json!({"conversationId": group}), "not_found"),
        ("e", "/message/recall", json!({"messageId": private["id"]}), "not_found"),
        ("e", "/message/recall", json!({"messageId": said["id"]}), "not_found"),
        ("e", "/message/typing", json!({"conversationId": single}), "not_found"),
        ("e", "/message/typing", json!({"conversationId": group}), "not_found"),
        ("e", "/message/readers", json!({"messageId": private["id"]}), "not_found"),
        ("e", "/message/readers", json!({"messageId": said["id"]}), "not_found"),
        ("e", "/conversation/info", json!({"conversationId": single}), "not_found"),
        ("e", "/conversation/info", json!({"conversationId": group}), "not_found"),
        (
            "e",
            "/conversation/update",
            json!({"conversationId": single, "pinned": true, "muted": true, "draft": "x", "hidden": true}),
            "not_found",
        ),
        ("e", "/conversation/update", json!({"conversationId": group, "hidden": true}), "not_found"),
        ("e", "/conversation/read", json!({"conversationId": single, "seq": 1}), "not_found"),
        ("e", "/conversation/read", json!({"conversationId": group, "seq": 1}), "not_found"),
        ("e", "/group/room/info", json!({"groupId": g}), "forbidden"),
        ("e", "/group/room/members", json!({"groupId": g}), "forbidden"),
        ("e", "/group/room/join", json!({"groupId": g}), "forbidden"),
        ("e", "/group/room/quit", json!({"groupId": g}), "forbidden"),
        ("e", "/group/room/invite", json!({"groupId": g, "members": [eve_id]}), "forbidden"),
        ("e", "/group/room/kick", json!({"groupId": g, "members": [bob_id]}), "forbidden"),
        ("e", "/group/room/update", json!({"groupId": g, "name": "Mine now"}), "forbidden"),
        ("e", "/group/room/role", json!({"groupId": g, "userId": eve_id, "role": "admin"}), "forbidden"),
        ("e", "/group/room/transfer", json!({"groupId": g, "userId": eve_id}), "forbidden"),
        ("e", "/group/room/mute", json!({"groupId": g, "until": chatgate::now_ms() + 60_000}), "forbidden"),
        ("e", "/group/room/dismiss", json!({"groupId": g}), "forbidden"),
        (
            "e",
            "/user/resetPassword",
            json!({"resetToken": "0".repeat(64), "password": "a new long password"}),
            "auth.reset_token_invalid",
        ),
        ("m", "/message/recall", json!({"messageId": said["id"]}), "forbidden"),
        ("m", "/group/room/invite", json!({"groupId": g, "members": [eve_id]}), "forbidden"),
        ("m", "/group/room/kick", json!({"groupId": g, "members": [bob_id]}), "forbidden"),
        ("m", "/group/room/update", json!({"groupId": g, "notice": "mallory was here"}), "forbidden"),
        ("m", "/group/room/role", json!({"groupId": g, "userId": mallory_id, "role": "admin"}), "forbidden"),
        ("m", "/group/room/transfer", json!({"groupId": g, "userId": mallory_id}), "forbidden"),
        (
            "m",
            "/group/room/mute",
            json!({"groupId": g, "userId": bob_id, "until": chatgate::now_ms() + 60_000}),
            "forbidden",
        ),
        ("m", "/group/room/dismiss", json!({"groupId": g}), "forbidden"),
    ]
}

/// What an outsider may read tells nothing private.
async fn outsider_reads_nothing_private(s: &mut Scene) {
    let (t, g, single, group) = (s.t, s.gid.as_str(), &s.single, &s.group);
    let (eve, eve_id, alice_id) = (&mut s.eve, &s.eve_id, &s.alice_id);
    let profile = eve.call("/user/info", json!({"id": alice_id})).await.ok()["userinfo"].clone();
    assert!(profile["birthday"].is_null(), "birthday is private: {profile}");
    let own_log = eve.call("/user/loginLog", json!({})).await.ok();
    assert!(
        own_log["logs"].as_array().unwrap().iter().all(|l| l["userId"].is_null() || l["userId"] == eve_id.as_str())
    );
    let synced = eve
        .call(
            "/message/sync",
            json!({"conversations": [{"conversationId": single, "seq": 0}, {"conversationId": group, "seq": 0}]}),
        )
        .await
        .ok();
    assert_eq!(synced["conversations"], json!([]), "sync leaks nothing");
    assert_eq!(eve.call("/conversation/list", json!({})).await.ok()["conversations"], json!([]));
    assert_eq!(eve.call("/conversation/unread", json!({})).await.ok()["total"], 0);
    assert!(
        !eve.call("/group/room/list", json!({})).await.ok()["groups"].as_array().unwrap().iter().any(|x| x["id"] == g)
    );
    // Asking for a reset of someone else's password answers like any other name and lets
    // nothing through to the caller.
    let reset = eve.call("/user/changePassword", json!({"username": format!("matrix-alice-{t}")})).await.ok();
    assert!(reset.to_string().len() < 200 && !reset.to_string().contains("resetToken"), "{reset}");
}
