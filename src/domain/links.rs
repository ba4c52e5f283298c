//! Signed file links: `/file/{fileId}?exp={unix seconds}&sig={hex HMAC-SHA256}`, a capability
//! to read one file until `exp`, which an `<img>` can carry instead of a login token.
//!
//! Invariants:
//! - A link names one file and one expiry, both under the signature; it is checked in constant
//!   time, and an expired one is refused whatever its signature.
//! - A link lives between two thirds of `--file-link-secs` and all of it (at most 15 min):
//!   expiries are rounded up to a step of a third, so links minted close together, for any
//!   reader, are one URL, and a browser caches the file once.
//! - The key is derived from the token key, so every node that verifies tokens verifies links,
//!   and a new token key voids every link.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::FileId;

/// A signed link to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLink {
    /// The path and query to fetch: `/file/{fileId}?exp=…&sig=…`.
    pub url: String,
    /// When it stops working, Unix ms.
    pub expires_at: i64,
}

/// Mints and checks signed file links.
pub struct LinkSigner {
    key: [u8; 32],
    life_secs: i64,
}

impl LinkSigner {
    /// A signer keyed from `token_key`, minting links that live at most `life_secs`.
    pub fn new(token_key: &[u8], life_secs: u64) -> Self {
        let key = Sha256::new().chain_update(b"chatgate file links\0").chain_update(token_key).finalize().into();
        LinkSigner { key, life_secs: life_secs.max(3) as i64 }
    }

    /// A link to `file` minted at `now_ms`.
    pub fn sign(&self, file: &FileId, now_ms: i64) -> FileLink {
        let step = self.life_secs / 3;
        let expires = (now_ms.div_euclid(1000) / step + 3) * step;
        let sig = hex::encode(self.mac(file, expires).finalize().into_bytes());
        FileLink { url: format!("/file/{file}?exp={expires}&sig={sig}"), expires_at: expires * 1000 }
    }

    /// Checks the `exp` and `sig` of a link to `file` at `now_ms`.
    pub fn verify(&self, file: &FileId, exp: &str, sig: &str, now_ms: i64) -> Result<()> {
        let expires: i64 = exp.parse().map_err(|_| Error::LinkInvalid)?;
        if expires.saturating_mul(1000) <= now_ms {
            return Err(Error::LinkInvalid);
        }
        let sig = hex::decode(sig).map_err(|_| Error::LinkInvalid)?;
        self.mac(file, expires).verify_slice(&sig).map_err(|_| Error::LinkInvalid)
    }

    fn mac(&self, file: &FileId, expires: i64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes a key of any size");
        mac.update(file.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(link: &FileLink) -> (String, String) {
        let query = link.url.split_once('?').unwrap().1;
        let (exp, sig) = query.split_once('&').unwrap();
        (exp.strip_prefix("exp=").unwrap().to_owned(), sig.strip_prefix("sig=").unwrap().to_owned())
    }

    #[test]
    fn links_verify_for_their_file_until_they_expire() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef", 900);
        let file = FileId("a".repeat(32));
        let now = 1_700_000_123_456;
        let link = signer.sign(&file, now);
        let life = link.expires_at - now;
        assert!((600_000..=900_000).contains(&life), "a link lives 10 to 15 min, not {life} ms");
        assert_eq!(signer.sign(&file, now + 1000), link, "links minted close together are one URL");
        let (exp, sig) = parts(&link);
        signer.verify(&file, &exp, &sig, now).unwrap();
        assert!(signer.verify(&file, &exp, &sig, link.expires_at).is_err(), "expired");
        assert!(signer.verify(&FileId("b".repeat(32)), &exp, &sig, now).is_err(), "another file");
        let later = (exp.parse::<i64>().unwrap() + 300).to_string();
        assert!(signer.verify(&file, &later, &sig, now).is_err(), "another expiry");
        assert!(signer.verify(&file, &exp, "zz", now).is_err(), "not hex");
        let other = LinkSigner::new(b"another key, just as long as the first", 900);
        assert!(other.verify(&file, &exp, &sig, now).is_err(), "another key");
    }
}
