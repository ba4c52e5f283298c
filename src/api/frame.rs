//! Frames: the two encodings (JSON text, MessagePack binary), decoding a client frame, and
//! encoding replies. Documented for people in `proto-docs/frames.md`.
//!
//! Invariants:
//! - A text frame is JSON and a binary frame is MessagePack (maps with field names); a reply
//!   uses the encoding of its request.
//! - Decoding never panics and never trusts the frame's shape: anything unexpected is a typed
//!   [`BadFrame`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::Error;

/// A frame encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON in text frames.
    Json,
    /// MessagePack in binary frames.
    MsgPack,
}

/// An encoded frame, ready for a socket or an HTTP body. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Payload {
    /// JSON text.
    Text(Utf8Bytes),
    /// MessagePack bytes.
    Binary(Bytes),
}

impl Payload {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Text(t) => t.as_bytes(),
            Payload::Binary(b) => b,
        }
    }
}

/// A request id chosen by the client and echoed in the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

/// A decoded client frame.
#[derive(Debug)]
pub enum Incoming {
    /// `{"type":"req","id":..,"route":..,"data":..}`
    Request {
        /// Echoed in the reply.
        id: RequestId,
        /// The route path, such as `/user/login`.
        route: String,
        /// The route's arguments (an empty object when absent).
        data: Value,
    },
    /// `{"type":"ping"}`, answered with `{"type":"pong"}`.
    Ping,
}

/// A frame that could not be turned into [`Incoming`], with the request id if one was readable.
#[derive(Debug)]
pub struct BadFrame {
    /// The request id, when the frame had a readable one.
    pub id: Option<RequestId>,
    /// What was wrong.
    pub error: Error,
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    route: Option<Value>,
    #[serde(default)]
    data: Option<Value>,
}

/// Deepest nesting a decoded frame may have, in either encoding: serde_json's own limit, which
/// MessagePack's decoder (1,024 by default) is held to as well.
const MAX_FRAME_DEPTH: usize = 128;

/// Decodes a JSON or MessagePack document, nested at most [`MAX_FRAME_DEPTH`] levels deep.
pub fn decode_document<T: serde::de::DeserializeOwned>(bytes: &[u8], format: Format) -> Result<T, String> {
    match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Format::MsgPack => {
            let mut decoder = rmp_serde::Deserializer::from_read_ref(bytes);
            decoder.set_max_depth(MAX_FRAME_DEPTH);
            T::deserialize(&mut decoder).map_err(|e| e.to_string())
        }
    }
}

/// Decodes one client frame.
pub fn decode(bytes: &[u8], format: Format) -> Result<Incoming, BadFrame> {
    let raw: RawFrame =
        decode_document(bytes, format).map_err(|e| BadFrame { id: None, error: Error::MalformedFrame(e) })?;
    let id = raw
        .id
        .map(serde_json::from_value::<RequestId>)
        .transpose()
        .map_err(|_| BadFrame { id: None, error: Error::MalformedFrame("id must be a string or an integer".into()) })?;
    match raw.kind.as_str() {
        "ping" => Ok(Incoming::Ping),
        "req" => {
            let bad = |msg: &str| BadFrame { id: id.clone(), error: Error::MalformedFrame(msg.into()) };
            let Some(id) = id.clone() else {
                return Err(bad("a request needs an id"));
            };
            let Some(Value::String(route)) = raw.route else {
                return Err(bad("a request needs a route string"));
            };
            let data = match raw.data {
                None | Some(Value::Null) => Value::Object(Default::default()),
                Some(obj @ Value::Object(_)) => obj,
                Some(_) => return Err(bad("data must be an object")),
            };
            Ok(Incoming::Request { id, route, data })
        }
        _ => Err(BadFrame { id, error: Error::UnknownFrameType }),
    }
}

/// The reply frame; over HTTP the same object without `type` and `id`.
#[derive(Debug, Serialize)]
pub struct Reply<'a> {
    /// Always `"res"` on the socket; absent over HTTP.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The request id; absent over HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a RequestId>,
    /// 0 on success, 1 on failure.
    pub code: u8,
    /// For people.
    pub message: String,
    /// The route's result, or null on failure.
    pub data: Option<Value>,
    /// The wire reason, on failure only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<std::borrow::Cow<'static, str>>,
    /// With `rate_limited`: milliseconds before a retry may succeed.
    #[serde(rename = "retryAfter", skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl<'a> Reply<'a> {
    /// Builds the reply to a request, successful or not.
    pub fn new(id: Option<&'a RequestId>, socket: bool, result: Result<Value, Error>) -> Self {
        let kind = socket.then_some("res");
        match result {
            Ok(data) => {
                Reply { kind, id, code: 0, message: "ok".into(), data: Some(data), error: None, retry_after: None }
            }
            Err(err) => Reply {
                kind,
                id,
                code: 1,
                message: err.public_message(),
                data: None,
                error: Some(err.reason()),
                retry_after: match err {
                    Error::RateLimited { retry_after_ms } => Some(retry_after_ms),
                    _ => None,
                },
            },
        }
    }
}

/// Encodes any frame in `format`.
pub fn encode<T: Serialize>(frame: &T, format: Format) -> Payload {
    match format {
        // Serializing our own types to JSON cannot fail: their maps have string keys.
        Format::Json => Payload::Text(serde_json::to_string(frame).unwrap_or_default().into()),
        Format::MsgPack => Payload::Binary(rmp_serde::to_vec_named(frame).unwrap_or_default().into()),
    }
}

/// `{"type":"pong"}`.
pub fn pong(format: Format) -> Payload {
    #[derive(Serialize)]
    struct Pong {
        #[serde(rename = "type")]
        kind: &'static str,
    }
    encode(&Pong { kind: "pong" }, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings_stop_at_the_same_depth() {
        for (levels, accepted) in [(100, true), (300, false)] {
            let data = serde_json::json!({"deep": (0..levels).fold(serde_json::json!(1), |inner, _| serde_json::json!([inner]))});
            let json = format!(r#"{{"type":"req","id":1,"route":"/r","data":{data}}}"#);
            let packed = rmp_serde::to_vec_named(&serde_json::json!({"type":"req","id":1,"route":"/r","data":data}));
            assert_eq!(decode(json.as_bytes(), Format::Json).is_ok(), accepted, "json, {levels} levels");
            assert_eq!(decode(&packed.unwrap(), Format::MsgPack).is_ok(), accepted, "msgpack, {levels} levels");
        }
    }

    #[test]
    fn decodes_requests_in_both_formats() {
        let json = br#"{"type":"req","id":7,"route":"/user/login","data":{"username":"a"}}"#;
        let Ok(Incoming::Request { id, route, data }) = decode(json, Format::Json) else { panic!("not a request") };
        assert_eq!(id, RequestId::Int(7));
        assert_eq!(route, "/user/login");
        let packed =
            rmp_serde::to_vec_named(&serde_json::json!({"type":"req","id":"x","route":"/r","data":data})).unwrap();
        let Ok(Incoming::Request { id, .. }) = decode(&packed, Format::MsgPack) else { panic!("not a request") };
        assert_eq!(id, RequestId::Str("x".into()));
    }

    #[test]
    fn bad_frames_are_typed() {
        let reason = |b: &[u8]| decode(b, Format::Json).unwrap_err().error.reason();
        assert_eq!(reason(b"{nope"), "frame.malformed");
        assert_eq!(reason(br#"{"type":"zap","id":1}"#), "frame.unknown_type");
        assert_eq!(reason(br#"{"type":"req","id":1}"#), "frame.malformed");
        assert_eq!(reason(br#"{"type":"req","id":[1],"route":"/x"}"#), "frame.malformed");
        assert_eq!(decode(br#"{"type":"req","id":1,"data":5}"#, Format::Json).unwrap_err().id, Some(RequestId::Int(1)));
    }

    /// Every MessagePack example in proto-docs/frames.md decodes to its JSON twin.
    #[test]
    fn documented_frames_are_true() {
        let doc = include_str!("../../proto-docs/frames.md");
        let blocks: Vec<&str> = doc.split("```").collect();
        let mut pairs = 0;
        for (i, block) in blocks.iter().enumerate() {
            let Some(json) = block.strip_prefix("json\n") else {
                continue;
            };
            let hex = blocks[i + 2].strip_prefix("msgpack-hex\n").expect("a msgpack-hex block follows each json block");
            let bytes: Vec<u8> = hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
            let from_json: Value = serde_json::from_str(json).unwrap();
            let from_msgpack: Value = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(from_json, from_msgpack);
            pairs += 1;
        }
        assert_eq!(pairs, 6, "one pair per frame kind");
    }
}
