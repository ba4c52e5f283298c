//! S10 (issue 15 calls it S8, a number the login flood already had): a user with 1,000
//! conversations of 100 messages each. The conversation list must stay fast, and a sync must
//! cost what its news cost, not what the user's history does: against a user with 10
//! conversations and the same 10 changes pending.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::chatgate;
use crate::{Report, Sizes, ratio};

const MANY: usize = 1000;
const FEW: usize = 10;
const PER_CONVERSATION: usize = 100;
/// Sends in flight at once on the sender's socket.
const WINDOW: usize = 256;
/// Calls timed of each kind.
const CALLS: usize = 300;

pub fn s10(report: &mut Report, _z: &Sizes) {
    report.detail("\n## S10: a user with 1,000 conversations of 100 messages\n");
    let data = tempfile::tempdir().expect("S10 data dir");
    let server = chatgate(data.path(), &[]);
    let base = server.url().replace("ws://", "http://");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (list, many, few, seeded) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let api = Api { http: &http, base: &base };
        let many = api.register("s10-many").await;
        let few = api.register("s10-few").await;
        let sender = api.register("s10-sender").await;
        let mut groups = Vec::new();
        for (owner, n) in [(&many, MANY), (&few, FEW)] {
            let mut own = Vec::new();
            for i in 0..n {
                let made = api
                    .call(&owner.0, "/group/room/add", json!({"name": format!("g{i}"), "members": [sender.1]}))
                    .await;
                own.push(made["group"]["id"].as_str().expect("group id").to_owned());
            }
            groups.push(own);
        }
        let started = Instant::now();
        let all: Vec<&String> = groups.iter().flatten().collect();
        pipeline(&base, &sender.0, &all, PER_CONVERSATION, "seed").await;
        let seeded = started.elapsed();
        // Each user reads everything, so that the pending news is just what follows.
        let known_many = read_all(&api, &many.0).await;
        let known_few = read_all(&api, &few.0).await;
        let listed = |known: &Value| known.as_array().map_or(0, Vec::len);
        assert_eq!((listed(&known_many), listed(&known_few)), (MANY, FEW), "every conversation listed");
        // And each device syncs to a cursor, from which it follows every conversation at once.
        let cursor_many = catch_up(&api, &many.0).await;
        let cursor_few = catch_up(&api, &few.0).await;
        let first_page = [("limit", "100".to_owned())];
        let list = time_calls(|| api.get(&many.0, "/conversation/list", &first_page)).await;
        // The same ten changes pending for both: one message in each of ten conversations.
        let pending: Vec<&String> = groups[0].iter().take(FEW).chain(groups[1].iter()).collect();
        pipeline(&base, &sender.0, &pending, 1, "pending").await;
        let sync = |token: &str, cursor: &str| {
            let body = json!({"cursor": cursor});
            let token = token.to_owned();
            let api = &api;
            async move {
                let reply = api.call(&token, "/message/sync", body).await;
                let ids: Vec<&Value> = reply["conversations"]
                    .as_array()
                    .expect("conversations")
                    .iter()
                    .map(|c| &c["conversation"]["conversationId"])
                    .collect();
                assert_eq!(ids.len(), FEW, "ten conversations with news: {ids:?}, {}", reply["hasMore"]);
                assert_eq!(reply["hasMore"], false, "in one answer");
            }
        };
        let many_sync = time_calls(|| sync(&many.0, &cursor_many)).await;
        let few_sync = time_calls(|| sync(&few.0, &cursor_few)).await;
        (list, many_sync, few_sync, seeded)
    });
    let messages = (MANY + FEW) * PER_CONVERSATION;
    report.detail(&format!(
        "- seeded {messages} messages in {} groups over one pipelining socket in {:.1} s",
        MANY + FEW,
        seeded.as_secs_f64()
    ));
    report.detail(&format!(
        "- /conversation/list (first page of 100, 1,000 conversations, every one with unread counts), {CALLS} calls: p50 {:.2} ms, p99 {:.2} ms",
        ms(list.p50),
        ms(list.p99)
    ));
    report.detail(&format!(
        "- /message/sync by cursor with 10 conversations' news pending, {CALLS} calls each: p50 {:.2} ms with 1,000 conversations, {:.2} ms with 10",
        ms(many.p50),
        ms(few.p50)
    ));
    report.row(
        "S10",
        "1,000 conversations × 100 messages: /conversation/list p99",
        [format!("{:.2} ms", ms(list.p99)), "20 ms (target)".into(), ratio(ms(list.p99), 20.0)],
        "≤ 20 ms",
        Some(ms(list.p99) <= 20.0),
    );
    let sync_ratio = ms(many.p50) / ms(few.p50);
    report.row(
        "S10",
        "sync by cursor with 10 changes pending: 1,000 conversations against 10 (p50)",
        [format!("{:.2} ms", ms(many.p50)), format!("{:.2} ms", ms(few.p50)), format!("{sync_ratio:.2}")],
        "≤ 2",
        Some(sync_ratio <= 2.0),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A user's token and id.
type Account = (String, String);

/// HTTP calls with a bearer token.
struct Api<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
}

impl Api<'_> {
    async fn register(&self, name: &str) -> Account {
        let body = json!({"username": name, "password": "a benchmark password"});
        let reply: Value = self
            .http
            .post(format!("{}/user/register", self.base))
            .json(&body)
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("register body");
        let data = &reply["data"];
        (data["token"].as_str().expect("token").to_owned(), data["userinfo"]["id"].as_str().expect("id").to_owned())
    }

    async fn call(&self, token: &str, route: &str, body: Value) -> Value {
        self.answer(route, self.http.post(format!("{}{route}", self.base)).json(&body), token).await
    }

    async fn get(&self, token: &str, route: &str, query: &[(&str, String)]) -> Value {
        self.answer(route, self.http.get(format!("{}{route}", self.base)).query(query), token).await
    }

    async fn answer(&self, route: &str, request: reqwest::RequestBuilder, token: &str) -> Value {
        let reply: Value = request.bearer_auth(token).send().await.expect(route).json().await.expect("reply body");
        assert_eq!(reply["code"], 0, "{route}: {reply}");
        reply["data"].clone()
    }
}

/// `n` messages to each group, pipelined over one socket, `WINDOW` in flight; `phase` keeps
/// each call's idempotency keys apart.
async fn pipeline(base: &str, token: &str, groups: &[&String], n: usize, phase: &str) {
    let mut request =
        format!("{}/ws?format=json", base.replace("http://", "ws://")).into_client_request().expect("ws url");
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("ws connect");
    let sends: Vec<(usize, &String)> = (0..n).flat_map(|i| groups.iter().map(move |g| (i, *g))).collect();
    let mut next_id = 0u64;
    for window in sends.chunks(WINDOW) {
        for (i, group) in window {
            next_id += 1;
            let data = json!({"chatType": "group", "to": group, "kind": "text", "content": {"text": format!("message {i}")}, "clientMsgId": format!("s10-{phase}-{group}-{i}")});
            let frame = json!({"type": "req", "id": next_id, "route": "/message/send", "data": data});
            ws.feed(Message::Text(frame.to_string().into())).await.expect("ws send");
        }
        ws.flush().await.expect("ws flush");
        let mut answered = 0;
        while answered < window.len() {
            let Some(Ok(Message::Text(text))) = ws.next().await else { continue };
            let frame: Value = serde_json::from_str(&text).expect("frame");
            if frame["type"] == "res" {
                assert_eq!(frame["code"], 0, "{frame}");
                answered += 1;
            }
        }
    }
}

/// Marks every conversation of the user read and returns its `[{conversationId, pos}]`.
async fn read_all(api: &Api<'_>, token: &str) -> Value {
    let mut known = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100".to_owned())];
        if let Some(c) = cursor.take() {
            query.push(("cursor", c));
        }
        let page = api.get(token, "/conversation/list", &query).await;
        for c in page["conversations"].as_array().expect("conversations") {
            api.call(token, "/conversation/read", json!({"conversationId": c["conversationId"], "seq": c["lastSeq"]}))
                .await;
            known.push(json!({"conversationId": c["conversationId"], "pos": c["lastPos"]}));
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Value::Array(known),
        }
    }
}

/// Syncs by cursor from nothing to the end of the round; returns the cursor reached.
async fn catch_up(api: &Api<'_>, token: &str) -> String {
    let mut cursor = "0".to_owned();
    loop {
        let reply = api.call(token, "/message/sync", json!({"cursor": cursor})).await;
        cursor = reply["cursor"].as_str().expect("a cursor").to_owned();
        if reply["hasMore"] == false {
            return cursor;
        }
    }
}

/// Percentiles of a call's time.
struct Timing {
    p50: Duration,
    p99: Duration,
}

async fn time_calls<F, Fut, T>(mut call: F) -> Timing
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        call().await;
        times.push(started.elapsed());
    }
    times.sort();
    Timing { p50: times[CALLS / 2], p99: times[CALLS * 99 / 100] }
}
