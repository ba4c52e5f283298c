//! The HTTP mirror: statuses, methods, token placement, MessagePack bodies.

use serde_json::{Value, json};

use crate::harness::{Backend, Server};
use crate::on_both;

on_both!(statuses_and_methods);

async fn statuses_and_methods(backend: Backend) {
    let server = Server::start(backend).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(server.url(path)).json(&body).send();

    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let r = post("/user/register", json!({"username": "gina", "password": "gina's password"})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 0);
    assert!(body.get("type").is_none() && body.get("id").is_none() && body.get("error").is_none());
    let token = body["data"]["token"].as_str().unwrap().to_owned();

    refusals_carry_their_status(&server, &token).await;

    // The design's `token` parameter is not taken: in the query it is refused (tokens stay
    // out of URLs), and in a body it authenticates nobody. Only the header does.
    let r = http.get(server.url("/user/info")).query(&[("token", &token)]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "validation.token");
    let r = post("/user/info", json!({"token": token, "userinfo": {"nickname": "G"}})).await.unwrap();
    assert_eq!(r.status(), 401);
    let update = http.post(server.url("/user/info")).bearer_auth(&token).json(&json!({"userinfo": {"nickname": "G"}}));
    let r = crate::harness::json_reply(update).await;
    assert_eq!(r["data"]["userinfo"]["nickname"], "G");

    // MessagePack in, MessagePack out.
    let packed = rmp_serde::to_vec_named(&json!({"username": "gina", "password": "gina's password"})).unwrap();
    let r = http
        .post(server.url("/user/login"))
        .header("content-type", "application/msgpack")
        .body(packed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/msgpack");
    let body: Value = rmp_serde::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["data"]["userinfo"]["username"], "gina");

    // A body over the frame limit is refused without harm.
    let huge = json!({"username": "x".repeat(70_000), "password": "y"});
    let r = post("/user/login", huge).await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(reqwest::get(server.url("/healthz")).await.unwrap().status(), 200);
}

/// Each refusal has its HTTP status and its stable reason.
async fn refusals_carry_their_status(server: &Server, token: &str) {
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(server.url(path)).json(&body).send();
    let status = |r: reqwest::Response| async move {
        let s = r.status().as_u16();
        let b: Value = r.json().await.unwrap();
        (s, b["error"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(
        status(post("/user/register", json!({"username": "gina", "password": "gina's password"})).await.unwrap()).await,
        (409, "user.exists".into())
    );
    assert_eq!(
        status(post("/user/register", json!({"username": "g", "password": "gina's password"})).await.unwrap()).await,
        (400, "validation.username".into())
    );
    assert_eq!(
        status(post("/user/login", json!({"username": "gina", "password": "nope nope"})).await.unwrap()).await,
        (401, "auth.invalid_credentials".into())
    );
    assert_eq!(status(http.get(server.url("/user/info")).send().await.unwrap()).await, (401, "auth.required".into()));
    assert_eq!(
        status(http.get(server.url("/user/info")).bearer_auth("x.y.z").send().await.unwrap()).await,
        (401, "auth.token_invalid".into())
    );
    assert_eq!(
        status(http.get(server.url("/user/info")).query(&[("id", "999999")]).bearer_auth(token).send().await.unwrap())
            .await,
        (404, "not_found".into())
    );
    assert_eq!(status(post("/no/such", json!({})).await.unwrap()).await, (404, "route.unknown".into()));
    assert_eq!(status(http.get(server.url("/user/login")).send().await.unwrap()).await, (405, "route.method".into()));
    assert_eq!(status(http.delete(server.url("/user/info")).send().await.unwrap()).await, (405, "route.method".into()));
    assert_eq!(
        status(post("/user/auth", json!({"token": token})).await.unwrap()).await,
        (400, "route.socket_only".into())
    );
    let bad = http
        .post(server.url("/user/login"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(status(bad).await, (400, "frame.malformed".into()));
    let not_object = http.post(server.url("/user/login")).body("[1]").send().await.unwrap();
    assert_eq!(status(not_object).await, (400, "frame.malformed".into()));
}

/// The web client and the SDK come from the binary itself, with their types and the page's
/// content security policy; the SDK served is the one in sdk/js.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_and_sdk_are_served() {
    let server = Server::start(Backend::Sqlite).await;
    for (path, kind, file) in [
        ("/", "text/html", "web/index.html"),
        ("/app.js", "text/javascript", "web/app.js"),
        ("/actions.js", "text/javascript", "web/actions.js"),
        ("/compose.js", "text/javascript", "web/compose.js"),
        ("/messages.js", "text/javascript", "web/messages.js"),
        ("/mention.js", "text/javascript", "web/mention.js"),
        ("/notify.js", "text/javascript", "web/notify.js"),
        ("/upload.js", "text/javascript", "web/upload.js"),
        ("/outbox.js", "text/javascript", "web/outbox.js"),
        ("/text.js", "text/javascript", "web/text.js"),
        ("/dialogs.js", "text/javascript", "web/dialogs.js"),
        ("/style.css", "text/css", "web/style.css"),
        ("/reset-password", "text/html", "web/reset.html"),
        ("/reset.js", "text/javascript", "web/reset.js"),
        ("/sdk/chatgate.js", "text/javascript", "sdk/js/chatgate.js"),
        ("/sdk/content.js", "text/javascript", "sdk/js/content.js"),
        ("/sdk/msgpack.js", "text/javascript", "sdk/js/msgpack.js"),
        ("/sdk/chatgate.d.ts", "text/plain", "sdk/js/chatgate.d.ts"),
    ] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        if path == "/" || path == "/reset-password" {
            let policy = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
            assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
        }
        let on_disk = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + file).unwrap();
        assert_eq!(r.text().await.unwrap(), on_disk, "{path}");
    }
}
