//! Message content: a JSON object per kind, validated field by field before anything is
//! stored; unknown fields are refused, ids are normalized to strings.

use serde_json::{Map, Value};

use super::text::checked_url;
use crate::error::{Error, Result};
use crate::model::FileId;

/// Reads one content object, field by field, refusing fields it was not asked about.
struct Fields {
    map: Map<String, Value>,
    out: Map<String, Value>,
}

impl Fields {
    fn new(content: Value) -> Result<Self> {
        match content {
            Value::Object(map) => Ok(Fields { map, out: Map::new() }),
            _ => Err(Error::validation("content", "content must be an object")),
        }
    }

    fn take(&mut self, name: &'static str, required: bool) -> Result<Option<Value>> {
        match self.map.remove(name) {
            None | Some(Value::Null) if required => Err(Error::validation(name, format!("{name} is required"))),
            None | Some(Value::Null) => Ok(None),
            Some(v) => Ok(Some(v)),
        }
    }

    fn text(&mut self, name: &'static str, required: bool, max_chars: usize, allow_newlines: bool) -> Result<()> {
        let Some(value) = self.take(name, required)? else { return Ok(()) };
        let Value::String(s) = value else {
            return Err(Error::validation(name, format!("{name} must be a string")));
        };
        let bad_char = s.chars().any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\t' | '\r')));
        let len = s.chars().count();
        if bad_char || len > max_chars || (required && s.trim().is_empty()) {
            return Err(Error::validation(
                name,
                format!("{name} must be 1 to {max_chars} characters without control characters"),
            ));
        }
        self.out.insert(name.into(), Value::String(s));
        Ok(())
    }

    fn url(&mut self, name: &'static str, required: bool) -> Result<()> {
        let Some(value) = self.take(name, required)? else { return Ok(()) };
        let Value::String(s) = value else {
            return Err(Error::validation(name, format!("{name} must be a URL")));
        };
        let url = checked_url(name, s)?;
        if url.is_empty() {
            return Err(Error::validation(name, format!("{name} must be an http(s) URL or a /file/ path")));
        }
        self.out.insert(name.into(), Value::String(url));
        Ok(())
    }

    fn int(&mut self, name: &'static str, required: bool, max: i64) -> Result<()> {
        let Some(value) = self.take(name, required)? else { return Ok(()) };
        match value.as_i64() {
            Some(n) if (0..=max).contains(&n) => {
                self.out.insert(name.into(), Value::from(n));
                Ok(())
            }
            _ => Err(Error::validation(name, format!("{name} must be an integer from 0 to {max}"))),
        }
    }

    fn number(&mut self, name: &'static str, required: bool, min: f64, max: f64) -> Result<()> {
        let Some(value) = self.take(name, required)? else { return Ok(()) };
        match value.as_f64() {
            Some(n) if n.is_finite() && (min..=max).contains(&n) => {
                self.out.insert(name.into(), value);
                Ok(())
            }
            _ => Err(Error::validation(name, format!("{name} must be a number from {min} to {max}"))),
        }
    }

    fn mime(&mut self, prefix: Option<&str>) -> Result<()> {
        let Some(value) = self.take("mime", true)? else { return Ok(()) };
        let ok = value.as_str().is_some_and(|m| {
            m.len() <= 127
                && m.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
                && m.bytes().all(|c| c.is_ascii_graphic())
                && prefix.is_none_or(|p| m.starts_with(p))
        });
        if !ok {
            return Err(Error::validation("mime", "mime must be a media type such as image/png"));
        }
        self.out.insert("mime".into(), value);
        Ok(())
    }

    fn finish(self) -> Result<Value> {
        if let Some(unknown) = self.map.keys().next() {
            return Err(Error::validation(unknown.clone(), format!("unknown content field {unknown}")));
        }
        Ok(Value::Object(self.out))
    }
}

/// Largest size a media message may claim: 100 GiB.
const MAX_SIZE: i64 = 100 << 30;
/// Largest width or height.
const MAX_DIMENSION: i64 = 100_000;
/// Longest duration, in seconds: a day.
const MAX_DURATION: f64 = 86_400.0;

/// Deepest nesting of arrays and objects a message's content may have. Every reader of a
/// stored message must be able to decode it again, whatever its decoder's own recursion limit.
pub const MAX_CONTENT_DEPTH: usize = 32;

/// Whether `value` nests arrays and objects more than `max` levels deep; iterative, so that
/// the check itself is bounded by the value's size, not by the stack.
fn nests_deeper_than(value: &Value, max: usize) -> bool {
    let mut pending = vec![(value, 1)];
    while let Some((value, depth)) = pending.pop() {
        if (value.is_array() || value.is_object()) && depth > max {
            return true;
        }
        match value {
            Value::Array(items) => pending.extend(items.iter().map(|child| (child, depth + 1))),
            Value::Object(fields) => pending.extend(fields.values().map(|child| (child, depth + 1))),
            _ => {}
        }
    }
    false
}

/// The fields of a text message: its text, mentions and reply.
fn text_fields(f: &mut Fields, max_text: usize) -> Result<()> {
    f.text("text", true, max_text, true)?;
    if let Some(mentions) = f.take("mentions", false)? {
        let normalized = match mentions {
            Value::String(s) if s == "all" => Value::String(s),
            Value::Array(ids) if ids.len() <= 100 => {
                let ids: Option<Vec<Value>> = ids
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.parse::<i64>().ok(),
                        other => other.as_i64(),
                    })
                    .map(|id| id.filter(|i| *i > 0).map(|i| Value::String(i.to_string())))
                    .collect();
                Value::Array(ids.ok_or_else(|| Error::validation("mentions", "mentions must be user ids or \"all\""))?)
            }
            _ => return Err(Error::validation("mentions", "mentions must be up to 100 user ids or \"all\"")),
        };
        f.out.insert("mentions".into(), normalized);
    }
    if let Some(reply_to) = f.take("replyTo", false)? {
        let id = match &reply_to {
            Value::String(s) => s.parse::<i64>().ok(),
            other => other.as_i64(),
        };
        let id = id.filter(|i| *i > 0).ok_or_else(|| Error::validation("replyTo", "replyTo must be a message id"))?;
        f.out.insert("replyTo".into(), Value::String(id.to_string()));
    }
    Ok(())
}

/// The fields of content that may hold a URL.
const URL_FIELDS: [&str; 3] = ["url", "thumbnail", "cover"];

/// The uploaded files that validated `content` references: its `/file/{fileId}` URLs. A
/// `/file/` URL that names no possible file is refused.
pub fn referenced_files(content: &Value) -> Result<Vec<FileId>> {
    let mut files = Vec::new();
    for field in URL_FIELDS {
        let Some(rest) = content.get(field).and_then(Value::as_str).and_then(|u| u.strip_prefix("/file/")) else {
            continue;
        };
        let file = FileId(rest.to_owned());
        if !file.is_well_formed() {
            return Err(Error::validation(field, format!("{field} must name an uploaded file")));
        }
        if !files.contains(&file) {
            files.push(file);
        }
    }
    Ok(files)
}

/// Validates `content` for `kind` and returns it normalized (ids as strings).
pub fn validate_content(kind: &str, content: Value, max_text: usize) -> Result<Value> {
    if nests_deeper_than(&content, MAX_CONTENT_DEPTH) {
        return Err(Error::validation(
            "content",
            format!("content may nest arrays and objects at most {MAX_CONTENT_DEPTH} levels deep"),
        ));
    }
    let mut f = Fields::new(content)?;
    match kind {
        "text" => text_fields(&mut f, max_text)?,
        "image" => {
            f.url("url", true)?;
            f.int("width", true, MAX_DIMENSION)?;
            f.int("height", true, MAX_DIMENSION)?;
            f.int("size", true, MAX_SIZE)?;
            f.mime(Some("image/"))?;
            f.url("thumbnail", false)?;
        }
        "video" => {
            f.url("url", true)?;
            f.number("duration", true, 0.0, MAX_DURATION)?;
            f.int("width", true, MAX_DIMENSION)?;
            f.int("height", true, MAX_DIMENSION)?;
            f.int("size", true, MAX_SIZE)?;
            f.mime(Some("video/"))?;
            f.url("cover", false)?;
        }
        "audio" => {
            f.url("url", true)?;
            f.number("duration", true, 0.0, MAX_DURATION)?;
            f.int("size", true, MAX_SIZE)?;
            f.mime(Some("audio/"))?;
        }
        "file" => {
            f.url("url", true)?;
            f.text("name", true, 255, false)?;
            f.int("size", true, MAX_SIZE)?;
            f.mime(None)?;
        }
        "location" => {
            f.number("latitude", true, -90.0, 90.0)?;
            f.number("longitude", true, -180.0, 180.0)?;
            f.text("title", false, 200, false)?;
        }
        "custom" => {
            let data = f.take("data", true)?.unwrap_or(Value::Null);
            f.out.insert("data".into(), data);
        }
        _ => return Err(Error::validation("kind", "kind must be text, image, video, audio, file, location or custom")),
    }
    f.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reason(kind: &str, content: Value) -> String {
        validate_content(kind, content, 5000).unwrap_err().reason().into_owned()
    }

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| json!([inner]))
    }

    #[test]
    fn content_nests_at_most_32_levels() {
        let at_limit = json!({"data": nested(MAX_CONTENT_DEPTH - 1)});
        assert_eq!(validate_content("custom", at_limit.clone(), 5000).unwrap(), at_limit);
        assert_eq!(reason("custom", json!({"data": nested(MAX_CONTENT_DEPTH)})), "validation.content");
        assert_eq!(reason("custom", json!({"data": {"a": {"b": nested(100)}}})), "validation.content");
        assert_eq!(reason("text", json!({"text": "hi", "mentions": [nested(40)]})), "validation.content");
    }

    #[test]
    fn content_is_validated_per_kind() {
        assert_eq!(
            validate_content("text", json!({"text": "hi\nthere", "mentions": [5, "6"], "replyTo": 9}), 5000).unwrap(),
            json!({"text": "hi\nthere", "mentions": ["5", "6"], "replyTo": "9"})
        );
        assert_eq!(reason("text", json!({"text": ""})), "validation.text");
        assert_eq!(reason("text", json!({"text": "x".repeat(5001)})), "validation.text");
        assert_eq!(reason("text", json!({"text": "a\u{0}b"})), "validation.text");
        assert_eq!(reason("text", json!({"text": "hi", "mentions": "some"})), "validation.mentions");
        assert_eq!(reason("text", json!({"text": "hi", "bold": true})), "validation.bold");
        assert_eq!(
            reason(
                "image",
                json!({"url": "javascript:alert(1)", "width": 1, "height": 1, "size": 1, "mime": "image/png"})
            ),
            "validation.url"
        );
        assert_eq!(
            reason("image", json!({"url": "/file/ab", "width": -1, "height": 1, "size": 1, "mime": "image/png"})),
            "validation.width"
        );
        assert_eq!(
            reason("image", json!({"url": "/file/ab", "width": 1, "height": 1, "size": 1, "mime": "text/html"})),
            "validation.mime"
        );
        assert_eq!(
            reason(
                "video",
                json!({"url": "https://v.test/a.mp4", "duration": -2, "width": 1, "height": 1, "size": 1, "mime": "video/mp4"})
            ),
            "validation.duration"
        );
        assert_eq!(reason("location", json!({"latitude": 91, "longitude": 0})), "validation.latitude");
        assert_eq!(reason("file", json!({"url": "/file/ab", "size": 1, "mime": "application/pdf"})), "validation.name");
        assert_eq!(reason("custom", json!({})), "validation.data");
        assert_eq!(reason("system", json!({})), "validation.kind");
        assert_eq!(reason("sticker", json!({})), "validation.kind");
        assert_eq!(reason("text", json!("hello")), "validation.content");
        assert!(
            validate_content(
                "audio",
                json!({"url": "https://a.test/x.ogg", "duration": 3.5, "size": 10, "mime": "audio/ogg"}),
                5000
            )
            .is_ok()
        );
        assert!(validate_content("custom", json!({"data": {"any": ["json", 1]}}), 5000).is_ok());
    }
}
