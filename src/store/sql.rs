//! [`Store`] on SQL, one implementation for SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! The two backends differ only where SQL does: their schemas (`migrations/sqlite`,
//! `migrations/postgres`) and connection set-up ([`Backend`]). Queries are written once in the
//! dialect both accept: `$n` placeholders, `RETURNING`, `ON CONFLICT`, integer flags and
//! integer millisecond times.

use std::collections::HashMap;
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
use crate::group::{Group, GroupPatch, JoinPolicy, Member, NewGroup, Role, Standing};
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
const GROUP_COLUMNS: &str = "g.id, g.name, g.avatar, g.intro, g.notice, g.owner_id, g.join_policy, g.member_count, \
                             g.max_members, g.muted_until, g.created_at, g.updated_at";

/// `$start, $start+1, ...` for `n` values: `Any` has no array binds, and its query builder
/// writes `?`, which PostgreSQL does not accept.
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
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

    async fn fetch_group<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
        executor: E,
        group_id: i64,
    ) -> Result<Option<Group>> {
        let row = sqlx::query(sql(format!(
            "SELECT {GROUP_COLUMNS} FROM chat_group g WHERE g.id = $1 AND g.dismissed_at IS NULL"
        )))
        .bind(group_id)
        .fetch_optional(executor)
        .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    /// Bumps `updated_at` and returns the group, inside `tx`.
    async fn touch(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        group_id: i64,
        now: i64,
    ) -> Result<Group> {
        sqlx::query("UPDATE chat_group SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(group_id)
            .execute(&mut **tx)
            .await?;
        Self::fetch_group(&mut **tx, group_id)
            .await?
            .ok_or(Error::NotFound)
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

fn group_from_row(row: &AnyRow) -> Result<Group> {
    let policy: String = row.try_get("join_policy")?;
    Ok(Group {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        avatar: row.try_get("avatar")?,
        intro: row.try_get("intro")?,
        notice: row.try_get("notice")?,
        owner_id: row.try_get("owner_id")?,
        join_policy: JoinPolicy::parse(&policy).unwrap_or(JoinPolicy::Invite),
        member_count: row.try_get("member_count")?,
        max_members: row.try_get("max_members")?,
        muted_until: row.try_get("muted_until")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn standing_from_row(row: &AnyRow) -> Result<Standing> {
    let role: String = row.try_get("role")?;
    Ok(Standing {
        role: Role::parse(&role)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("bad role {role}")))?,
        muted_until: row.try_get("muted_until")?,
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

    async fn existing_users(&self, ids: &[i64]) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let text = format!(
            "SELECT id FROM users WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(sql(text));
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn create_group(
        &self,
        new: &NewGroup,
        owner: i64,
        members: &[i64],
        now: i64,
    ) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO chat_group (name, avatar, intro, notice, owner_id, join_policy, member_count, max_members, \
             muted_until, created_at, updated_at) VALUES ($1, $2, $3, '', $4, $5, $6, $7, 0, $8, $8) RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.avatar)
        .bind(&new.intro)
        .bind(owner)
        .bind(new.join_policy.as_str())
        .bind(members.len() as i64 + 1)
        .bind(new.max_members)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let group_id: i64 = row.try_get(0)?;
        let everyone: Vec<(i64, Role)> = std::iter::once((owner, Role::Owner))
            .chain(members.iter().map(|m| (*m, Role::Member)))
            .collect();
        let values = (0..everyone.len())
            .map(|i| format!("($1, ${}, ${}, $2)", 3 + 2 * i, 4 + 2 * i))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = sqlx::query(sql(format!(
            "INSERT INTO group_member (group_id, user_id, role, joined_at) VALUES {values}"
        )))
        .bind(group_id)
        .bind(now);
        for (user_id, role) in &everyone {
            insert = insert.bind(*user_id).bind(role.as_str());
        }
        insert.execute(&mut *tx).await?;
        let group = Self::fetch_group(&mut *tx, group_id)
            .await?
            .ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(group)
    }

    async fn group(&self, group_id: i64) -> Result<Option<Group>> {
        Self::fetch_group(&self.pool, group_id).await
    }

    async fn standing(&self, group_id: i64, user_id: i64) -> Result<Option<Standing>> {
        let row = sqlx::query(
            "SELECT role, muted_until FROM group_member WHERE group_id = $1 AND user_id = $2",
        )
        .bind(group_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(standing_from_row).transpose()
    }

    async fn standings(&self, group_id: i64, user_ids: &[i64]) -> Result<HashMap<i64, Standing>> {
        if user_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let text = format!(
            "SELECT user_id, role, muted_until FROM group_member WHERE group_id = $1 AND user_id IN ({})",
            placeholders(2, user_ids.len())
        );
        let mut query = sqlx::query(sql(text)).bind(group_id);
        for id in user_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_id")?, standing_from_row(r)?)))
            .collect()
    }

    async fn member_ids(&self, group_id: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT user_id FROM group_member WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn add_members(&self, group_id: i64, user_ids: &[i64], now: i64) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        let values = (0..user_ids.len())
            .map(|i| format!("($1, ${}, 'member', $2)", 3 + i))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = sqlx::query(sql(format!(
            "INSERT INTO group_member (group_id, user_id, role, joined_at) VALUES {values} \
             ON CONFLICT (group_id, user_id) DO NOTHING"
        )))
        .bind(group_id)
        .bind(now);
        for id in user_ids {
            insert = insert.bind(*id);
        }
        let added = insert.execute(&mut *tx).await?.rows_affected() as i64;
        // The conditional update is what holds the cap: concurrent adds serialize on the group
        // row, and each re-checks the count the previous one committed.
        let grown = sqlx::query(
            "UPDATE chat_group SET member_count = member_count + $1, updated_at = $2 \
             WHERE id = $3 AND dismissed_at IS NULL AND member_count + $1 <= max_members",
        )
        .bind(added)
        .bind(now)
        .bind(group_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if grown == 0 {
            return Err(match Self::fetch_group(&mut *tx, group_id).await? {
                Some(_) => Error::GroupFull,
                None => Error::NotFound,
            });
        }
        let group = Self::fetch_group(&mut *tx, group_id)
            .await?
            .ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(group)
    }

    async fn remove_members(&self, group_id: i64, user_ids: &[i64], now: i64) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        let text = format!(
            "DELETE FROM group_member WHERE group_id = $1 AND role <> 'owner' AND user_id IN ({})",
            placeholders(2, user_ids.len())
        );
        let mut delete = sqlx::query(sql(text)).bind(group_id);
        for id in user_ids {
            delete = delete.bind(*id);
        }
        let removed = delete.execute(&mut *tx).await?.rows_affected() as i64;
        sqlx::query("UPDATE chat_group SET member_count = member_count - $1 WHERE id = $2")
            .bind(removed)
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        let group = Self::touch(&mut tx, group_id, now).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn update_group(&self, group_id: i64, patch: &GroupPatch, now: i64) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE chat_group SET name = COALESCE($1, name), avatar = COALESCE($2, avatar), intro = COALESCE($3, intro), \
             notice = COALESCE($4, notice), join_policy = COALESCE($5, join_policy) WHERE id = $6",
        )
        .bind(patch.name.as_deref())
        .bind(patch.avatar.as_deref())
        .bind(patch.intro.as_deref())
        .bind(patch.notice.as_deref())
        .bind(patch.join_policy.map(JoinPolicy::as_str))
        .bind(group_id)
        .execute(&mut *tx)
        .await?;
        let group = Self::touch(&mut tx, group_id, now).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn set_role(&self, group_id: i64, user_id: i64, role: Role, now: i64) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE group_member SET role = $1 WHERE group_id = $2 AND user_id = $3 AND role <> 'owner'")
            .bind(role.as_str())
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let group = Self::touch(&mut tx, group_id, now).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn transfer(&self, group_id: i64, from: i64, to: i64, now: i64) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        for (user_id, role) in [(from, Role::Admin), (to, Role::Owner)] {
            sqlx::query("UPDATE group_member SET role = $1 WHERE group_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(group_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE chat_group SET owner_id = $1 WHERE id = $2")
            .bind(to)
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        let group = Self::touch(&mut tx, group_id, now).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn dismiss(&self, group_id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE chat_group SET dismissed_at = $1, updated_at = $1 WHERE id = $2 AND dismissed_at IS NULL")
            .bind(now)
            .bind(group_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn mute_group(&self, group_id: i64, until: i64, now: i64) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE chat_group SET muted_until = $1 WHERE id = $2")
            .bind(until)
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        let group = Self::touch(&mut tx, group_id, now).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn mute_member(
        &self,
        group_id: i64,
        user_id: i64,
        until: i64,
        now: i64,
    ) -> Result<Group> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE group_member SET muted_until = $1 WHERE group_id = $2 AND user_id = $3",
        )
        .bind(until)
        .bind(group_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        let group = Self::touch(&mut tx, group_id, now).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn groups_of(&self, user_id: i64) -> Result<Vec<Group>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {GROUP_COLUMNS} FROM chat_group g JOIN group_member m ON m.group_id = g.id \
             WHERE m.user_id = $1 AND g.dismissed_at IS NULL ORDER BY g.updated_at DESC, g.id DESC"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    async fn members(&self, group_id: i64, after: Option<i64>, limit: i64) -> Result<Vec<Member>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS}, m.role, m.joined_at, m.muted_until FROM group_member m \
             JOIN users u ON u.id = m.user_id JOIN profile p ON p.user_id = u.id \
             WHERE m.group_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3"
        )))
        .bind(group_id)
        .bind(after.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let standing = standing_from_row(row)?;
                Ok(Member {
                    user: user_from_row(row)?.public(),
                    role: standing.role,
                    joined_at: row.try_get("joined_at")?,
                    muted_until: standing.muted_until,
                })
            })
            .collect()
    }
}
