//! Checks shared by every family of free text a user can set: names, intros, URLs.

use crate::error::{Error, Result};

/// Trims surrounding white space and rejects control characters and overlong text.
pub fn checked_text(field: &'static str, value: String, max_chars: usize) -> Result<String> {
    let value = value.trim().to_owned();
    if value.chars().any(char::is_control) {
        return Err(Error::validation(field, format!("{field} must not contain control characters")));
    }
    if value.chars().count() > max_chars {
        return Err(Error::validation(field, format!("{field} must be at most {max_chars} characters")));
    }
    Ok(value)
}

/// Accepts an empty string, an http(s) URL, or a path to this server's `/file/`.
pub fn checked_url(field: &'static str, value: String) -> Result<String> {
    let value = checked_text(field, value, 1024)?;
    let lower = value.to_ascii_lowercase();
    let ok = value.is_empty()
        || ((lower.starts_with("https://") || lower.starts_with("http://")) && !value.contains(char::is_whitespace))
        || (value.starts_with("/file/") && !value.contains(".."));
    if ok {
        Ok(value)
    } else {
        Err(Error::validation(field, format!("{field} must be an http(s) URL or a /file/ path")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(checked_url("avatar", "https://x.test/a.png".into()).is_ok());
        assert!(checked_url("avatar", "/file/abc".into()).is_ok());
        assert!(checked_url("avatar", "".into()).is_ok());
        assert!(checked_url("avatar", "javascript:alert(1)".into()).is_err());
        assert!(checked_url("avatar", "/file/../etc/passwd".into()).is_err());
    }
}
