//! Files stay out of reach of those they were not shared with: a download is authorized by the
//! caller's right to read the file, or by a short-lived signed link; never by a token in a URL.

use serde_json::{Value, json};

use crate::harness::{Api, Backend, Server, Via, upload_at, user};
use crate::on_both;

on_both!(
    files_are_read_by_those_they_were_shared_with,
    signed_links_open_one_file_until_they_expire,
    avatars_are_readable_by_everyone,
    files_are_served_sandboxed,
    a_forward_carries_its_origin_and_its_files
);

const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 1, 2, 3];

/// Uploads `bytes` as `api`'s user; answers the upload's data.
async fn upload(server: &Server, api: &Api, bytes: &[u8]) -> Value {
    let reply = upload_at(&server.url(""), api.token.as_ref().unwrap(), bytes.to_vec()).await;
    assert_eq!(reply["code"], 0, "{reply}");
    reply["data"].clone()
}

/// The status of fetching `path` with `token` in `Authorization`, or with none.
async fn status(server: &Server, path: &str, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

fn image(chat: &str, to: &str, url: &str, key: &str) -> Value {
    json!({"chatType": chat, "to": to, "kind": "image", "clientMsgId": key,
           "content": {"url": url, "width": 1, "height": 1, "size": PNG.len(), "mime": "image/png"}})
}

async fn files_are_read_by_those_they_were_shared_with(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "share-alice").await;
    let (mut bob, bob_id) = user(&server, Via::WsJson, "share-bob").await;
    let (mut carol, carol_id) = user(&server, Via::Http, "share-carol").await;
    let (mut dave, _) = user(&server, Via::Http, "share-dave").await;
    let up = upload(&server, &alice, PNG).await;
    let (file_id, url) = (up["fileId"].clone(), up["url"].as_str().unwrap().to_owned());
    let ask = json!({"fileId": file_id});

    // Nobody but the uploader may read it yet, and an outsider can't share it either.
    alice.call("/file/link", ask.clone()).await.ok();
    bob.call("/file/link", ask.clone()).await.fails("not_found");
    assert_eq!(status(&server, &url, carol.token.as_deref()).await, 404);
    carol.call("/message/send", image("single", &bob_id, &url, "steal")).await.fails("validation.url");
    let forged = format!("/file/{}", "0".repeat(32));
    alice.call("/message/send", image("single", &bob_id, &forged, "forged")).await.fails("validation.url");
    alice.call("/message/send", image("single", &bob_id, "/file/not-a-file-id", "odd")).await.fails("validation.url");

    // Sent to Bob, it is his to read (by header and by link), and his to pass on; Carol's only
    // once he has.
    alice.call("/message/send", image("single", &bob_id, &url, "to-bob")).await.ok();
    let bobs = bob.call("/file/link", ask.clone()).await.ok();
    assert_eq!(status(&server, bobs["url"].as_str().unwrap(), None).await, 200);
    carol.call("/file/link", ask.clone()).await.fails("not_found");
    bob.call("/message/send", image("single", &carol_id, &url, "bob-to-carol")).await.ok();
    assert_eq!(status(&server, &url, carol.token.as_deref()).await, 200);

    // In a group, members read it; one who leaves no longer can; Dave, never a member, never.
    let group = alice.call("/group/room/add", json!({"name": "Pics", "members": [carol_id]})).await.ok();
    let gid = group["group"]["id"].as_str().unwrap().to_owned();
    let second = upload(&server, &alice, &[PNG, b"second"].concat()).await;
    let second_url = second["url"].as_str().unwrap().to_owned();
    alice.call("/message/send", image("group", &gid, &second_url, "to-group")).await.ok();
    let carol_link = carol.call("/file/link", json!({"fileId": second["fileId"]})).await.ok();
    assert_eq!(status(&server, &second_url, carol.token.as_deref()).await, 200);
    dave.call("/file/link", json!({"fileId": second["fileId"]})).await.fails("not_found");
    assert_eq!(status(&server, &second_url, dave.token.as_deref()).await, 404);
    carol.call("/group/room/quit", json!({"groupId": gid})).await.ok();
    carol.call("/file/link", json!({"fileId": second["fileId"]})).await.fails("not_found");
    assert_eq!(status(&server, &second_url, carol.token.as_deref()).await, 404);
    // A link minted while she was a member is a capability until it expires, as documented.
    assert_eq!(status(&server, carol_link["url"].as_str().unwrap(), None).await, 200);
}

async fn signed_links_open_one_file_until_they_expire(backend: Backend) {
    // Links of 3 s at most, so that expiry comes within the test.
    let server = Server::start_with(backend, &["--file-link-secs", "3"]).await;
    let (alice, _) = user(&server, Via::Http, "links-alice").await;
    let first = upload(&server, &alice, PNG).await;
    let second = upload(&server, &alice, &[PNG, b"2"].concat()).await;
    let link = first["link"].as_str().unwrap().to_owned();
    assert!(link.starts_with(first["url"].as_str().unwrap()) && !link.contains("token"), "{link}");
    assert_eq!(status(&server, &link, None).await, 200);

    // Bound to its file and its expiry; a token in the URL is refused, not used.
    let (_, query) = link.split_once('?').unwrap();
    let other_file = format!("{}?{query}", second["url"].as_str().unwrap());
    assert_eq!(status(&server, &other_file, None).await, 403);
    let exp: i64 = query.split('&').next().unwrap().trim_start_matches("exp=").parse().unwrap();
    let later = link.replace(&format!("exp={exp}"), &format!("exp={}", exp + 60));
    assert_eq!(status(&server, &later, None).await, 403);
    let unsigned = format!("{}?exp={exp}", first["url"].as_str().unwrap());
    assert_eq!(status(&server, &unsigned, None).await, 403);
    let with_token = format!("{}?token={}", first["url"].as_str().unwrap(), alice.token.as_deref().unwrap());
    let r = reqwest::get(server.url(&with_token)).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "validation.token");
    let body: Value = reqwest::get(server.url(&later)).await.unwrap().json().await.unwrap();
    assert_eq!(body["error"], "file.link_invalid");

    // It stops working at its expiry (at most 3 s from now); a new one works again.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(6);
    while status(&server, &link, None).await == 200 {
        assert!(tokio::time::Instant::now() < deadline, "the link outlived its expiry");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status(&server, &link, None).await, 403);
    let mut alice = alice;
    let fresh = alice.call("/file/link", json!({"fileId": first["fileId"]})).await.ok();
    assert_eq!(status(&server, fresh["url"].as_str().unwrap(), None).await, 200);
}

async fn avatars_are_readable_by_everyone(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "avatar-alice").await;
    let (mut bob, _) = user(&server, Via::Http, "avatar-bob").await;
    let mine = upload(&server, &alice, PNG).await;
    let url = mine["url"].as_str().unwrap().to_owned();
    // Bob can't make Alice's file his avatar (and so public); Alice can.
    bob.call("/user/info", json!({"userinfo": {"avatar": url}})).await.fails("validation.avatar");
    assert_eq!(status(&server, &url, bob.token.as_deref()).await, 404);
    alice.call("/user/info", json!({"userinfo": {"avatar": url}})).await.ok();
    assert_eq!(status(&server, &url, bob.token.as_deref()).await, 200);
    bob.call("/file/link", json!({"fileId": mine["fileId"]})).await.ok();
    // A group's avatar too.
    let cover = upload(&server, &alice, &[PNG, b"cover"].concat()).await;
    let group = json!({"name": "Covers", "avatar": cover["url"]});
    bob.call("/group/room/add", group.clone()).await.fails("validation.avatar");
    alice.call("/group/room/add", group).await.ok();
    assert_eq!(status(&server, cover["url"].as_str().unwrap(), bob.token.as_deref()).await, 200);
}

async fn files_are_served_sandboxed(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, _) = user(&server, Via::Http, "sandbox-alice").await;
    let page = upload(&server, &alice, b"<html><script>alert(document.cookie)</script></html>").await;
    let picture = upload(&server, &alice, PNG).await;
    for (up, disposition) in [(&page, Some("attachment")), (&picture, None)] {
        let r = reqwest::get(server.url(up["link"].as_str().unwrap())).await.unwrap();
        assert_eq!(r.status(), 200);
        let headers = r.headers();
        assert_eq!(headers["content-security-policy"], "sandbox");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers.get("content-disposition").map(|v| v.to_str().unwrap()), disposition, "{up}");
    }
}

async fn a_forward_carries_its_origin_and_its_files(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, alice_id) = user(&server, Via::Http, "fwd-alice").await;
    let (mut bob, bob_id) = user(&server, Via::Http, "fwd-bob").await;
    let (carol, carol_id) = user(&server, Via::Http, "fwd-carol").await;
    let up = upload(&server, &alice, PNG).await;
    let url = up["url"].as_str().unwrap().to_owned();
    let sent = alice.call("/message/send", image("single", &bob_id, &url, "fwd-1")).await.ok()["message"].clone();
    let group = bob.call("/group/room/add", json!({"name": "Forwards", "members": [carol_id]})).await.ok();
    let group_id = group["group"]["id"].as_str().unwrap().to_owned();
    let carol_token = carol.token.clone().unwrap();
    assert_eq!(status(&server, &url, Some(&carol_token)).await, 404, "not shared with Carol yet");

    let forward =
        |key: &str, from: &Value| json!({"chatType": "group", "to": group_id, "forwardFrom": from, "clientMsgId": key});
    let fwd = bob.call("/message/send", forward("fwd-2", &sent["id"])).await.ok()["message"].clone();
    assert_eq!((&fwd["kind"], &fwd["content"]["url"]), (&json!("image"), &json!(url)));
    assert_eq!(fwd["content"]["forwardedFrom"], json!({"messageId": sent["id"], "from": alice_id}));
    assert_eq!(status(&server, &url, Some(&carol_token)).await, 200, "forwarding shares the file with the group");
    // A forward of a forward names the first message.
    let again = bob
        .call(
            "/message/send",
            json!({"chatType": "single", "to": alice_id, "forwardFrom": fwd["id"], "clientMsgId": "fwd-3"}),
        )
        .await
        .ok();
    assert_eq!(again["message"]["content"]["forwardedFrom"]["messageId"], sent["id"]);

    // Only from a conversation the caller is in, and either forwardFrom or content.
    let (mut eve, _) = user(&server, Via::Http, "fwd-eve").await;
    eve.call(
        "/message/send",
        json!({"chatType": "single", "to": bob_id, "forwardFrom": sent["id"], "clientMsgId": "fwd-4"}),
    )
    .await
    .fails("not_found");
    let both = json!({"chatType": "group", "to": group_id, "kind": "text", "content": {"text": "x"}, "forwardFrom": sent["id"], "clientMsgId": "fwd-5"});
    bob.call("/message/send", both).await.fails("validation.forwardFrom");
    alice.call("/message/recall", json!({"messageId": sent["id"]})).await.ok();
    bob.call("/message/send", forward("fwd-6", &sent["id"])).await.fails("validation.forwardFrom");
}
