//! [`TokenStore`] on SQL.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, placeholders, sql};
use crate::error::Result;
use crate::model::{Ticket, TokenState, UserId, now_ms};
use crate::store::TokenStore;

/// Tokens checked per pair of queries: well under SQLite's and PostgreSQL's parameter limits.
const BATCH: usize = 500;

#[async_trait]
impl TokenStore for SqlStore {
    async fn token_state(&self, user_id: UserId, jti: &str) -> Result<Option<TokenState>> {
        let row = sqlx::query(
            "SELECT u.token_version, (SELECT COUNT(*) FROM revoked_token r WHERE r.jti = $2) AS revoked \
             FROM users u WHERE u.id = $1",
        )
        .bind(user_id)
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok(TokenState { version: row.try_get(0)?, revoked: row.try_get::<i64, _>(1)? > 0 })).transpose()
    }

    async fn token_states(&self, tokens: &[(UserId, Arc<str>)]) -> Result<Vec<Option<TokenState>>> {
        let mut versions: HashMap<UserId, i64> = HashMap::new();
        let mut revoked: HashSet<String> = HashSet::new();
        for chunk in tokens.chunks(BATCH) {
            let users: BTreeSet<UserId> = chunk.iter().map(|(user, _)| *user).collect();
            let text = format!("SELECT id, token_version FROM users WHERE id IN ({})", placeholders(1, users.len()));
            let mut query = sqlx::query(sql(text));
            for user in &users {
                query = query.bind(*user);
            }
            for row in query.fetch_all(&self.pool).await? {
                versions.insert(row.try_get(0)?, row.try_get(1)?);
            }
            let text = format!("SELECT jti FROM revoked_token WHERE jti IN ({})", placeholders(1, chunk.len()));
            let mut query = sqlx::query(sql(text));
            for (_, jti) in chunk {
                query = query.bind(jti.to_string());
            }
            for row in query.fetch_all(&self.pool).await? {
                revoked.insert(row.try_get(0)?);
            }
        }
        Ok(tokens
            .iter()
            .map(|(user, jti)| {
                versions.get(user).map(|&version| TokenState { version, revoked: revoked.contains(&**jti) })
            })
            .collect())
    }

    async fn create_ticket(&self, ticket: &Ticket) -> Result<()> {
        sqlx::query("DELETE FROM ws_ticket WHERE expires_at < $1").bind(now_ms()).execute(&self.writer).await?;
        sqlx::query(
            "INSERT INTO ws_ticket (digest, user_id, jti, token_version, token_expires_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&ticket.digest)
        .bind(ticket.user_id)
        .bind(&*ticket.jti)
        .bind(ticket.token_version)
        .bind(ticket.token_expires_at)
        .bind(ticket.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn take_ticket(&self, digest: &str) -> Result<Option<Ticket>> {
        let row = sqlx::query(
            "DELETE FROM ws_ticket WHERE digest = $1 \
             RETURNING digest, user_id, jti, token_version, token_expires_at, expires_at",
        )
        .bind(digest)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|row| {
            Ok(Ticket {
                digest: row.try_get(0)?,
                user_id: row.try_get(1)?,
                jti: row.try_get::<String, _>(2)?.into(),
                token_version: row.try_get(3)?,
                token_expires_at: row.try_get(4)?,
                expires_at: row.try_get(5)?,
            })
        })
        .transpose()
    }

    async fn revoke_token(&self, jti: &str, user_id: UserId, expires_at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO revoked_token (jti, user_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(user_id)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        // A revocation outliving its token guards nothing; prune those while we are here.
        sqlx::query("DELETE FROM revoked_token WHERE expires_at < $1").bind(now_ms()).execute(&self.writer).await?;
        Ok(())
    }
}
