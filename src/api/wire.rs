//! Reading route arguments: parsing `data` into a request type, with field-named errors, and
//! the lenient readers of values that arrive as strings from HTTP query strings.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::Error;
pub use crate::model::ids::de_int;

/// Parses a route's `data` into its request type. A failure names the offending field by its
/// own name (the last segment of its path), as domain validation does.
pub fn parse<T: DeserializeOwned>(data: Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(data).map_err(|err| {
        let inner = err.inner().to_string();
        // serde reports a missing or unknown field on its parent; name the field itself.
        let named = inner
            .split('`')
            .nth(1)
            .filter(|_| inner.starts_with("missing field") || inner.starts_with("unknown field"));
        let field = match named {
            Some(name) => name.to_owned(),
            None => err
                .path()
                .iter()
                .filter_map(|seg| match seg {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                })
                .next_back()
                .unwrap_or_else(|| "data".to_owned()),
        };
        Error::validation(field, inner)
    })
}

/// A request with no fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// An empty reply, `{}`.
#[derive(Debug, serde::Serialize)]
pub struct Done {}

/// Reads an id that, when malformed, names nothing: the route answers `not_found`, exactly as
/// for an unknown id, rather than a validation error that would tell the two apart.
pub fn de_loose_id<'de, D: Deserializer<'de>, T: From<i64>>(d: D) -> Result<Option<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|id| *id > 0)
    .map(T::from))
}

/// Reads an integer sent as a number or, as HTTP query strings do, as a string.
pub fn de_opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "de_int")] i64);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

/// Distinguishes an absent field (outer `None`) from an explicit null (`Some(None)`).
pub fn de_nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Reads a flag sent as a boolean or, from a query string, as `"true"`/`"false"`.
pub fn de_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(_) => Err(serde::de::Error::custom("expected a boolean")),
    }
}
