//! The group routes and their permission rules, over the socket and HTTP.

use serde_json::{Value, json};

use crate::harness::{ALL_VIAS, Api, Backend, Server, Via, Wire, device, user};
use crate::on_both;

on_both!(
    group_lifecycle_and_permissions,
    group_pushes_reach_every_device,
    concurrent_joins_respect_the_cap,
    group_input_validation
);

fn tag(via: Via) -> String {
    format!("{via:?}").to_lowercase()
}

/// One transport's run of the lifecycle: five users, each with a part to play, and their group.
struct Cast {
    owner: Api,
    owner_id: String,
    admin: Api,
    admin_id: String,
    member: Api,
    member_id: String,
    outsider: Api,
    outsider_id: String,
    newbie: Api,
    newbie_id: String,
    gid: String,
}

/// Every route, each allowed and refused case, over every transport.
async fn group_lifecycle_and_permissions(backend: Backend) {
    let server = Server::start(backend).await;
    for via in ALL_VIAS {
        let mut cast = created(&server, via).await;
        info_and_roles(&mut cast).await;
        update_invite_and_members(&mut cast).await;
        mute_and_kick(&mut cast).await;
        join_quit_and_transfer(&mut cast).await;
        dismissed_and_unreachable(&server, via, cast).await;
    }
}

/// The cast registers over `via`, so that each later step runs over that transport.
async fn created(server: &Server, via: Via) -> Cast {
    let t = tag(via);
    let (mut owner, owner_id) = user(server, via, &format!("owner-{t}")).await;
    let (admin, admin_id) = user(server, via, &format!("admin-{t}")).await;
    let (member, member_id) = user(server, via, &format!("member-{t}")).await;
    let (outsider, outsider_id) = user(server, via, &format!("outsider-{t}")).await;
    let (newbie, newbie_id) = user(server, via, &format!("newbie-{t}")).await;

    // Create: the creator owns it and the listed members are in at once.
    let g = owner
        .call(
            "/group/room/add",
            json!({"name": "Rustaceans", "intro": "crabs", "members": [admin_id, member_id, admin_id]}),
        )
        .await
        .ok()["group"]
        .clone();
    let gid = g["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (g["ownerId"].as_str(), g["memberCount"].as_i64(), g["joinPolicy"].as_str()),
        (Some(owner_id.as_str()), Some(3), Some("open"))
    );
    assert_eq!(
        (g["maxMembers"].as_i64(), g["name"].as_str(), g["notice"].as_str()),
        (Some(2000), Some("Rustaceans"), Some(""))
    );
    assert!(g["createdAt"].as_i64().unwrap() > 0);
    Cast { owner, owner_id, admin, admin_id, member, member_id, outsider, outsider_id, newbie, newbie_id, gid }
}

/// Info shows each caller their own role, and only the owner hands out roles.
async fn info_and_roles(cast: &mut Cast) {
    let Cast { owner, admin, admin_id, member, member_id, outsider, outsider_id, gid, .. } = cast;
    // Info: members see their role; an outsider sees an open group with no role.
    let info = member.call("/group/room/info", json!({"groupId": gid})).await.ok();
    assert_eq!(info["myRole"], "member");
    assert_eq!(owner.call("/group/room/info", json!({"groupId": gid})).await.ok()["myRole"], "owner");
    assert!(outsider.call("/group/room/info", json!({"groupId": gid})).await.ok()["myRole"].is_null());

    // Roles: owner only; no second owner through /role.
    member
        .call("/group/room/role", json!({"groupId": gid, "userId": admin_id, "role": "admin"}))
        .await
        .fails("forbidden");
    outsider
        .call("/group/room/role", json!({"groupId": gid, "userId": admin_id, "role": "admin"}))
        .await
        .fails("forbidden");
    owner
        .call("/group/room/role", json!({"groupId": gid, "userId": admin_id, "role": "owner"}))
        .await
        .fails("validation.role");
    owner
        .call("/group/room/role", json!({"groupId": gid, "userId": admin_id, "role": "boss"}))
        .await
        .fails("validation.role");
    owner
        .call("/group/room/role", json!({"groupId": gid, "userId": outsider_id, "role": "admin"}))
        .await
        .fails("validation.userId");
    owner.call("/group/room/role", json!({"groupId": gid, "userId": admin_id, "role": "admin"})).await.ok();
    admin
        .call("/group/room/role", json!({"groupId": gid, "userId": member_id, "role": "admin"}))
        .await
        .fails("forbidden");
}

/// Owners and admins change the group and invite; members list each other, page by page.
async fn update_invite_and_members(cast: &mut Cast) {
    let Cast { owner_id, admin, admin_id, member, member_id, outsider, newbie, newbie_id, gid, .. } = cast;
    // Update: owner or admin.
    member.call("/group/room/update", json!({"groupId": gid, "notice": "hi"})).await.fails("forbidden");
    outsider.call("/group/room/update", json!({"groupId": gid, "notice": "hi"})).await.fails("forbidden");
    let updated =
        admin.call("/group/room/update", json!({"groupId": gid, "notice": "Be kind", "name": "Crabs"})).await.ok();
    assert_eq!(
        (updated["group"]["notice"].as_str(), updated["group"]["name"].as_str()),
        (Some("Be kind"), Some("Crabs"))
    );
    assert_eq!(updated["group"]["intro"], "crabs", "fields not named stay");

    // Invite: owner or admin; members already in are skipped.
    member.call("/group/room/invite", json!({"groupId": gid, "members": [newbie_id]})).await.fails("forbidden");
    outsider.call("/group/room/invite", json!({"groupId": gid, "members": [newbie_id]})).await.fails("forbidden");
    admin
        .call("/group/room/invite", json!({"groupId": gid, "members": ["99999999"]}))
        .await
        .fails("validation.members");
    let invited =
        admin.call("/group/room/invite", json!({"groupId": gid, "members": [newbie_id, member_id]})).await.ok();
    assert_eq!(invited["group"]["memberCount"], 4);

    // Members: members only, paged by cursor.
    outsider.call("/group/room/members", json!({"groupId": gid})).await.fails("forbidden");
    let all = newbie.call("/group/room/members", json!({"groupId": gid})).await.ok();
    let roles: Vec<(String, String)> = all["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["userId"].as_str().unwrap().to_owned(), m["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(roles.len(), 4);
    assert!(roles.contains(&(owner_id.clone(), "owner".into())) && roles.contains(&(admin_id.clone(), "admin".into())));
    assert!(all["members"][0]["user"]["username"].is_string() && all["members"][0]["user"]["birthday"].is_null());
    let page = newbie.call("/group/room/members", json!({"groupId": gid, "limit": 3})).await.ok();
    assert_eq!(page["members"].as_array().unwrap().len(), 3);
    let rest = newbie
        .call("/group/room/members", json!({"groupId": gid, "limit": 3, "cursor": page["nextCursor"]}))
        .await
        .ok();
    assert_eq!(rest["members"].as_array().unwrap().len(), 1);
    assert!(rest["nextCursor"].is_null());
}

/// Mute and kick follow the rank of the one acting over the one acted on.
async fn mute_and_kick(cast: &mut Cast) {
    let Cast { owner, owner_id, admin, admin_id, member, member_id, outsider_id, newbie, newbie_id, gid, .. } = cast;
    // Mute: owner or admin; an admin may not mute the owner or another admin.
    let until = chatgate::now_ms() + 60_000;
    member
        .call("/group/room/mute", json!({"groupId": gid, "userId": newbie_id, "until": until}))
        .await
        .fails("forbidden");
    admin
        .call("/group/room/mute", json!({"groupId": gid, "userId": owner_id, "until": until}))
        .await
        .fails("forbidden");
    admin.call("/group/room/mute", json!({"groupId": gid, "userId": newbie_id, "until": until})).await.ok();
    let muted = owner.call("/group/room/mute", json!({"groupId": gid, "until": until})).await.ok();
    assert_eq!(muted["group"]["mutedUntil"], until);
    let listed = newbie.call("/group/room/members", json!({"groupId": gid})).await.ok();
    let newbie_row =
        listed["members"].as_array().unwrap().iter().find(|m| m["userId"] == newbie_id.as_str()).unwrap().clone();
    assert_eq!(newbie_row["mutedUntil"], until);

    // Kick: the owner anyone else, an admin plain members only.
    admin.call("/group/room/kick", json!({"groupId": gid, "members": [owner_id]})).await.fails("forbidden");
    admin.call("/group/room/kick", json!({"groupId": gid, "members": [admin_id]})).await.fails("forbidden");
    member.call("/group/room/kick", json!({"groupId": gid, "members": [newbie_id]})).await.fails("forbidden");
    admin.call("/group/room/kick", json!({"groupId": gid, "members": [outsider_id]})).await.fails("validation.members");
    assert_eq!(
        admin.call("/group/room/kick", json!({"groupId": gid, "members": [member_id]})).await.ok()["group"]["memberCount"],
        3
    );
    member.call("/group/room/members", json!({"groupId": gid})).await.fails("forbidden");
    owner.call("/group/room/kick", json!({"groupId": gid, "members": [owner_id]})).await.fails("forbidden");
}

/// Anyone may join an open group and quit it, except its owner, who must hand it over first.
async fn join_quit_and_transfer(cast: &mut Cast) {
    let Cast { owner, admin, admin_id, outsider, outsider_id, newbie_id, gid, .. } = cast;
    // Join and quit; the owner cannot quit.
    assert_eq!(outsider.call("/group/room/join", json!({"groupId": gid})).await.ok()["group"]["memberCount"], 4);
    assert_eq!(
        outsider.call("/group/room/join", json!({"groupId": gid})).await.ok()["group"]["memberCount"],
        4,
        "joining twice changes nothing"
    );
    assert!(
        outsider.call("/group/room/list", json!({})).await.ok()["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == gid.as_str())
    );
    outsider.call("/group/room/quit", json!({"groupId": gid})).await.ok();
    outsider.call("/group/room/quit", json!({"groupId": gid})).await.fails("forbidden");
    assert!(outsider.call("/group/room/list", json!({})).await.ok()["groups"].as_array().unwrap().is_empty());
    owner.call("/group/room/quit", json!({"groupId": gid})).await.fails("forbidden");

    // Transfer: owner only, to a member; the old owner becomes an admin.
    admin.call("/group/room/transfer", json!({"groupId": gid, "userId": admin_id})).await.fails("forbidden");
    owner.call("/group/room/transfer", json!({"groupId": gid, "userId": outsider_id})).await.fails("validation.userId");
    let moved = owner.call("/group/room/transfer", json!({"groupId": gid, "userId": newbie_id})).await.ok();
    assert_eq!(moved["group"]["ownerId"], newbie_id.as_str());
    assert_eq!(owner.call("/group/room/info", json!({"groupId": gid})).await.ok()["myRole"], "admin");
    owner.call("/group/room/quit", json!({"groupId": gid})).await.ok();
}

/// A dismissed group, an invite-only one and an unknown id all stay closed to the callers.
async fn dismissed_and_unreachable(server: &Server, via: Via, cast: Cast) {
    let Cast { mut owner, mut admin, mut outsider, mut newbie, gid, .. } = cast;
    // Dismiss: owner only; afterwards the group is gone for everyone.
    admin.call("/group/room/dismiss", json!({"groupId": gid})).await.fails("forbidden");
    newbie.call("/group/room/dismiss", json!({"groupId": gid})).await.ok();
    for api in [&mut newbie, &mut admin, &mut outsider] {
        api.call("/group/room/info", json!({"groupId": gid})).await.fails("not_found");
        api.call("/group/room/join", json!({"groupId": gid})).await.fails("not_found");
    }
    assert!(admin.call("/group/room/list", json!({})).await.ok()["groups"].as_array().unwrap().is_empty());

    // Invite-only: outsiders can neither see nor join it.
    let secret = owner.call("/group/room/add", json!({"name": "Inner circle", "joinPolicy": "invite"})).await.ok()
        ["group"]["id"]
        .clone();
    outsider.call("/group/room/info", json!({"groupId": secret})).await.fails("forbidden");
    outsider.call("/group/room/join", json!({"groupId": secret})).await.fails("forbidden");
    outsider.call("/group/room/members", json!({"groupId": secret})).await.fails("forbidden");

    // Ids that name no group, malformed or unknown, are all not_found.
    for bad in [json!("nope"), json!("-1"), json!("99999999"), json!(0), json!({"x": 1})] {
        owner.call("/group/room/info", json!({"groupId": bad})).await.fails("not_found");
    }
    // Unauthenticated callers get nothing.
    let mut anon = Api::new(server, via).await;
    anon.call("/group/room/list", json!({})).await.fails("auth.required");
}

/// Each change reaches every online session of every member, and nobody else.
async fn group_pushes_reach_every_device(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, _) = user(&server, Via::Http, "pusher-owner").await;
    let (member, member_id) = user(&server, Via::Http, "pusher-member").await;
    let (joiner, joiner_id) = user(&server, Via::Http, "pusher-joiner").await;
    let (outsider, _) = user(&server, Via::Http, "pusher-outsider").await;
    let mut owner_json = device(&server, &owner, Wire::Json).await;
    let mut owner_pack = device(&server, &owner, Wire::MsgPack).await;
    let mut member_ws = device(&server, &member, Wire::Json).await;
    let mut joiner_ws = device(&server, &joiner, Wire::MsgPack).await;
    let mut outsider_ws = device(&server, &outsider, Wire::Json).await;

    let created = owner.call("/group/room/add", json!({"name": "Pushy", "members": [member_id]})).await.ok();
    let gid = created["group"]["id"].as_str().unwrap().to_owned();
    for ws in [&mut owner_json, &mut owner_pack, &mut member_ws] {
        let update = ws.push("group.updated").await;
        assert_eq!(update["data"]["group"]["id"], gid.as_str());
        let change = ws.push("group.member").await;
        assert_eq!(
            change["data"],
            json!({"groupId": gid, "action": "invited", "userIds": [member_id], "by": created["group"]["ownerId"]})
        );
    }

    // A join over the joiner's own socket: every member's every device hears it, the joiner too.
    let reply = joiner_ws.request("/group/room/join", json!({"groupId": gid})).await;
    assert_eq!(reply["code"], 0);
    for ws in [&mut owner_json, &mut owner_pack, &mut member_ws, &mut joiner_ws] {
        assert_eq!(ws.push("group.updated").await["data"]["group"]["memberCount"], 3);
        let change = ws.push("group.member").await["data"].clone();
        assert_eq!((change["action"].as_str(), change["userIds"].clone()), (Some("joined"), json!([joiner_id])));
    }
    outsider_ws.no_push().await;

    // The kicked member is told too; afterwards they hear nothing more.
    owner.call("/group/room/kick", json!({"groupId": gid, "members": [member_id]})).await.ok();
    let kicked: Value = member_ws.push("group.member").await["data"].clone();
    assert_eq!((kicked["action"].as_str(), kicked["userIds"].clone()), (Some("kicked"), json!([member_id])));
    owner.call("/group/room/update", json!({"groupId": gid, "notice": "after the kick"})).await.ok();
    for ws in [&mut owner_json, &mut joiner_ws] {
        loop {
            if ws.push("group.updated").await["data"]["group"]["notice"] == "after the kick" {
                break;
            }
        }
    }
    member_ws.push("group.updated").await; // the kick's own update
    member_ws.no_push().await;

    owner.call("/group/room/dismiss", json!({"groupId": gid})).await.ok();
    for ws in [&mut owner_json, &mut owner_pack, &mut joiner_ws] {
        assert_eq!(ws.push("group.dismissed").await["data"]["groupId"], gid.as_str());
    }
    outsider_ws.no_push().await;
}

/// 50 simultaneous joins at a group with room for 5: exactly 5 get in.
async fn concurrent_joins_respect_the_cap(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut owner, _) = user(&server, Via::Http, "cap-owner").await;
    let (_, first_id) = user(&server, Via::Http, "cap-first").await;
    let gid = owner.call("/group/room/add", json!({"name": "Tiny", "maxMembers": 7, "members": [first_id]})).await.ok()
        ["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut joiners = Vec::new();
    for i in 0..50 {
        joiners.push(user(&server, Via::Http, &format!("cap-joiner-{i}")).await.0);
    }
    let results =
        futures::future::join_all(joiners.iter_mut().map(|api| api.call("/group/room/join", json!({"groupId": gid}))))
            .await;
    let ok = results.iter().filter(|r| r.code == 0).count();
    let full = results.iter().filter(|r| r.error.as_deref() == Some("group.full")).count();
    assert_eq!((ok, full), (5, 45), "{:?}", results.iter().map(|r| &r.error).collect::<Vec<_>>());
    assert!(results.iter().filter(|r| r.code == 1).all(|r| r.status == Some(409)));
    let info = owner.call("/group/room/info", json!({"groupId": gid})).await.ok();
    assert_eq!(info["group"]["memberCount"], 7);
    let members = owner.call("/group/room/members", json!({"groupId": gid})).await.ok();
    assert_eq!(members["members"].as_array().unwrap().len(), 7);
    // Inviting past the cap is refused whole.
    let (_, late) = user(&server, Via::Http, "cap-late").await;
    owner.call("/group/room/invite", json!({"groupId": gid, "members": [late]})).await.fails("group.full");
}

async fn group_input_validation(backend: Backend) {
    let server = Server::start_with(backend, &["--group-max-members", "100"]).await;
    for via in ALL_VIAS {
        let (mut alice, _) = user(&server, via, &format!("valid-{}", tag(via))).await;
        let cases: Vec<(Value, &str)> = vec![
            (json!({"name": ""}), "validation.name"),
            (json!({"name": "   "}), "validation.name"),
            (json!({"name": "n".repeat(65)}), "validation.name"),
            (json!({"name": "tab\there"}), "validation.name"),
            (json!({}), "validation.name"),
            (json!({"name": "ok", "members": ["123456789"]}), "validation.members"),
            (json!({"name": "ok", "members": "everyone"}), "validation.members"),
            (json!({"name": "ok", "joinPolicy": "secret"}), "validation.joinPolicy"),
            (json!({"name": "ok", "maxMembers": 101}), "validation.maxMembers"),
            (json!({"name": "ok", "maxMembers": 1}), "validation.maxMembers"),
            (json!({"name": "ok", "avatar": "javascript:x"}), "validation.avatar"),
            (json!({"name": "ok", "userinfo": {}}), "validation.userinfo"),
        ];
        for (data, reason) in cases {
            alice.call("/group/room/add", data).await.fails(reason);
        }
        let g = alice.call("/group/room/add", json!({"name": "Valid"})).await.ok()["group"].clone();
        assert_eq!(g["maxMembers"], 100, "the configured cap is the default");
        let gid = g["id"].clone();
        alice
            .call("/group/room/update", json!({"groupId": gid, "notice": "x".repeat(2049)}))
            .await
            .fails("validation.notice");
        alice
            .call("/group/room/update", json!({"groupId": gid, "joinPolicy": "closed"}))
            .await
            .fails("validation.joinPolicy");
        alice.call("/group/room/mute", json!({"groupId": gid, "until": -5})).await.fails("validation.until");
        alice.call("/group/room/invite", json!({"groupId": gid, "members": []})).await.fails("validation.members");
        alice.call("/group/room/members", json!({"groupId": gid, "limit": 500})).await.fails("validation.limit");
    }
}
