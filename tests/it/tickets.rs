//! Long-lived tokens stay out of URLs: browsers open sockets with a single-use ticket of 30 s,
//! verifiable on any node, and a `?token=` is refused wherever it appears.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::harness::{Api, Backend, Server, Via, Wire, Ws, postgres_database, user};
use crate::on_both;

on_both!(a_ticket_opens_one_socket, tickets_die_with_their_token_and_their_time, tokens_in_urls_are_refused);

/// A fresh ticket for `api`'s token.
async fn ticket(api: &mut Api) -> String {
    api.call("/user/ticket", json!({})).await.ok()["ticket"].as_str().unwrap().to_owned()
}

/// The HTTP status and reason a refused handshake answered.
async fn refused(server: &Server, query: &str) -> (u16, String) {
    match Ws::connect(server, Wire::Json, query, None).await {
        Err(WsError::Http(response)) => {
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            (response.status().as_u16(), body["error"].as_str().unwrap_or_default().to_owned())
        }
        Err(other) => panic!("the handshake failed without an answer: {other}"),
        Ok(_) => panic!("the handshake of {query} was accepted"),
    }
}

async fn a_ticket_opens_one_socket(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "ticket-alice").await;
    let reply = alice.call("/user/ticket", json!({})).await.ok();
    let expires_in = reply["expiresAt"].as_i64().unwrap() - now_ms();
    assert!((25_000..=31_000).contains(&expires_in), "a ticket lives about 30 s, not {expires_in} ms");
    let first = reply["ticket"].as_str().unwrap().to_owned();

    let mut ws = Ws::connect(&server, Wire::MsgPack, &format!("ticket={first}"), None).await.unwrap();
    ws.push("session.ready").await;
    assert_eq!(ws.request("/user/info", json!({})).await["data"]["userinfo"]["username"], "ticket-alice");
    // Spent: the same ticket opens nothing more, and nor does a made-up one.
    assert_eq!(refused(&server, &format!("ticket={first}")).await, (401, "auth.ticket_invalid".into()));
    assert_eq!(refused(&server, &format!("ticket={}", "ab".repeat(32))).await, (401, "auth.ticket_invalid".into()));
    assert_eq!(refused(&server, "ticket=short").await, (401, "auth.ticket_invalid".into()));
    // A ticket can be asked over the socket too, for the next connection.
    let mut over_socket = user(&server, Via::WsJson, "ticket-bob").await.0;
    let next = ticket(&mut over_socket).await;
    Ws::connect(&server, Wire::Json, &format!("ticket={next}"), None).await.unwrap().push("session.ready").await;
    let anonymous = Api::new(&server, Via::Http).await.call("/user/ticket", json!({})).await;
    anonymous.fails("auth.required");
}

async fn tickets_die_with_their_token_and_their_time(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "ticket-carol").await;
    // A ticket stands for its token: logging that token out voids it.
    let orphan = ticket(&mut alice).await;
    alice.call("/user/logout", json!({})).await.ok();
    assert_eq!(refused(&server, &format!("ticket={orphan}")).await, (401, "auth.ticket_invalid".into()));
    // One past its 30 s is refused (its expiry moved back in the database, not waited for).
    let mut alice = Api::new(&server, Via::Http).await;
    alice.call("/user/login", json!({"username": "ticket-carol", "password": "a long enough password"})).await.ok();
    let stale = ticket(&mut alice).await;
    server.execute_sql("UPDATE ws_ticket SET expires_at = 1").await;
    assert_eq!(refused(&server, &format!("ticket={stale}")).await, (401, "auth.ticket_invalid".into()));
    // The session a ticket opened is its token's: a logout of that token ends it.
    let live = ticket(&mut alice).await;
    let mut ws = Ws::connect(&server, Wire::Json, &format!("ticket={live}"), None).await.unwrap();
    ws.push("session.ready").await;
    alice.call("/user/logout", json!({})).await.ok();
    assert_eq!(ws.push("session.kicked").await["data"]["reason"], "logout");
}

async fn tokens_in_urls_are_refused(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, _) = user(&server, Via::Http, "ticket-dave").await;
    let token = alice.token.clone().unwrap();
    assert_eq!(refused(&server, &format!("token={token}")).await, (400, "validation.token".into()));
    let r = reqwest::get(server.url(&format!("/user/info?token={token}"))).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "validation.token");
    // In the header, the same token works on both.
    Ws::connect(&server, Wire::Json, "", Some(&token)).await.unwrap().push("session.ready").await;
    let r = reqwest::Client::new().get(server.url("/user/info")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A ticket asked of one node opens a socket on another, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_works_on_any_node_once() {
    let url = postgres_database().await;
    let (a, b) = (Server::node(&url, &[]).await, Server::node(&url, &[]).await);
    let (mut alice, _) = user(&a, Via::Http, "ticket-erin").await;
    let minted = ticket(&mut alice).await;
    let mut ws = Ws::connect(&b, Wire::Json, &format!("ticket={minted}"), None).await.unwrap();
    ws.push("session.ready").await;
    assert_eq!(refused(&a, &format!("ticket={minted}")).await, (401, "auth.ticket_invalid".into()));
    assert_eq!(refused(&b, &format!("ticket={minted}")).await, (401, "auth.ticket_invalid".into()));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
