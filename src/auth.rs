//! Credentials: argon2id password hashing off the async workers, and signed login tokens.
//!
//! Invariants:
//! - Password hashing never runs on a tokio worker: it goes to the blocking pool behind a
//!   semaphore, so a burst of logins queues instead of starving sockets.
//! - Tokens are HS256 only; `exp`, `iat`, `nbf`, `iss` and `sub` are required and checked.
//!   Revocation (logout, reset) is not in the token: the user domain checks it in the store.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// argon2id at the OWASP floor: 19 MiB, two passes, one lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 params are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and checks passwords on the blocking pool, a bounded number at a time.
pub struct Passwords {
    permits: Semaphore,
    /// A real hash of a random password, verified against when the username is unknown so that
    /// both cases cost the same time.
    dummy_hash: String,
}

impl Passwords {
    /// Creates a hasher that runs at most `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Self {
        let mut random = [0u8; 16];
        rand::rng().fill_bytes(&mut random);
        let dummy_hash = hash_now(&hex::encode(random)).expect("hashing a fresh password works");
        Passwords {
            permits: Semaphore::new(concurrency.max(1)),
            dummy_hash,
        }
    }

    /// Hashes `password` into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(move || hash_now(&password))
            .await
            .map_err(Error::internal)?
    }

    /// Checks `password` against `hash`; with no hash, burns the same time and answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let ok = tokio::task::spawn_blocking(move || {
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            Ok::<_, anyhow::Error>(
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::Internal)?;
        Ok(ok && known)
    }
}

fn hash_now(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| Error::internal(anyhow::anyhow!("{e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("argon2: {e}")))
}

/// The claims of a chatgate token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    /// The user's token version when the token was issued; a reset bumps it.
    ver: i64,
}

/// What a verified token says. Revocation still has to be checked against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The user the token was issued to.
    pub user_id: i64,
    /// The token's unique id, used to revoke it alone.
    pub jti: Arc<str>,
    /// The user's token version at issue.
    pub version: i64,
    /// Expiry, in Unix milliseconds.
    pub expires_at: i64,
}

/// Issues and verifies login tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: i64,
}

impl Tokens {
    /// Creates a token service with the given HMAC key.
    pub fn new(secret: &[u8], issuer: &str, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.algorithms = vec![jsonwebtoken::Algorithm::HS256];
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            ttl_secs: ttl_secs as i64,
        }
    }

    /// Signs a new token for `user_id` at token version `version`.
    pub fn issue(&self, user_id: i64, version: i64, now_ms: i64) -> Result<(String, TokenClaims)> {
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let now = now_ms / 1000;
        let claims = Claims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
            jti: hex::encode(jti),
            ver: version,
        };
        let token = encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(Error::internal)?;
        Ok((token, to_token_claims(claims)?))
    }

    /// Verifies signature, algorithm, issuer and times.
    pub fn verify(&self, token: &str) -> Result<TokenClaims> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::TokenInvalid)?;
        to_token_claims(data.claims)
    }
}

fn to_token_claims(claims: Claims) -> Result<TokenClaims> {
    Ok(TokenClaims {
        user_id: claims.sub.parse().map_err(|_| Error::TokenInvalid)?,
        jti: claims.jti.into(),
        version: claims.ver,
        expires_at: claims.exp.saturating_mul(1000),
    })
}

/// Returns the configured signing key, or the one kept in `data_dir/jwt.key`, creating it with
/// 256 random bits (and owner-only permissions) on first start.
pub fn load_or_create_key(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            write_private(&path, hex::encode(key).as_bytes())?;
            Ok(key.to_vec())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_rejections() {
        let tokens = Tokens::new(&[7u8; 32], "chatgate", 3600);
        let now = 1_700_000_000_000;
        let (token, claims) = tokens.issue(42, 3, chrono_now()).unwrap();
        assert_eq!(tokens.verify(&token).unwrap(), claims);
        assert_eq!(claims.user_id, 42);
        assert_eq!(claims.version, 3);

        let other_key = Tokens::new(&[8u8; 32], "chatgate", 3600);
        assert!(matches!(other_key.verify(&token), Err(Error::TokenInvalid)));
        let other_issuer = Tokens::new(&[7u8; 32], "someone-else", 3600);
        assert!(matches!(
            other_issuer.verify(&token),
            Err(Error::TokenInvalid)
        ));
        let (expired, _) = tokens.issue(42, 3, now - 10 * 3600 * 1000).unwrap();
        assert!(matches!(tokens.verify(&expired), Err(Error::TokenInvalid)));
    }

    fn chrono_now() -> i64 {
        crate::now_ms()
    }
}
