//! The API's contract, checked: no input makes decoding or any route's parsing panic, frames
//! round-trip through both encodings, and the error catalogue, the route documentation and the
//! SDK's declarations list exactly what the code has.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::Value;

use super::frame::{Format, Incoming, Payload, Reply, RequestId, decode, encode};
use super::push::Push;
use super::routes::{ROUTES, Serve, Socket};
use super::{Method, parse_every_request};
use crate::error::Error;

/// JSON values of every shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![Just("text"), Just("image"), Just("single"), Just("group"), Just("admin"), Just("/file/ab")]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,8}",
                    Just("kind".to_owned()),
                    Just("content".to_owned()),
                    Just("text".to_owned()),
                    Just("groupId".to_owned()),
                    Just("userinfo".to_owned()),
                    Just("conversations".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A bounded fuzz run in the test suite: no bytes, in either encoding, make decoding or
    /// any route's parsing panic.
    #[test]
    fn no_input_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), data in any_json()) {
        for format in [Format::Json, Format::MsgPack] {
            if let Ok(Incoming::Request { data, .. }) = decode(&bytes, format) {
                parse_every_request(&data);
            }
        }
        parse_every_request(&data);
        let frame = serde_json::json!({"type": "req", "id": 1, "route": "/x", "data": data});
        let _ = decode(frame.to_string().as_bytes(), Format::Json);
    }

    /// Requests survive the trip through either encoding unchanged.
    #[test]
    fn requests_round_trip(int_id in any::<i64>(), str_id in "[a-z0-9-]{1,16}", use_str in any::<bool>(),
                           route in "/[a-z]{1,8}/[a-zA-Z]{1,10}", data in prop::collection::btree_map("[a-z]{1,6}", any_json(), 0..5)) {
        let id = if use_str { Value::from(str_id) } else { Value::from(int_id) };
        let data = Value::Object(data.into_iter().collect());
        let frame = serde_json::json!({"type": "req", "id": id, "route": route, "data": data});
        let packed = rmp_serde::to_vec_named(&frame).unwrap();
        for (bytes, format) in [(frame.to_string().into_bytes(), Format::Json), (packed, Format::MsgPack)] {
            let Ok(Incoming::Request { id: got_id, route: got_route, data: got_data }) = decode(&bytes, format) else {
                panic!("{format:?} did not decode {frame}");
            };
            prop_assert_eq!(serde_json::to_value(&got_id).unwrap(), id.clone());
            prop_assert_eq!(&got_route, &route);
            prop_assert_eq!(&got_data, &data);
        }
    }

    /// Replies and pushes read back as what was sent, in JSON and MessagePack alike.
    #[test]
    fn replies_and_pushes_round_trip(id in any::<i64>(), data in prop::collection::btree_map("[a-z]{1,6}", any_json(), 0..5)) {
        let data = Value::Object(data.into_iter().collect());
        let request_id = RequestId::Int(id);
        let reply = Reply::new(Some(&request_id), true, Ok(data.clone()));
        let Payload::Text(text) = encode(&reply, Format::Json) else { panic!("JSON is text") };
        let Payload::Binary(bytes) = encode(&reply, Format::MsgPack) else { panic!("MessagePack is binary") };
        let from_json: Value = serde_json::from_str(&text).unwrap();
        let from_msgpack: Value = rmp_serde::from_slice(&bytes).unwrap();
        prop_assert_eq!(&from_json, &from_msgpack);
        prop_assert_eq!(&from_json["id"], &Value::from(id));
        prop_assert_eq!(&from_json["data"], &data);
        let push = Push::new("typing", &data);
        let Payload::Text(text) = push.payload(Format::Json) else { panic!("JSON is text") };
        let Payload::Binary(bytes) = push.payload(Format::MsgPack) else { panic!("MessagePack is binary") };
        let from_json: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&from_json, &rmp_serde::from_slice::<Value>(&bytes).unwrap());
        prop_assert_eq!(&from_json["data"], &data);
        let relayed = Push::from_json_frame(text.to_string()).unwrap();
        let Payload::Binary(again) = relayed.payload(Format::MsgPack) else { panic!("MessagePack is binary") };
        prop_assert_eq!(again, bytes);
    }
}

/// Every reason the error enum can produce is in the catalogue, with its status.
#[test]
fn error_catalogue_is_complete() {
    let doc = include_str!("../../proto-docs/errors.md");
    let all = [
        Error::AuthRequired,
        Error::InvalidCredentials,
        Error::TokenInvalid,
        Error::ResetTokenInvalid,
        Error::TicketInvalid,
        Error::LinkInvalid,
        Error::validation("x", "x"),
        Error::UserExists,
        Error::GroupFull,
        Error::NotEditable,
        Error::ReactionsFull,
        Error::NotFound,
        Error::Forbidden,
        Error::Muted,
        Error::FileTooLarge { max_bytes: 1 },
        Error::QuotaExceeded { quota_bytes: 1 },
        Error::RateLimited { retry_after_ms: 1 },
        Error::MalformedFrame(String::new()),
        Error::UnknownFrameType,
        Error::UnknownRoute,
        Error::MethodNotAllowed,
        Error::SocketOnly,
        Error::Unavailable,
        Error::internal(anyhow::anyhow!("x")),
    ];
    // A new variant fails to compile here until it is listed above (and so documented).
    let _listed = |e: &Error| match e {
        Error::AuthRequired
        | Error::InvalidCredentials
        | Error::TokenInvalid
        | Error::ResetTokenInvalid
        | Error::TicketInvalid
        | Error::LinkInvalid
        | Error::Validation { .. }
        | Error::UserExists
        | Error::GroupFull
        | Error::NotEditable
        | Error::ReactionsFull
        | Error::NotFound
        | Error::Forbidden
        | Error::Muted
        | Error::FileTooLarge { .. }
        | Error::QuotaExceeded { .. }
        | Error::RateLimited { .. }
        | Error::MalformedFrame(_)
        | Error::UnknownFrameType
        | Error::UnknownRoute
        | Error::MethodNotAllowed
        | Error::SocketOnly
        | Error::Unavailable
        | Error::Internal(_) => (),
    };
    for err in all {
        let reason = err.reason().replace("validation.x", "validation.<field>");
        let row = format!("| `{reason}` | {} |", err.status());
        assert!(doc.contains(&row), "errors.md lacks {row}");
    }
}

/// The `(METHOD, path)` of every route in the table.
fn table() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| {
            let method = match r.method {
                Method::Get => "GET",
                Method::Post | Method::Socket => "POST",
            };
            (method.to_owned(), r.path.to_owned())
        })
        .collect()
}

/// proto-docs/routes.md has a section for each route of the table, and for nothing else.
#[test]
fn every_route_is_documented() {
    let doc = include_str!("../../proto-docs/routes.md");
    let documented: BTreeSet<(String, String)> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("### `"))
        .filter_map(|rest| rest.split('`').next())
        .filter_map(|heading| heading.split_once(' '))
        .filter(|(method, _)| matches!(*method, "GET" | "POST"))
        .map(|(method, path)| (method.to_owned(), path.to_owned()))
        .collect();
    let table = table();
    let missing: Vec<_> = table.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&table).collect();
    assert!(missing.is_empty(), "proto-docs/routes.md lacks a section for {missing:?}");
    assert!(unknown.is_empty(), "proto-docs/routes.md documents routes the table lacks: {unknown:?}");
}

/// The SDK's `Route` type names exactly the routes a socket can call.
#[test]
fn the_sdk_declares_every_route() {
    let dts = include_str!("../../sdk/js/chatgate.d.ts");
    let start = dts.find("export type Route =").expect("chatgate.d.ts declares `export type Route`");
    let end = start + dts[start..].find(';').expect("the Route type ends with ';'");
    let declared: BTreeSet<String> = dts[start..end].split('"').skip(1).step_by(2).map(str::to_owned).collect();
    let callable: BTreeSet<String> =
        ROUTES.iter().filter(|r| matches!(r.serve, Serve::Call { .. })).map(|r| r.path.to_owned()).collect();
    let missing: Vec<_> = callable.difference(&declared).collect();
    let unknown: Vec<_> = declared.difference(&callable).collect();
    assert!(missing.is_empty(), "chatgate.d.ts's Route lacks {missing:?}");
    assert!(unknown.is_empty(), "chatgate.d.ts's Route names routes the table lacks: {unknown:?}");
}

/// Each path has one row per method, and a path with two rows tells a socket frame which.
#[test]
fn the_table_is_unambiguous() {
    assert_eq!(table().len(), ROUTES.len(), "a (method, path) appears twice");
    for route in ROUTES {
        let rows: Vec<_> = ROUTES.iter().filter(|r| r.path == route.path).collect();
        if rows.len() > 1 {
            let picks = rows.iter().filter(|r| matches!(r.socket, Socket::When(_))).count();
            assert_eq!(picks, rows.len() - 1, "{}: every row but one says when a socket frame takes it", route.path);
        }
    }
}
