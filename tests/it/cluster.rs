//! Several nodes sharing one PostgreSQL database and one real Redis.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Api, Redis, Server, Via, WAIT, Wire, Ws, device, postgres_database, register_at, user};

/// A Redis and `n` nodes on one fresh database.
async fn cluster(n: usize) -> (Redis, Vec<Server>) {
    cluster_with(n, &[]).await
}

/// [`cluster`] with `extra` flags for every node.
async fn cluster_with(n: usize, extra: &[&str]) -> (Redis, Vec<Server>) {
    let redis = Redis::start().await;
    let url = postgres_database().await;
    let redis_url = redis.url();
    let mut args = vec!["--redis-url", &redis_url];
    args.extend_from_slice(extra);
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(Server::node(&url, &args).await);
    }
    (redis, nodes)
}

/// Reads pushes until one named `event` whose message has `client_msg_id` arrives.
async fn message_with(ws: &mut Ws, client_msg_id: &str) -> Value {
    loop {
        let m = ws.push("message.new").await["data"]["message"].clone();
        if m["clientMsgId"] == client_msg_id {
            return m;
        }
    }
}

/// The next `group.member` push about group `gid`.
async fn member_change(ws: &mut Ws, gid: &str) -> Value {
    loop {
        let push = ws.push("group.member").await;
        if push["data"]["groupId"] == gid {
            return push["data"].clone();
        }
    }
}

/// Every frame that arrives before the answer to a ping.
async fn until_pong(ws: &mut Ws) -> Vec<Value> {
    ws.send_value(&json!({"type": "ping"})).await;
    let mut frames = Vec::new();
    loop {
        let frame = ws.recv().await.expect("socket open");
        if frame["type"] == "pong" {
            return frames;
        }
        frames.push(frame);
    }
}

fn group_send(gid: &str, text: &str, cmid: &str) -> Value {
    json!({"chatType": "group", "to": gid, "kind": "text", "content": {"text": text}, "clientMsgId": cmid})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_different_nodes_chat_alone_and_in_groups() {
    let (redis, nodes) = cluster(3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (mut alice, alice_id) = user(a, Via::Http, "x-alice").await;
    let (mut bob, bob_id) = user(b, Via::Http, "x-bob").await;
    let (mut carol, carol_id) = user(c, Via::Http, "x-carol").await;
    let mut alice_a = device(a, &alice, Wire::Json).await;
    let mut alice_b = device(b, &alice, Wire::MsgPack).await;
    let mut bob_b = device(b, &bob, Wire::Json).await;
    let mut carol_c = device(c, &carol, Wire::MsgPack).await;
    redis.wait_subscribers(&format!("u:{bob_id}"), 1).await;
    redis.wait_subscribers(&format!("u:{alice_id}"), 2).await;

    // One-to-one across nodes: the peer, and the sender's devices everywhere.
    let sent = alice
        .call("/message/send", json!({"chatType": "single", "to": bob_id, "kind": "text", "content": {"text": "hi from A"}, "clientMsgId": "x1"}))
        .await
        .ok()["message"]
        .clone();
    for ws in [&mut bob_b, &mut alice_a, &mut alice_b] {
        assert_eq!(message_with(ws, "x1").await, sent);
    }

    // A group spread over all three nodes: one PUBLISH reaches each node once.
    let g1 = alice.call("/group/room/add", json!({"name": "Spread", "members": [bob_id, carol_id]})).await.ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    redis.wait_subscribers(&format!("g:{g1}"), 3).await;
    let from_carol = carol.call("/message/send", group_send(&g1, "hello all", "x2")).await.ok()["message"].clone();
    // Every member's device, the sender's own socket included (she sent over HTTP).
    for ws in [&mut alice_a, &mut alice_b, &mut bob_b, &mut carol_c] {
        assert_eq!(message_with(ws, "x2").await, from_carol);
    }
    // Exactly once each: nothing more of x2 arrives before a ping's pong.
    for ws in [&mut alice_a, &mut alice_b, &mut bob_b, &mut carol_c] {
        let later = until_pong(ws).await;
        assert!(!later.iter().any(|f| f["data"]["message"]["clientMsgId"] == "x2"), "x2 delivered twice: {later:?}");
    }

    // Membership moves subscriptions: carol's node joins g2's channel on invite, leaves on kick.
    let g2 = alice.call("/group/room/add", json!({"name": "Pair", "members": [bob_id]})).await.ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    redis.wait_subscribers(&format!("g:{g2}"), 2).await;
    alice.call("/group/room/invite", json!({"groupId": g2, "members": [carol_id]})).await.ok();
    let change = member_change(&mut carol_c, &g2).await;
    assert_eq!(change["action"], "invited");
    redis.wait_subscribers(&format!("g:{g2}"), 3).await;
    let from_bob = bob.call("/message/send", group_send(&g2, "welcome carol", "x3")).await.ok()["message"].clone();
    assert_eq!(message_with(&mut carol_c, "x3").await, from_bob);
    alice.call("/group/room/kick", json!({"groupId": g2, "members": [carol_id]})).await.ok();
    assert_eq!(member_change(&mut carol_c, &g2).await["action"], "kicked");
    redis.wait_subscribers(&format!("g:{g2}"), 2).await;

    // Presence across nodes.
    let online = alice.call("/user/online", json!({"ids": format!("{bob_id},{carol_id},999999")})).await.ok();
    assert_eq!(online["online"], json!({bob_id.clone(): true, carol_id.clone(): true, "999999": false}));
    drop(carol_c);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let online = alice.call("/user/online", json!({"ids": format!("{carol_id},{bob_id}")})).await.ok();
        if online["online"][&carol_id] == false {
            assert_eq!(online["online"][&bob_id], true);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "carol still online: {online}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_reset_on_one_node_kick_sessions_on_the_others() {
    let (redis, nodes) = cluster(3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (alice, alice_id) = user(a, Via::Http, "k-alice").await;
    let mut same_a = device(a, &alice, Wire::Json).await;
    let mut same_b = device(b, &alice, Wire::MsgPack).await;
    let mut other = Api::new(c, Via::WsJson).await;
    other.call("/user/login", json!({"username": "k-alice", "password": "a long enough password"})).await.ok();
    redis.wait_subscribers(&format!("u:{alice_id}"), 3).await;

    let mut on_c = Api::with_token(c, alice.token.clone().unwrap());
    on_c.call("/user/logout", json!({})).await.ok();
    for ws in [&mut same_a, &mut same_b] {
        assert_eq!(ws.push("session.kicked").await["data"]["reason"], "logout");
        assert_eq!(ws.closed().await.code, Some(4001));
    }
    assert_eq!(other.call("/user/info", json!({})).await.ok()["userinfo"]["username"], "k-alice");

    let mut anon = Api::new(a, Via::Http).await;
    anon.call("/user/changePassword", json!({"username": "k-alice"})).await.ok();
    let secret = a.outbox(1).await[0]["resetToken"].as_str().unwrap().to_owned();
    anon.call("/user/resetPassword", json!({"resetToken": secret, "password": "a brand new password"})).await.ok();
    let ws = other.ws.as_mut().unwrap();
    assert_eq!(ws.push("session.kicked").await["data"]["reason"], "password_reset");
    assert_eq!(ws.closed().await.code, Some(4001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_nothing_and_heals_itself() {
    let (mut redis, nodes) = cluster(2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (mut alice, _) = user(a, Via::Http, "o-alice").await;
    let (bob, bob_id) = user(b, Via::Http, "o-bob").await;
    let (carol, carol_id) = user(a, Via::Http, "o-carol").await;
    let mut bob_b = device(b, &bob, Wire::Json).await;
    let mut carol_a = device(a, &carol, Wire::Json).await;
    redis.wait_subscribers(&format!("u:{bob_id}"), 1).await;
    let send = |to: &str, n: usize| json!({"chatType": "single", "to": to, "kind": "text", "content": {"text": format!("m{n}")}, "clientMsgId": format!("o{to}-{n}")});

    alice.call("/message/send", send(&bob_id, 0)).await.ok();
    message_with(&mut bob_b, &format!("o{bob_id}-0")).await;

    redis.kill();
    // Requests and same-node deliveries go on; readiness says the bus is down.
    let mut acked = vec![0];
    for n in 1..=5 {
        alice.call("/message/send", send(&bob_id, n)).await.ok();
        acked.push(n);
        alice.call("/message/send", send(&carol_id, n)).await.ok();
        message_with(&mut carol_a, &format!("o{carol_id}-{n}")).await;
    }
    // What node A could not publish is given up within the Redis call bound, not held.
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.metric("chatgate_redis_publish_failures_total").await == 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "node A held its envelopes through the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A Redis outage takes no node out of the load balancer: it still stores and acknowledges.
    let ready = reqwest::get(a.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["bus"], false);
    let health: Value = reqwest::get(a.url("/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(
        (&health["status"], &health["bus"], &health["database"]),
        (&json!("degraded"), &json!(false), &json!(true))
    );
    assert_eq!(a.metric("chatgate_bus_up").await, 0.0);
    // What needs Redis answers an error in bounded time instead of hanging.
    let started = tokio::time::Instant::now();
    alice.call("/user/online", json!({"ids": bob_id})).await.fails("unavailable");
    assert!(started.elapsed() < Duration::from_secs(4), "/user/online took {:?}", started.elapsed());

    redis.restart().await;
    // The nodes reconnect and resubscribe by themselves.
    redis.wait_subscribers(&format!("u:{bob_id}"), 1).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let health: Value = reqwest::get(a.url("/healthz")).await.unwrap().json().await.unwrap();
        if health["status"] == "ok" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "node A never saw Redis again: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.metric("chatgate_bus_up").await, 1.0);
    alice.call("/message/send", send(&bob_id, 6)).await.ok();
    acked.push(6);
    message_with(&mut bob_b, &format!("o{bob_id}-6")).await;

    // Bob, who missed pushes during the outage, catches up by sync: everything, in order.
    let mut bob_api = Api::with_token(b, bob.token.clone().unwrap());
    let synced = bob_api.call("/message/sync", json!({})).await.ok();
    let conversation = synced["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation"]["peer"]["username"] == "o-alice")
        .unwrap()
        .clone();
    let texts: Vec<String> = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, acked.iter().map(|n| format!("m{n}")).collect::<Vec<_>>());
    let seqs: Vec<i64> =
        conversation["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());

    let metrics = reqwest::get(a.url("/metrics")).await.unwrap().text().await.unwrap();
    let reconnects: f64 = metrics
        .lines()
        .find(|l| l.starts_with("chatgate_redis_reconnects_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(reconnects >= 1.0, "{metrics}");
    for name in [
        "chatgate_sessions",
        "chatgate_frames_in_total",
        "chatgate_deliveries_total",
        "chatgate_redis_publish_failures_total",
        "chatgate_request_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
}

/// A logout whose kick is published while Redis is down never reaches the other node's bus;
/// that node's revalidation (here every 2 s) still ends the session within its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_lost_in_a_redis_outage_still_takes_effect() {
    let (mut redis, nodes) = cluster_with(2, &["--revalidate-secs", "2"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (token, _) = register_at(&a.url(""), "lost-kick").await;
    let mut on_b = Ws::connect(b, Wire::Json, "", Some(&token)).await.unwrap();
    on_b.push("session.ready").await;

    redis.kill();
    Api::with_token(a, token.clone()).call("/user/logout", json!({})).await.ok();
    let started = tokio::time::Instant::now();
    let closed = on_b.closed().await;
    assert_eq!(closed.code, Some(4001), "{closed:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "closed after {:?}", started.elapsed());
    redis.restart().await;
}

/// Membership changes published while Redis is down never reach the other node's bus; that
/// node's revalidation corrects its view: a member kicked meanwhile stops receiving the
/// group's pushes, and one invited meanwhile starts, without reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_lost_in_a_redis_outage_still_take_effect() {
    let (mut redis, nodes) = cluster_with(2, &["--revalidate-secs", "2"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (mut owner, _) = user(a, Via::Http, "lost-owner").await;
    let (kicked, kicked_id) = user(b, Via::Http, "lost-kicked").await;
    let (invited, invited_id) = user(b, Via::Http, "lost-invited").await;
    let group = owner.call("/group/room/add", json!({"name": "Outage", "members": [kicked_id]})).await.ok();
    let gid = group["group"]["id"].as_str().unwrap().to_owned();
    let mut kicked_b = device(b, &kicked, Wire::Json).await;
    let mut invited_b = device(b, &invited, Wire::Json).await;
    redis.wait_subscribers(&format!("g:{gid}"), 1).await;
    owner.call("/message/send", group_send(&gid, "before", "before")).await.ok();
    message_with(&mut kicked_b, "before").await;

    redis.kill();
    let failures = a.metric("chatgate_redis_publish_failures_total").await;
    owner.call("/group/room/kick", json!({"groupId": gid, "members": [kicked_id]})).await.ok();
    owner.call("/group/room/invite", json!({"groupId": gid, "members": [invited_id]})).await.ok();
    // Node A gave the envelopes of both changes up: node B can only learn them from the store.
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.metric("chatgate_redis_publish_failures_total").await <= failures {
        assert!(tokio::time::Instant::now() < deadline, "node A never gave up an envelope");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis.restart().await;
    let revalidated = b.metric("chatgate_revalidations_total").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while b.metric("chatgate_revalidations_total").await < revalidated + 2.0 {
        assert!(tokio::time::Instant::now() < deadline, "node B stopped revalidating");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis.wait_subscribers(&format!("u:{kicked_id}"), 1).await;

    // The invited member gets the group's next message; the kicked one gets only the direct
    // message sent after it, which would come after the group's if it had been delivered.
    owner.call("/message/send", group_send(&gid, "after", "after")).await.ok();
    message_with(&mut invited_b, "after").await;
    let direct = json!({"chatType": "single", "to": kicked_id, "kind": "text", "content": {"text": "direct"}, "clientMsgId": "direct"});
    owner.call("/message/send", direct).await.ok();
    loop {
        let m = kicked_b.push("message.new").await["data"]["message"].clone();
        assert_ne!(m["clientMsgId"], "after", "a member kicked during the outage still got the group's message");
        if m["clientMsgId"] == "direct" {
            break;
        }
    }
}
