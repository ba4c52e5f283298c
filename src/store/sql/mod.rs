//! The store on SQL: one implementation for SQLite and PostgreSQL through sqlx's `Any` driver,
//! one file per family of the store's traits.
//!
//! The two backends differ only where SQL does: their schemas (`migrations/sqlite`,
//! `migrations/postgres`) and connection set-up ([`Backend`]). Queries are written once in the
//! dialect both accept: `$n` placeholders, `RETURNING`, `ON CONFLICT`, integer flags and
//! integer millisecond times.

mod append;
mod conversations;
mod feed;
mod files;
mod groups;
mod mentions;
mod messages;
mod rows;
mod statement;
mod tokens;
mod users;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;

use self::append::Appender;
use super::Store;
use crate::config::{Config, SqliteSync};
use crate::error::Result;

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
        if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres }
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
    /// Reads.
    pool: AnyPool,
    /// Writes: for SQLite one connection, for PostgreSQL the same pool.
    writer: AnyPool,
    /// Messages, stored by group commit on `writer`.
    appender: Appender,
    /// Which database it is.
    backend: Backend,
}

/// `$start, $start+1, ...` for `n` values: `Any` has no array binds, and its query builder
/// writes `?`, which PostgreSQL does not accept.
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Our own SQL text with numbered placeholders; never built from input.
fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

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
        let timeout = Duration::from_millis(config.db_timeout_ms);
        let pool_of = |size: u32| {
            AnyPoolOptions::new().max_connections(size).acquire_timeout(timeout).after_connect(
                move |conn, _meta| -> BoxFuture<'_, sqlx::Result<()>> {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // Set explicitly: through the `Any` driver's URL parsing sqlx leaves
                            // the rollback journal in place, which costs three fsyncs per commit
                            // (measured: ~500 commits/s). WAL with NORMAL costs none until a
                            // checkpoint.
                            let pragmas = format!(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;"
                            );
                            sqlx::raw_sql(sqlx::AssertSqlSafe(pragmas)).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                },
            )
        };
        let pool = pool_of(config.db_max_connections).connect_with(options.clone()).await?;
        backend.migrator().run(&pool).await?;
        // SQLite has one writer at a time. Writers contending on several connections wait in
        // SQLite's busy handler, which sleeps (1, 2, 5, 10... ms) between tries; on one writer
        // connection they queue in the pool instead and run back to back.
        let writer = match backend {
            Backend::Sqlite => pool_of(1).connect_with(options).await?,
            Backend::Postgres => pool.clone(),
        };
        Ok(SqlStore { pool, appender: Appender::start(writer.clone(), backend), writer, backend })
    }

    /// Runs `select` (whose `WHERE` ends in `IN (` + the placeholders `$first..`) over `ids`,
    /// after binding `leading`.
    async fn fetch_in(
        &self,
        select: &str,
        leading: &[i64],
        ids: impl ExactSizeIterator<Item = i64>,
    ) -> Result<Vec<AnyRow>> {
        if ids.len() == 0 {
            return Ok(Vec::new());
        }
        let text = format!("{select} IN ({})", placeholders(leading.len() + 1, ids.len()));
        let mut query = sqlx::query(sql(text));
        for value in leading.iter().copied().chain(ids) {
            query = query.bind(value);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use sqlx::Row;

    use super::*;

    async fn synchronous_of(flag: &str) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config::parse_from(["chatgate", "--data-dir", dir.path().to_str().unwrap(), "--sqlite-sync", flag]);
        let store = SqlStore::connect(&config).await.unwrap();
        // Every pooled connection, not just the first, must carry the setting.
        let mut modes = Vec::new();
        for _ in 0..3 {
            let mut conn = store.pool.acquire().await.unwrap();
            modes.push(
                sqlx::query("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap().try_get::<i64, _>(0).unwrap(),
            );
            let journal: String =
                sqlx::query("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap().try_get(0).unwrap();
            assert_eq!(journal, "wal");
            let fk: i64 = sqlx::query("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap().try_get(0).unwrap();
            assert_eq!(fk, 1);
        }
        assert!(modes.windows(2).all(|w| w[0] == w[1]), "{modes:?}");
        modes[0]
    }

    #[tokio::test]
    async fn sqlite_is_wal_with_the_configured_durability() {
        assert_eq!(synchronous_of("normal").await, 1);
        assert_eq!(synchronous_of("full").await, 2);
    }

    #[tokio::test]
    async fn pruning_revocations_uses_the_expiry_index() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse_from(["chatgate", "--data-dir", dir.path().to_str().unwrap()]);
        let store = SqlStore::connect(&config).await.unwrap();
        let plan: Vec<String> = sqlx::query("EXPLAIN QUERY PLAN DELETE FROM revoked_token WHERE expires_at < 1")
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String, _>("detail").unwrap())
            .collect();
        assert!(plan.iter().any(|step| step.contains("INDEX revoked_token_expires_at")), "{plan:?}");
    }
}
