//! No ghost sessions: a session that closes at any point, even while its login is in flight,
//! leaves nothing in the registry, and each user's online and offline transitions are
//! announced exactly once, however their devices race.

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;

use crate::harness::{Api, Backend, Server, Via, Wire, Ws, user};
use crate::on_both;

on_both!(
    logins_cut_off_mid_flight_leave_no_session,
    two_devices_racing_leave_exact_presence,
    unreadable_groups_end_the_session_loudly,
    sessions_racing_a_reset_do_not_survive_it
);

/// Within how long a dropped session must have left the registry and the presence.
const SETTLE: Duration = Duration::from_secs(2);

/// Waits, up to [`SETTLE`], for no session to be left and every user in `ids` to be offline.
async fn wait_all_gone(server: &Server, asker: &mut Api, ids: &[String]) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let sessions = server.metric("chatgate_sessions").await;
        let online = asker.call("/user/online", json!({"ids": ids.join(",")})).await.ok();
        let any_online = online["online"].as_object().unwrap().values().any(|v| v == true);
        if sessions == 0.0 && !any_online {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sessions} sessions left; online: {online}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn logins_cut_off_mid_flight_leave_no_session(backend: Backend) {
    let server = Server::start(backend).await;
    let mut users = Vec::new();
    for i in 0..25 {
        let (api, id) = user(&server, Via::Http, &format!("ghost-{i}")).await;
        users.push((api.token.clone().unwrap(), id));
    }
    // 500 sockets send `/user/auth` and drop the connection before the reply, 50 at a time.
    for round in 0..10 {
        let aborts = (0..50).map(|i| {
            let (token, _) = users[(round * 50 + i) % users.len()].clone();
            let server = &server;
            async move {
                let mut ws = Ws::open(server, Wire::Json).await;
                ws.send_value(&json!({"type": "req", "id": 1, "route": "/user/auth", "data": {"token": token}})).await;
                drop(ws);
            }
        });
        join_all(aborts).await;
    }
    let ids: Vec<String> = users.iter().map(|(_, id)| id.clone()).collect();
    let (mut asker, _) = user(&server, Via::Http, "ghost-asker").await;
    wait_all_gone(&server, &mut asker, &ids).await;
    let online = server.metric(r#"chatgate_presence_changes_total{state="online"}"#).await;
    let offline = server.metric(r#"chatgate_presence_changes_total{state="offline"}"#).await;
    assert_eq!(online, offline, "every user that came online went offline again, once");
}

async fn two_devices_racing_leave_exact_presence(backend: Backend) {
    let server = Server::start(backend).await;
    let (api, id) = user(&server, Via::Http, "racer").await;
    let (mut asker, _) = user(&server, Via::Http, "race-asker").await;
    let token = api.token.clone().unwrap();
    let ids = [id.clone()];
    for pair in 0..100 {
        let connect = || Ws::connect(&server, Wire::MsgPack, "", Some(&token));
        let (a, b) = tokio::join!(connect(), connect());
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        let (ready_a, ready_b) = tokio::join!(a.push("session.ready"), b.push("session.ready"));
        assert_eq!((&ready_a["data"]["userId"], &ready_b["data"]["userId"]), (&json!(id), &json!(id)));
        let online = asker.call("/user/online", json!({"ids": ids.join(",")})).await.ok();
        assert_eq!(online["online"][&id], true, "pair {pair}: {online}");
        drop((a, b));
        wait_all_gone(&server, &mut asker, &ids).await;
    }
    let online = server.metric(r#"chatgate_presence_changes_total{state="online"}"#).await;
    let offline = server.metric(r#"chatgate_presence_changes_total{state="offline"}"#).await;
    assert_eq!((online, offline), (100.0, 100.0), "one transition each way per pair");
}

/// A session whose user's groups cannot be read would miss every group push while claiming to
/// be ready: it is ended with 1011 instead (and `/user/auth` answers `unavailable`), so that the
/// client reconnects and syncs.
async fn unreadable_groups_end_the_session_loudly(backend: Backend) {
    let server = Server::start(backend).await;
    let (api, _) = user(&server, Via::Http, "unreadable").await;
    let token = api.token.clone().unwrap();
    server.execute_sql("ALTER TABLE group_member RENAME TO group_member_away").await;

    let mut ws = Ws::connect(&server, Wire::Json, "", Some(&token)).await.unwrap();
    assert_eq!(ws.closed().await.code, Some(1011));
    let mut ws = Ws::open(&server, Wire::MsgPack).await;
    let reply = ws.request("/user/auth", json!({"token": token})).await;
    assert_eq!(reply["error"], "unavailable", "{reply}");
    assert_eq!(ws.closed().await.code, Some(1011));

    server.execute_sql("ALTER TABLE group_member_away RENAME TO group_member").await;
    let mut ws = Ws::connect(&server, Wire::Json, "", Some(&token)).await.unwrap();
    ws.push("session.ready").await;
    assert_eq!(server.metric("chatgate_sessions").await, 1.0);
}

/// 300 sockets authenticate with a token while its user's password is reset: each is refused,
/// or closed with 4001, however its authentication and the reset's kick interleave.
async fn sessions_racing_a_reset_do_not_survive_it(backend: Backend) {
    let server = Server::start(backend).await;
    let (api, _) = user(&server, Via::Http, "race-reset").await;
    let token = api.token.clone().unwrap();
    let mut anyone = Api::new(&server, Via::Http).await;
    anyone.call("/user/changePassword", json!({"username": "race-reset"})).await.ok();
    let secret = server.outbox(1).await[0]["resetToken"].as_str().unwrap().to_owned();

    let connects = (0..300u64).map(|i| {
        let (server, token) = (&server, &token);
        async move {
            // Spread over 90 ms; the reset lands about a sixth of the way in.
            tokio::time::sleep(Duration::from_micros(i * 300)).await;
            Ws::connect(server, Wire::Json, "", Some(token)).await.ok()
        }
    });
    let reset = async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let data = json!({"resetToken": secret, "password": "the password after"});
        Api::new(&server, Via::Http).await.call("/user/resetPassword", data).await.ok();
    };
    let (sockets, ()) = tokio::join!(join_all(connects), reset);
    let opened = sockets.iter().filter(|s| s.is_some()).count();
    for mut ws in sockets.into_iter().flatten() {
        assert_eq!(ws.closed().await.code, Some(4001), "a session on the old token survived the reset");
    }
    let deadline = tokio::time::Instant::now() + SETTLE;
    while server.metric("chatgate_sessions").await != 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "{opened} opened; sessions are left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
