//! The user routes, over the socket in JSON and MessagePack and over HTTP.

use serde_json::{Value, json};

use crate::harness::{ALL_VIAS, Api, Backend, Server, Via, Wire, Ws};
use crate::on_both;

on_both!(
    account_journey,
    reset_and_logout_revoke_tokens,
    profile_validation,
    login_log_pages,
    socket_revocation_kicks_sessions,
    usernames_ignore_case
);

/// Register, log in, read and change profiles, over every transport.
async fn account_journey(backend: Backend) {
    let server = Server::start(backend).await;
    for via in ALL_VIAS {
        let tag = format!("{via:?}").to_lowercase();
        let (alice_name, bob_name) = (format!("alice-{tag}"), format!("bob_{tag}"));
        let mut alice = Api::new(&server, via).await;

        let me = alice.register(&alice_name, "correct horse").await;
        assert_eq!(me["username"], alice_name.as_str());
        assert!(me["id"].is_string(), "ids are strings: {me}");
        assert_eq!(me["gender"], "unknown");
        assert!(me["createdAt"].as_i64().unwrap() > 1_600_000_000_000);

        let again = alice.call("/user/register", json!({"username": alice_name, "password": "another pass"})).await;
        again.fails("user.exists");
        if via == Via::Http {
            assert_eq!(again.status, Some(409));
        }

        let mut anon = Api::new(&server, via).await;
        let wrong = anon.call("/user/login", json!({"username": alice_name, "password": "wrong horse"})).await;
        wrong.fails("auth.invalid_credentials");
        let unknown = anon.call("/user/login", json!({"username": "nobody-here", "password": "wrong horse"})).await;
        unknown.fails("auth.invalid_credentials");
        anon.call("/user/info", json!({})).await.fails("auth.required");

        let login = anon.call("/user/login", json!({"username": alice_name, "password": "correct horse"})).await.ok();
        assert!(login["token"].as_str().unwrap().len() > 20);
        assert_eq!(login["userinfo"]["id"], me["id"]);

        let info = alice.call("/user/info", json!({})).await.ok();
        assert_eq!(info["userinfo"], me);

        let changed = alice
            .call(
                "/user/info",
                json!({"userinfo": {"nickname": "  Alice  ", "avatar": "https://example.test/a.png", "gender": "female",
                                     "birthday": "1990-05-17", "age": 36, "signature": "hi"}}),
            )
            .await
            .ok();
        let u = &changed["userinfo"];
        assert_eq!(
            (u["nickname"].as_str(), u["gender"].as_str(), u["birthday"].as_str()),
            (Some("Alice"), Some("female"), Some("1990-05-17"))
        );
        assert_eq!(u["age"], 36);
        // A client may send back the userinfo it was given; read-only fields are accepted unchanged.
        let mut echoed = u.clone();
        echoed["signature"] = json!("still me");
        let echoed = alice.call("/user/info", json!({"userinfo": echoed})).await.ok();
        assert_eq!(echoed["userinfo"]["signature"], "still me");
        assert_eq!(echoed["userinfo"]["nickname"], "Alice");
        // Clearing optional fields with null.
        let cleared = alice.call("/user/info", json!({"userinfo": {"age": null}})).await.ok();
        assert!(cleared["userinfo"]["age"].is_null());
        assert_eq!(cleared["userinfo"]["birthday"], "1990-05-17");

        let mut bob = Api::new(&server, via).await;
        bob.register(&bob_name, "bobs password").await;
        let seen = bob.call("/user/info", json!({"id": me["id"]})).await.ok();
        assert_eq!(seen["userinfo"]["nickname"], "Alice");
        assert!(seen["userinfo"]["birthday"].is_null(), "birthday is private: {seen}");
        let by_name = bob.call("/user/info", json!({"username": alice_name})).await.ok();
        assert_eq!(by_name["userinfo"]["id"], me["id"]);
        bob.call("/user/info", json!({"id": "987654321"})).await.fails("not_found");
        bob.call("/user/info", json!({"username": "no-such-user"})).await.fails("not_found");
        bob.call("/user/info", json!({"id": "not-a-number"})).await.fails("validation.id");
    }
}

/// A reset spends its secret once, ends old tokens, and logout ends one token.
async fn reset_and_logout_revoke_tokens(backend: Backend) {
    let server = Server::start(backend).await;
    let mut resets = 0;
    for via in ALL_VIAS {
        let name = format!("carol-{}", format!("{via:?}").to_lowercase());
        let mut carol = Api::new(&server, Via::Http).await;
        carol.register(&name, "first password").await;
        let old_token = carol.token.clone().unwrap();

        let mut anon = Api::new(&server, via).await;
        let cb = anon.call("/user/changePassword", json!({"username": name})).await.ok();
        let unknown = anon.call("/user/changePassword", json!({"username": "ghost-user"})).await.ok();
        assert_eq!(cb, unknown, "the answer must not reveal whether the user exists");
        assert!(cb["callback"].as_str().unwrap().ends_with("/user/resetPassword"));
        assert!(!cb.to_string().contains("token"), "the secret never goes to the caller");
        resets += 1;

        let outbox = server.outbox(resets).await;
        let notice = outbox.iter().rev().find(|n| n["username"] == name.as_str()).expect("notice for this user");
        assert_eq!(notice["kind"], "password_reset");
        let secret = notice["resetToken"].as_str().unwrap();
        assert!(secret.len() >= 32, "at least 128 bits");
        assert!(notice["resetUrl"].as_str().unwrap().contains(secret));
        assert!(notice["expiresAt"].as_i64().unwrap() > chatgate::now_ms() + 29 * 60 * 1000);

        anon.call("/user/resetPassword", json!({"resetToken": "0".repeat(64), "password": "second password"}))
            .await
            .fails("auth.reset_token_invalid");
        anon.call("/user/resetPassword", json!({"resetToken": secret, "password": "short"}))
            .await
            .fails("validation.password");
        anon.call("/user/resetPassword", json!({"resetToken": secret, "password": "second password"})).await.ok();
        anon.call("/user/resetPassword", json!({"resetToken": secret, "password": "third password"}))
            .await
            .fails("auth.reset_token_invalid");

        // The old token is dead everywhere; the old password too.
        carol.call("/user/info", json!({})).await.fails("auth.token_invalid");
        assert!(Ws::connect(&server, Wire::Json, "", Some(&old_token)).await.is_err());
        let mut again = Api::new(&server, via).await;
        again
            .call("/user/login", json!({"username": name, "password": "first password"}))
            .await
            .fails("auth.invalid_credentials");
        again.call("/user/login", json!({"username": name, "password": "second password"})).await.ok();

        // Logout ends this token only.
        let mut other_device = Api::new(&server, Via::Http).await;
        other_device.call("/user/login", json!({"username": name, "password": "second password"})).await.ok();
        again.call("/user/logout", json!({})).await.ok();
        if via == Via::Http {
            again.call("/user/info", json!({})).await.fails("auth.token_invalid");
        }
        let dead = again.token.clone().unwrap();
        let mut probe = Api::new(&server, Via::Http).await;
        probe.token = Some(dead);
        probe.call("/user/info", json!({})).await.fails("auth.token_invalid");
        assert_eq!(other_device.call("/user/info", json!({})).await.ok()["userinfo"]["username"], name.as_str());
    }
}

/// Every profile field refuses bad values with a typed error naming it.
async fn profile_validation(backend: Backend) {
    let server = Server::start(backend).await;
    for via in ALL_VIAS {
        let mut dave = Api::new(&server, via).await;
        dave.register(&format!("dave-{}", format!("{via:?}").to_lowercase()), "dave's password").await;
        let cases: Vec<(Value, &str)> = vec![
            (json!({"nickname": "x".repeat(65)}), "validation.nickname"),
            (json!({"nickname": "bad\u{0}name"}), "validation.nickname"),
            (json!({"nickname": 5}), "validation.nickname"),
            (json!({"signature": "line\nbreak"}), "validation.signature"),
            (json!({"signature": "s".repeat(257)}), "validation.signature"),
            (json!({"avatar": "javascript:alert(1)"}), "validation.avatar"),
            (json!({"gender": "robot"}), "validation.gender"),
            (json!({"birthday": "2001-02-29"}), "validation.birthday"),
            (json!({"birthday": "yesterday"}), "validation.birthday"),
            (json!({"age": 151}), "validation.age"),
            (json!({"age": "ten"}), "validation.age"),
            (json!({"username": "someone-else"}), "validation.username"),
            (json!({"password": "new password"}), "validation.password"),
            (json!({"favouriteColour": "blue"}), "validation.favouriteColour"),
        ];
        for (patch, reason) in cases {
            let reply = dave.call("/user/info", json!({"userinfo": patch})).await;
            reply.fails(reason);
            if via == Via::Http {
                assert_eq!(reply.status, Some(400), "{patch}");
            }
        }
        let bad_registrations: Vec<(Value, &str)> = vec![
            (json!({"username": "", "password": "long enough"}), "validation.username"),
            (json!({"username": "ab", "password": "long enough"}), "validation.username"),
            (json!({"username": "x".repeat(33), "password": "long enough"}), "validation.username"),
            (json!({"username": "tab\there", "password": "long enough"}), "validation.username"),
            (json!({"username": "fine-name", "password": ""}), "validation.password"),
            (json!({"username": "fine-name", "password": "p".repeat(129)}), "validation.password"),
            (json!({"username": "fine-name", "password": "ctrl\u{7}chars!"}), "validation.password"),
            (json!({"username": "fine-name"}), "validation.password"),
            (json!({"password": "long enough"}), "validation.username"),
            (json!({"username": 42, "password": "long enough"}), "validation.username"),
        ];
        for (data, reason) in bad_registrations {
            dave.call("/user/register", data).await.fails(reason);
        }
        // Still usable after every refusal.
        assert!(dave.call("/user/info", json!({})).await.ok()["userinfo"]["id"].is_string());
    }
}

/// Every attempt is logged, newest first, and pages by cursor.
async fn login_log_pages(backend: Backend) {
    let server = Server::start(backend).await;
    for via in ALL_VIAS {
        let name = format!("erin-{}", format!("{via:?}").to_lowercase());
        let mut erin = Api::new(&server, via).await;
        erin.register(&name, "erin's password").await;
        let mut other = Api::new(&server, Via::Http).await;
        other
            .call("/user/login", json!({"username": name, "password": "not her password"}))
            .await
            .fails("auth.invalid_credentials");
        other.call("/user/login", json!({"username": name, "password": "erin's password"})).await.ok();

        let all = erin.call("/user/loginLog", json!({})).await.ok();
        let logs = all["logs"].as_array().unwrap();
        assert_eq!(logs.len(), 3, "{all}");
        assert_eq!(logs.iter().map(|l| l["success"].as_bool().unwrap()).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(logs[0]["transport"], "http");
        let first_transport = if via == Via::Http { "http" } else { "ws" };
        assert_eq!(logs[2]["transport"], first_transport);
        assert_eq!(logs[2]["ip"], "127.0.0.1");
        assert!(all["nextCursor"].is_null());
        assert!(logs[0]["at"].as_i64() >= logs[1]["at"].as_i64());

        let page1 = erin.call("/user/loginLog", json!({"limit": "2"})).await.ok();
        assert_eq!(page1["logs"].as_array().unwrap().len(), 2);
        let cursor = page1["nextCursor"].as_str().expect("a next page").to_owned();
        let page2 = erin.call("/user/loginLog", json!({"limit": 2, "cursor": cursor})).await.ok();
        assert_eq!(page2["logs"].as_array().unwrap().len(), 1);
        assert_eq!(page2["logs"][0]["id"], logs[2]["id"]);
        assert!(page2["nextCursor"].is_null());
        erin.call("/user/loginLog", json!({"limit": 0})).await.fails("validation.limit");
        erin.call("/user/loginLog", json!({"limit": 101})).await.fails("validation.limit");
    }
}

/// Logout on one device and a reset both end live sockets with `session.kicked`.
async fn socket_revocation_kicks_sessions(backend: Backend) {
    let server = Server::start(backend).await;
    let mut frank = Api::new(&server, Via::Http).await;
    frank.register("frank", "franks password").await;
    let token = frank.token.clone().unwrap();

    // Two sockets on one token (handshake header and a ticket of it), one on another token.
    let mut same_a = Ws::connect(&server, Wire::Json, "", Some(&token)).await.unwrap();
    let ticket = frank.call("/user/ticket", json!({})).await.ok()["ticket"].as_str().unwrap().to_owned();
    let mut same_b = Ws::connect(&server, Wire::MsgPack, &format!("ticket={ticket}"), None).await.unwrap();
    let mut other = Ws::open(&server, Wire::Json).await;
    other.request("/user/login", json!({"username": "frank", "password": "franks password"})).await;
    // Each socket is bound: an authenticated route answers.
    for ws in [&mut same_a, &mut same_b, &mut other] {
        assert_eq!(ws.request("/user/info", json!({})).await["data"]["userinfo"]["username"], "frank");
    }

    // Logging out over socket A ends A and B (same token), with the reply first.
    let reply = same_a.request("/user/logout", json!({})).await;
    assert_eq!(reply["code"], 0);
    for ws in [&mut same_a, &mut same_b] {
        assert_eq!(ws.push("session.kicked").await["data"]["reason"], "logout");
        assert_eq!(ws.closed().await.code, Some(4001));
    }
    // The other token's socket lives on.
    assert_eq!(other.request("/user/info", json!({})).await["code"], 0);

    // /user/auth binds an anonymous socket; a reset then kicks every session.
    let mut fresh = Api::new(&server, Via::Http).await;
    let login = fresh.call("/user/login", json!({"username": "frank", "password": "franks password"})).await.ok();
    let mut bound_later = Ws::open(&server, Wire::MsgPack).await;
    bound_later.request("/user/info", json!({})).await["error"]
        .as_str()
        .map(|e| assert_eq!(e, "auth.required"))
        .unwrap();
    let auth = bound_later.request("/user/auth", json!({"token": login["token"]})).await;
    assert_eq!(auth["data"]["userinfo"]["username"], "frank");
    bound_later.request("/user/auth", json!({"token": "garbage"})).await["error"]
        .as_str()
        .map(|e| assert_eq!(e, "auth.token_invalid"))
        .unwrap();

    fresh.call("/user/changePassword", json!({"username": "frank"})).await.ok();
    let secret = server.outbox(1).await[0]["resetToken"].as_str().unwrap().to_owned();
    fresh.call("/user/resetPassword", json!({"resetToken": secret, "password": "new franks password"})).await.ok();
    for ws in [&mut other, &mut bound_later] {
        assert_eq!(ws.push("session.kicked").await["data"]["reason"], "password_reset");
        assert_eq!(ws.closed().await.code, Some(4001));
    }
}

/// A username is one name whatever its case: "Dana" logs in as "dana", is found as "DANA", and
/// "DANA" can't be registered beside it. The name keeps the case it was registered with.
async fn usernames_ignore_case(backend: Backend) {
    let server = Server::start(backend).await;
    let mut dana = Api::new(&server, Via::Http).await;
    let me = dana.register("Dana", "correct horse").await;
    assert_eq!(me["username"], "Dana");

    let mut other = Api::new(&server, Via::Http).await;
    other.call("/user/register", json!({"username": "DANA", "password": "another pass"})).await.fails("user.exists");
    let login = other.call("/user/login", json!({"username": "dana", "password": "correct horse"})).await.ok();
    assert_eq!(login["userinfo"]["id"], me["id"]);

    let mut eve = Api::new(&server, Via::WsJson).await;
    eve.register("eve", "correct horse").await;
    let found = eve.call("/user/info", json!({"username": "dAnA"})).await.ok();
    assert_eq!(found["userinfo"]["id"], me["id"]);
    assert_eq!(found["userinfo"]["username"], "Dana");
}
