//! [`UserStore`] on SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::feed::{self, Whom};
use super::rows::{self, USER_COLUMNS};
use super::{SqlStore, sql};
use crate::error::{Error, Result};
use crate::model::{Account, FeedEntry, FeedKind, LoginAttempt, LoginId, LoginRecord, Profile, User, UserId};
use crate::store::UserStore;

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|e| e.is_unique_violation())
}

impl SqlStore {
    async fn fetch_user(&self, id: UserId) -> Result<Option<User>> {
        let text = format!("SELECT {USER_COLUMNS} FROM users u JOIN profile p ON p.user_id = u.id WHERE u.id = $1");
        let row = sqlx::query(sql(text)).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::user).transpose()
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, username: &str, password_hash: &str, now: i64) -> Result<User> {
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (username, password_hash, token_version, created_at, updated_at) \
             VALUES ($1, $2, 0, $3, $3) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: UserId = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(e) if is_unique_violation(&e) => return Err(Error::UserExists),
            Err(e) => return Err(e.into()),
        };
        sqlx::query("INSERT INTO profile (user_id, updated_at) VALUES ($1, $2)")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(User { id, username: username.to_owned(), profile: Profile::default(), created_at: now })
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.fetch_user(id).await
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let text = format!(
            "SELECT {USER_COLUMNS}, u.password_hash, u.token_version \
             FROM users u JOIN profile p ON p.user_id = u.id WHERE lower(u.username) = lower($1)"
        );
        let Some(row) = sqlx::query(sql(text)).bind(username).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        Ok(Some(Account {
            user: rows::user(&row)?,
            password_hash: row.try_get("password_hash")?,
            token_version: row.try_get("token_version")?,
        }))
    }

    async fn feed_after(&self, user_id: UserId, after: i64, limit: i64) -> Result<(Vec<FeedEntry>, bool)> {
        let rows = sqlx::query(
            "SELECT pos, kind, subject FROM user_change WHERE user_id = $1 AND pos > $2 ORDER BY pos LIMIT $3",
        )
        .bind(user_id)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            let kind: String = row.try_get(1)?;
            if let Some(kind) = FeedKind::parse(&kind) {
                entries.push(FeedEntry { pos: row.try_get(0)?, kind, subject: row.try_get(2)? });
            }
        }
        Ok((entries, rows.len() as i64 > limit))
    }

    async fn update_profile(&self, user_id: UserId, profile: &Profile, now: i64) -> Result<User> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE profile SET nickname = $1, avatar = $2, gender = $3, birthday = $4, age = $5, \
             signature = $6, updated_at = $7 WHERE user_id = $8",
        )
        .bind(&profile.nickname)
        .bind(&profile.avatar)
        .bind(profile.gender.as_str())
        .bind(profile.birthday.as_deref())
        .bind(profile.age)
        .bind(&profile.signature)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        feed::record(&mut tx, self.backend, Whom::Users(&[user_id]), FeedKind::Profile, &user_id.to_string(), now)
            .await?;
        tx.commit().await?;
        self.fetch_user(user_id).await?.ok_or(Error::NotFound)
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<User>> {
        let select = format!("SELECT {USER_COLUMNS} FROM users u JOIN profile p ON p.user_id = u.id WHERE u.id");
        self.fetch_in(&select, &[], ids.iter().map(|id| id.0)).await?.iter().map(rows::user).collect()
    }

    async fn existing_users(&self, ids: &[UserId]) -> Result<Vec<UserId>> {
        let rows = self.fetch_in("SELECT id FROM users WHERE id", &[], ids.iter().map(|id| id.0)).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn record_login(&self, attempt: &LoginAttempt) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_login_log (user_id, username, at, ip, user_agent, transport, success) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(attempt.user_id)
        .bind(&attempt.username)
        .bind(attempt.at)
        .bind(&attempt.origin.ip)
        .bind(&attempt.origin.user_agent)
        .bind(attempt.origin.transport.as_str())
        .bind(attempt.success as i64)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn login_log(&self, user_id: UserId, before: Option<LoginId>, limit: i64) -> Result<Vec<LoginRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, ip, user_agent, transport, success FROM user_login_log \
             WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LoginRecord {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    ip: row.try_get("ip")?,
                    user_agent: row.try_get("user_agent")?,
                    transport: row.try_get("transport")?,
                    success: row.try_get::<i64, _>("success")? != 0,
                })
            })
            .collect()
    }

    async fn create_reset(&self, user_id: UserId, token_hash: &str, now: i64, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO password_reset (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn reset_usable(&self, token_hash: &str, now: i64) -> Result<bool> {
        let found =
            sqlx::query("SELECT 1 FROM password_reset WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2")
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn consume_reset(&self, token_hash: &str, password_hash: &str, now: i64) -> Result<Option<UserId>> {
        let mut tx = self.writer.begin().await?;
        // Writing first takes the write lock at once, so two spends of one secret serialize and
        // only the first finds it unused.
        let spent = sqlx::query(
            "UPDATE password_reset SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = spent else {
            return Ok(None);
        };
        let user_id: UserId = row.try_get(0)?;
        sqlx::query("UPDATE password_reset SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, token_version = token_version + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(password_hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }
}
