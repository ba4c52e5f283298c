//! [`TokenStore`] on SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use crate::error::Result;
use crate::model::{TokenState, UserId, now_ms};
use crate::store::TokenStore;

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
