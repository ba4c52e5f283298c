//! [`Store`] on SQL, one implementation for SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! The two backends differ only where SQL does: their schemas (`migrations/sqlite`,
//! `migrations/postgres`) and connection set-up ([`Backend`]). Queries are written once in the
//! dialect both accept: `$n` placeholders, `RETURNING`, `ON CONFLICT`, integer flags and
//! integer millisecond times.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

use super::{Store, TokenState};
use crate::config::{Config, SqliteSync};
use crate::error::{Error, Result};
use crate::user::{Account, Gender, LoginAttempt, LoginRecord, Profile, User};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The database behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, WAL mode.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    fn from_url(url: &str) -> Backend {
        if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// The SQL store.
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

const USER_COLUMNS: &str = "u.id, u.username, u.created_at, p.nickname, p.avatar, p.gender, p.birthday, p.age, p.signature";

impl SqlStore {
    /// Connects, applies pending migrations and returns the store.
    pub async fn connect(config: &Config) -> anyhow::Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let url = config.database_url();
        let backend = Backend::from_url(&url);
        let synchronous = match config.sqlite_sync {
            SqliteSync::Normal => "NORMAL",
            SqliteSync::Full => "FULL",
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| -> BoxFuture<'_, sqlx::Result<()>> {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // sqlx's SQLite defaults already give WAL, foreign keys and a 5 s busy
                        // timeout; durability is ours to choose.
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "PRAGMA synchronous = {synchronous}"
                        )))
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        backend.migrator().run(&pool).await?;
        Ok(SqlStore { pool, backend })
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn fetch_user(&self, id: i64) -> Result<Option<User>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN profile p ON p.user_id = u.id WHERE u.id = $1"
        ));
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    let gender: String = row.try_get("gender")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        created_at: row.try_get("created_at")?,
        profile: Profile {
            nickname: row.try_get("nickname")?,
            avatar: row.try_get("avatar")?,
            gender: Gender::parse(&gender).unwrap_or_default(),
            birthday: row.try_get("birthday")?,
            age: row.try_get("age")?,
            signature: row.try_get("signature")?,
        },
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, username: &str, password_hash: &str, now: i64) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (username, password_hash, token_version, created_at, updated_at) \
             VALUES ($1, $2, 0, $3, $3) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
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
        Ok(User {
            id,
            username: username.to_owned(),
            profile: Profile::default(),
            created_at: now,
        })
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        self.fetch_user(id).await
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, u.password_hash, u.token_version \
             FROM users u JOIN profile p ON p.user_id = u.id WHERE u.username = $1"
        ));
        let Some(row) = sqlx::query(sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Account {
            user: user_from_row(&row)?,
            password_hash: row.try_get("password_hash")?,
            token_version: row.try_get("token_version")?,
        }))
    }

    async fn update_profile(&self, user_id: i64, profile: &Profile, now: i64) -> Result<User> {
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
        .execute(&self.pool)
        .await?;
        self.fetch_user(user_id).await?.ok_or(Error::NotFound)
    }

    async fn token_state(&self, user_id: i64, jti: &str) -> Result<Option<TokenState>> {
        let row = sqlx::query(
            "SELECT u.token_version, (SELECT COUNT(*) FROM revoked_token r WHERE r.jti = $2) AS revoked \
             FROM users u WHERE u.id = $1",
        )
        .bind(user_id)
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TokenState {
                version: row.try_get(0)?,
                revoked: row.try_get::<i64, _>(1)? > 0,
            })
        })
        .transpose()
    }

    async fn revoke_token(&self, jti: &str, user_id: i64, expires_at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO revoked_token (jti, user_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(user_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        // A revocation outliving its token guards nothing; prune those while we are here.
        sqlx::query("DELETE FROM revoked_token WHERE expires_at < $1")
            .bind(crate::now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn login_log(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LoginRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, ip, user_agent, transport, success FROM user_login_log \
             WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before.unwrap_or(i64::MAX))
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

    async fn create_reset(
        &self,
        user_id: i64,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO password_reset (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consume_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
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
        let user_id: i64 = row.try_get(0)?;
        sqlx::query(
            "UPDATE password_reset SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        )
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
