//! The user domain: accounts, profiles, login history, password reset, token revocation.
//!
//! Knows nothing of sockets or wire types. Invariants:
//! - A wrong password and an unknown username are indistinguishable, in answer and in time.
//! - Every login or registration attempt is written to the login log.
//! - A reset secret is random (256 bits), stored only as its SHA-256, single-use and short-lived,
//!   and is delivered to the user's notification channel, never to the caller.
//! - A token is accepted only if its signature holds, it is not revoked by logout, and its
//!   token version matches the user's (a reset bumps the version).
//! - A socket ticket stands for the token it was asked with: it opens one socket within 30 s,
//!   on any node, and the session it opens is that token's, checked as the token would be.

use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::auth::{Lane, Passwords, TokenClaims, Tokens};
use super::limits::Limits;
use super::ports::{Events, Notices};
use super::text::{checked_text, checked_url};
use crate::error::{Error, Result};
use crate::model::{
    Event, Identity, KickReason, LoginAttempt, LoginId, LoginRecord, Lookup, Origin, ProfilePatch, ResetNotice, Ticket,
    User, UserId, now_ms,
};
use crate::store::Store;

/// How long a reset secret stays usable.
const RESET_TTL_MS: i64 = 30 * 60 * 1000;
/// How long a socket ticket stays usable.
const TICKET_TTL_MS: i64 = 30 * 1000;
/// Largest page of login history.
const MAX_LOG_PAGE: i64 = 100;

/// The user domain's operations.
pub struct Users {
    store: Arc<dyn Store>,
    passwords: Passwords,
    tokens: Tokens,
    notices: Arc<dyn Notices>,
    events: Arc<dyn Events>,
    limits: Arc<Limits>,
    public_url: String,
}

impl Users {
    /// Wires the user domain.
    pub fn new(
        store: Arc<dyn Store>,
        passwords: Passwords,
        tokens: Tokens,
        notices: Arc<dyn Notices>,
        events: Arc<dyn Events>,
        limits: Arc<Limits>,
        public_url: String,
    ) -> Self {
        Users { store, passwords, tokens, notices, events, limits, public_url }
    }

    /// Creates an account and logs it in.
    pub async fn register(&self, username: &str, password: String, origin: Origin) -> Result<(String, Identity, User)> {
        validate_username(username)?;
        validate_password(&password)?;
        // A taken name is refused before any hashing; creating the user still decides a race.
        if self.store.account_by_username(username).await?.is_some() {
            return Err(Error::UserExists);
        }
        let hash = self.passwords.hash(password).await?;
        let now = now_ms();
        let user = self.store.create_user(username, &hash, now).await?;
        self.log_attempt(Some(user.id), username, origin, true).await?;
        let (token, claims) = self.tokens.issue(user.id, 0, now)?;
        Ok((token, identity(claims), user))
    }

    /// Checks a username and password and issues a token.
    /// The caller has counted the attempt against the login limits already (the route table's
    /// `Login` class does it before anything is parsed or hashed).
    pub async fn login(&self, username: &str, password: String, origin: Origin) -> Result<(String, Identity, User)> {
        // Malformed input cannot match any account; answer as for a wrong password.
        let account = if is_valid_username(username) && password_len_ok(&password) {
            self.store.account_by_username(username).await?
        } else {
            None
        };
        let lane = if self.limits.is_suspect(&origin.ip) { Lane::Suspect } else { Lane::Clean };
        let ok = self.passwords.verify(password, account.as_ref().map(|a| a.password_hash.clone()), lane).await?;
        if !ok {
            self.limits.login_failed(&origin.ip);
        }
        let user_id = account.as_ref().map(|a| a.user.id);
        self.log_attempt(user_id, username, origin, ok).await?;
        match account {
            Some(account) if ok => {
                let (token, claims) = self.tokens.issue(account.user.id, account.token_version, now_ms())?;
                Ok((token, identity(claims), account.user))
            }
            _ => Err(Error::InvalidCredentials),
        }
    }

    /// A single-use ticket that opens one socket as `who`'s token, and its expiry (Unix ms):
    /// what a browser, which cannot set a header on a WebSocket handshake, puts in the URL.
    pub async fn issue_ticket(&self, who: &Identity) -> Result<(String, i64)> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let ticket = hex::encode(raw);
        let expires_at = now_ms() + TICKET_TTL_MS;
        let stored = Ticket {
            digest: sha256_hex(&ticket),
            user_id: who.user_id,
            jti: who.jti.clone(),
            token_version: who.version,
            token_expires_at: who.expires_at,
            expires_at,
        };
        self.store.create_ticket(&stored).await?;
        Ok((ticket, expires_at))
    }

    /// Spends a ticket: the identity of the token it stands for, if the ticket is unspent and
    /// unexpired and that token is still valid.
    pub async fn redeem_ticket(&self, ticket: &str) -> Result<Identity> {
        if ticket.len() != 64 || !ticket.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::TicketInvalid);
        }
        let stored = self.store.take_ticket(&sha256_hex(ticket)).await?.ok_or(Error::TicketInvalid)?;
        let now = now_ms();
        if stored.expires_at <= now || stored.token_expires_at <= now {
            return Err(Error::TicketInvalid);
        }
        let identity = Identity {
            user_id: stored.user_id,
            jti: stored.jti,
            expires_at: stored.token_expires_at,
            version: stored.token_version,
            session: None,
        };
        if self.still_current(&identity).await? { Ok(identity) } else { Err(Error::TicketInvalid) }
    }

    /// Whether the token `identity` stands for is neither logged out nor older than its user's
    /// last password reset.
    async fn still_current(&self, identity: &Identity) -> Result<bool> {
        let state = self.store.token_state(identity.user_id, &identity.jti).await?;
        Ok(state.is_some_and(|state| !state.revoked && state.version == identity.version))
    }

    /// Verifies a token and checks it is not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        let claims = self.tokens.verify(token)?;
        // The token format counts whole seconds; sessions end at the exact millisecond, and so
        // does every other use of the token.
        if claims.expires_at <= now_ms() {
            return Err(Error::TokenInvalid);
        }
        let identity = identity(claims);
        if self.still_current(&identity).await? { Ok(identity) } else { Err(Error::TokenInvalid) }
    }

    /// Ends the caller's token and every session it opened.
    pub async fn logout(&self, who: &Identity) -> Result<()> {
        self.store.revoke_token(&who.jti, who.user_id, who.expires_at).await?;
        self.events.publish(Event::Kick {
            user_id: who.user_id,
            jti: Some(who.jti.clone()),
            reason: KickReason::Logout,
        });
        Ok(())
    }

    /// Starts a password reset ("forgot password"). Answers the same whether or not the user
    /// exists; the secret goes to the notifier in the background.
    pub async fn forgot_password(&self, username: &str) -> Result<String> {
        let callback = format!("{}/user/resetPassword", self.public_url);
        if !is_valid_username(username) {
            return Ok(callback);
        }
        let Some(account) = self.store.account_by_username(username).await? else {
            return Ok(callback);
        };
        // Past the limit the answer is the same, and nothing is sent: the caller learns
        // nothing, and the account's owner is not flooded.
        if !self.limits.reset(account.user.id) {
            return Ok(callback);
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        let now = now_ms();
        let expires_at = now + RESET_TTL_MS;
        self.store.create_reset(account.user.id, &sha256_hex(&secret), now, expires_at).await?;
        let notice = ResetNotice {
            username: account.user.username.clone(),
            user_id: account.user.id,
            reset_url: format!("{}/reset-password#token={secret}", self.public_url),
            reset_token: secret,
            expires_at,
        };
        self.notices.send_reset(notice);
        Ok(callback)
    }

    /// Spends a reset secret: sets the new password and revokes every token of the user.
    pub async fn reset_password(&self, secret: &str, password: String) -> Result<()> {
        validate_password(&password)?;
        if secret.is_empty() || secret.len() > 256 {
            return Err(Error::ResetTokenInvalid);
        }
        // Hashing comes last: a bogus secret costs one indexed read, never an argon2 run.
        let digest = sha256_hex(secret);
        if !self.store.reset_usable(&digest, now_ms()).await? {
            return Err(Error::ResetTokenInvalid);
        }
        let hash = self.passwords.hash(password).await?;
        let user_id = self.store.consume_reset(&digest, &hash, now_ms()).await?.ok_or(Error::ResetTokenInvalid)?;
        self.events.publish(Event::Kick { user_id, jti: None, reason: KickReason::PasswordReset });
        Ok(())
    }

    /// A user's profile: the caller's own in full, anyone else's public part.
    pub async fn info(&self, who: &Identity, lookup: Lookup) -> Result<User> {
        let (user, own) = match lookup {
            Lookup::Me => (self.store.user_by_id(who.user_id).await?, true),
            Lookup::Id(id) => (self.store.user_by_id(id).await?, id == who.user_id),
            Lookup::Username(name) => {
                let user = if is_valid_username(&name) {
                    self.store.account_by_username(&name).await?.map(|a| a.user)
                } else {
                    None
                };
                let own = user.as_ref().is_some_and(|u| u.id == who.user_id);
                (user, own)
            }
        };
        let user = user.ok_or(Error::NotFound)?;
        Ok(if own { user } else { user.public() })
    }

    /// Changes the caller's profile.
    pub async fn update_profile(&self, who: &Identity, patch: ProfilePatch) -> Result<User> {
        let current = self.store.user_by_id(who.user_id).await?.ok_or(Error::TokenInvalid)?;
        let mut profile = current.profile;
        if let Some(nickname) = patch.nickname {
            profile.nickname = checked_text("nickname", nickname, 64)?;
        }
        if let Some(avatar) = patch.avatar {
            profile.avatar = checked_url("avatar", avatar)?;
        }
        if let Some(gender) = patch.gender {
            profile.gender = gender;
        }
        if let Some(birthday) = patch.birthday {
            profile.birthday = birthday.map(checked_birthday).transpose()?;
        }
        if let Some(age) = patch.age {
            if age.is_some_and(|a| !(0..=150).contains(&a)) {
                return Err(Error::validation("age", "age must be between 0 and 150"));
            }
            profile.age = age;
        }
        if let Some(signature) = patch.signature {
            profile.signature = checked_text("signature", signature, 256)?;
        }
        self.store.update_profile(who.user_id, &profile, now_ms()).await
    }

    /// The caller's login history, newest first.
    pub async fn login_log(
        &self,
        who: &Identity,
        before: Option<LoginId>,
        limit: Option<i64>,
    ) -> Result<(Vec<LoginRecord>, Option<LoginId>)> {
        let limit = limit.unwrap_or(20);
        if !(1..=MAX_LOG_PAGE).contains(&limit) {
            return Err(Error::validation("limit", format!("limit must be between 1 and {MAX_LOG_PAGE}")));
        }
        let mut rows = self.store.login_log(who.user_id, before, limit + 1).await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok((rows, next))
    }

    async fn log_attempt(&self, user_id: Option<UserId>, username: &str, origin: Origin, success: bool) -> Result<()> {
        let attempt = LoginAttempt {
            user_id,
            username: truncate(username, 64),
            at: now_ms(),
            origin: Origin {
                ip: truncate(&origin.ip, 64),
                user_agent: truncate(&origin.user_agent, 256),
                transport: origin.transport,
            },
            success,
        };
        self.store.record_login(&attempt).await
    }
}

fn identity(claims: TokenClaims) -> Identity {
    Identity {
        user_id: claims.user_id,
        jti: claims.jti,
        expires_at: claims.expires_at,
        version: claims.version,
        session: None,
    }
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max_chars).collect()
}

fn is_valid_username(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn password_len_ok(password: &str) -> bool {
    (8..=128).contains(&password.chars().count())
}

fn validate_username(name: &str) -> Result<()> {
    if is_valid_username(name) {
        Ok(())
    } else {
        Err(Error::validation("username", "username must be 3 to 32 letters, digits, '_', '.' or '-'"))
    }
}

fn validate_password(password: &str) -> Result<()> {
    if !password_len_ok(password) {
        return Err(Error::validation("password", "password must be 8 to 128 characters"));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::validation("password", "password must not contain control characters"));
    }
    Ok(())
}

fn checked_birthday(value: String) -> Result<String> {
    let bad = || Error::validation("birthday", "birthday must be a real date as YYYY-MM-DD");
    let b = value.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| {
        value[r].parse::<u32>().ok().filter(|_| b.iter().all(|c| c.is_ascii_digit() || *c == b'-'))
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(bad());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1900..=2100).contains(&y) || d == 0 || d > days {
        return Err(bad());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(is_valid_username("alice_01.x-y"));
        assert!(!is_valid_username("al"));
        assert!(!is_valid_username(&"a".repeat(33)));
        assert!(!is_valid_username("al ice"));
        assert!(!is_valid_username("ålice"));
    }

    #[test]
    fn birthdays() {
        assert!(checked_birthday("2000-02-29".into()).is_ok());
        assert!(checked_birthday("1900-02-29".into()).is_err());
        assert!(checked_birthday("2001-13-01".into()).is_err());
        assert!(checked_birthday("2001-1-01".into()).is_err());
        assert!(checked_birthday("+001-01-01".into()).is_err());
    }
}
