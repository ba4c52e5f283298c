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
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

use super::append::Appender;
use super::{CommitHook, FileMeta, Store, TokenState};
use crate::config::{Config, SqliteSync};
use crate::conversation::{ConversationPatch, ConversationState};
use crate::error::{Error, Result};
use crate::group::{Group, GroupPatch, JoinPolicy, Member, NewGroup, Role, Standing};
use crate::message::{ChatType, Message, NewMessage, Status, group_conversation};
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
}

const USER_COLUMNS: &str =
    "u.id, u.username, u.created_at, p.nickname, p.avatar, p.gender, p.birthday, p.age, p.signature";
const GROUP_COLUMNS: &str = "g.id, g.name, g.avatar, g.intro, g.notice, g.owner_id, g.join_policy, g.member_count, \
                             g.max_members, g.muted_until, g.created_at, g.updated_at";

pub(super) const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.seq, m.chat_type, m.sender_id, m.recipient, m.kind, m.content, \
                               m.client_msg_id, m.sent_at, m.status";
const STATE_SELECT: &str = "SELECT c.id, c.chat_type, c.group_id, c.last_seq, c.last_message_id, c.updated_at, \
     cm.read_seq, cm.pinned, cm.muted, cm.hidden, cm.draft, \
     (SELECT COUNT(*) FROM message m WHERE m.conversation_id = c.id AND m.seq > cm.read_seq \
        AND m.sender_id <> cm.user_id AND m.status = 'normal' AND m.kind <> 'system') AS unread \
     FROM conversation_member cm JOIN conversation c ON c.id = cm.conversation_id WHERE cm.user_id = $1";

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
        Ok(SqlStore { pool, appender: Appender::start(writer.clone(), backend), writer })
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

    /// Gives users their state of a conversation, reading from its current last seq: members
    /// who join a group later have no unread backlog.
    async fn add_states(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        conversation_id: &str,
        user_ids: &[i64],
        now: i64,
    ) -> Result<()> {
        let text = format!(
            "INSERT INTO conversation_member (conversation_id, user_id, read_seq, updated_at) \
             SELECT c.id, u.id, c.last_seq, $2 FROM users u JOIN conversation c ON c.id = $1 WHERE u.id IN ({}) \
             ON CONFLICT (conversation_id, user_id) DO NOTHING",
            placeholders(3, user_ids.len())
        );
        let mut insert = sqlx::query(sql(text)).bind(conversation_id).bind(now);
        for id in user_ids {
            insert = insert.bind(*id);
        }
        insert.execute(&mut **tx).await?;
        Ok(())
    }

    /// Runs one change to a group and bumps its `updated_at`, in one transaction.
    async fn change_group(
        &self,
        group_id: i64,
        now: i64,
        change: sqlx::query::Query<'_, sqlx::Any, AnyArguments>,
    ) -> Result<Group> {
        let mut tx = self.writer.begin().await?;
        change.execute(&mut *tx).await?;
        let group = Self::touch(&mut tx, group_id, now).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Bumps `updated_at` and returns the group, inside `tx`.
    async fn touch(tx: &mut sqlx::Transaction<'_, sqlx::Any>, group_id: i64, now: i64) -> Result<Group> {
        sqlx::query("UPDATE chat_group SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(group_id)
            .execute(&mut **tx)
            .await?;
        Self::fetch_group(&mut **tx, group_id).await?.ok_or(Error::NotFound)
    }

    /// Runs `select` (whose `WHERE` ends in `IN (` + the placeholders `$first..`) over `ids`.
    async fn fetch_in(&self, select: &str, first: usize, leading: &[i64], ids: &[i64]) -> Result<Vec<AnyRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::query(sql(format!("{select} IN ({})", placeholders(first, ids.len()))));
        for value in leading.iter().chain(ids) {
            query = query.bind(*value);
        }
        Ok(query.fetch_all(&self.pool).await?)
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

pub(super) fn message_from_row(row: &AnyRow) -> Result<Message> {
    let chat_type: String = row.try_get("chat_type")?;
    let status: String = row.try_get("status")?;
    let content: String = row.try_get("content")?;
    Ok(Message {
        id: row.try_get("id")?,
        conversation_id: row.try_get("conversation_id")?,
        seq: row.try_get("seq")?,
        chat_type: ChatType::parse(&chat_type).unwrap_or(ChatType::Single),
        from: row.try_get("sender_id")?,
        to: row.try_get("recipient")?,
        kind: row.try_get("kind")?,
        content: serde_json::from_str(&content).map_err(Error::internal)?,
        client_msg_id: row.try_get("client_msg_id")?,
        sent_at: row.try_get("sent_at")?,
        status: if status == "recalled" { Status::Recalled } else { Status::Normal },
    })
}

fn state_from_row(row: &AnyRow) -> Result<ConversationState> {
    let chat_type: String = row.try_get("chat_type")?;
    Ok(ConversationState {
        conversation_id: row.try_get("id")?,
        chat_type: ChatType::parse(&chat_type).unwrap_or(ChatType::Single),
        group_id: row.try_get("group_id")?,
        last_seq: row.try_get("last_seq")?,
        last_message_id: row.try_get("last_message_id")?,
        updated_at: row.try_get("updated_at")?,
        read_seq: row.try_get("read_seq")?,
        pinned: row.try_get::<i64, _>("pinned")? != 0,
        muted: row.try_get::<i64, _>("muted")? != 0,
        hidden: row.try_get::<i64, _>("hidden")? != 0,
        draft: row.try_get("draft")?,
        unread: row.try_get("unread")?,
    })
}

fn standing_from_row(row: &AnyRow) -> Result<Standing> {
    let role: String = row.try_get("role")?;
    Ok(Standing {
        role: Role::parse(&role).ok_or_else(|| Error::internal(anyhow::anyhow!("bad role {role}")))?,
        muted_until: row.try_get("muted_until")?,
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|e| e.is_unique_violation())
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

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
        Ok(User { id, username: username.to_owned(), profile: Profile::default(), created_at: now })
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        self.fetch_user(id).await
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, u.password_hash, u.token_version \
             FROM users u JOIN profile p ON p.user_id = u.id WHERE u.username = $1"
        ));
        let Some(row) = sqlx::query(sql).bind(username).fetch_optional(&self.pool).await? else {
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
        .execute(&self.writer)
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
        row.map(|row| Ok(TokenState { version: row.try_get(0)?, revoked: row.try_get::<i64, _>(1)? > 0 })).transpose()
    }

    async fn revoke_token(&self, jti: &str, user_id: i64, expires_at: i64) -> Result<()> {
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
        sqlx::query("DELETE FROM revoked_token WHERE expires_at < $1")
            .bind(crate::now_ms())
            .execute(&self.writer)
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
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn login_log(&self, user_id: i64, before: Option<i64>, limit: i64) -> Result<Vec<LoginRecord>> {
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

    async fn create_reset(&self, user_id: i64, token_hash: &str, now: i64, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO password_reset (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn consume_reset(&self, token_hash: &str, password_hash: &str, now: i64) -> Result<Option<i64>> {
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
        let user_id: i64 = row.try_get(0)?;
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

    async fn existing_users(&self, ids: &[i64]) -> Result<Vec<i64>> {
        let rows = self.fetch_in("SELECT id FROM users WHERE id", 1, &[], ids).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn create_group(&self, new: &NewGroup, owner: i64, members: &[i64], now: i64) -> Result<Group> {
        let mut tx = self.writer.begin().await?;
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
        let everyone: Vec<(i64, Role)> =
            std::iter::once((owner, Role::Owner)).chain(members.iter().map(|m| (*m, Role::Member))).collect();
        let values = (0..everyone.len())
            .map(|i| format!("($1, ${}, ${}, $2)", 3 + 2 * i, 4 + 2 * i))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert =
            sqlx::query(sql(format!("INSERT INTO group_member (group_id, user_id, role, joined_at) VALUES {values}")))
                .bind(group_id)
                .bind(now);
        for (user_id, role) in &everyone {
            insert = insert.bind(*user_id).bind(role.as_str());
        }
        insert.execute(&mut *tx).await?;
        let conversation = group_conversation(group_id);
        sqlx::query(
            "INSERT INTO conversation (id, chat_type, group_id, last_seq, created_at, updated_at) VALUES ($1, 'group', $2, 0, $3, $3)",
        )
        .bind(&conversation)
        .bind(group_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let user_ids: Vec<i64> = everyone.iter().map(|(id, _)| *id).collect();
        Self::add_states(&mut tx, &conversation, &user_ids, now).await?;
        let group = Self::fetch_group(&mut *tx, group_id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(group)
    }

    async fn group(&self, group_id: i64) -> Result<Option<Group>> {
        Self::fetch_group(&self.pool, group_id).await
    }

    async fn group_with_standing(&self, group_id: i64, user_id: i64) -> Result<Option<(Group, Option<Standing>)>> {
        let row = sqlx::query(sql(format!(
            "SELECT {GROUP_COLUMNS}, m.role, m.muted_until AS member_muted_until FROM chat_group g \
             LEFT JOIN group_member m ON m.group_id = g.id AND m.user_id = $2 \
             WHERE g.id = $1 AND g.dismissed_at IS NULL"
        )))
        .bind(group_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let standing = match row.try_get::<Option<String>, _>("role")? {
            Some(role) => Some(Standing {
                role: Role::parse(&role).ok_or_else(|| Error::internal(anyhow::anyhow!("bad role {role}")))?,
                muted_until: row.try_get("member_muted_until")?,
            }),
            None => None,
        };
        Ok(Some((group_from_row(&row)?, standing)))
    }

    async fn standing(&self, group_id: i64, user_id: i64) -> Result<Option<Standing>> {
        let row = sqlx::query("SELECT role, muted_until FROM group_member WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(standing_from_row).transpose()
    }

    async fn standings(&self, group_id: i64, user_ids: &[i64]) -> Result<HashMap<i64, Standing>> {
        let select = "SELECT user_id, role, muted_until FROM group_member WHERE group_id = $1 AND user_id";
        let rows = self.fetch_in(select, 2, &[group_id], user_ids).await?;
        rows.iter().map(|r| Ok((r.try_get("user_id")?, standing_from_row(r)?))).collect()
    }

    async fn member_ids(&self, group_id: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT user_id FROM group_member WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn add_members(&self, group_id: i64, user_ids: &[i64], now: i64) -> Result<Group> {
        let mut tx = self.writer.begin().await?;
        let values =
            (0..user_ids.len()).map(|i| format!("($1, ${}, 'member', $2)", 3 + i)).collect::<Vec<_>>().join(", ");
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
        Self::add_states(&mut tx, &group_conversation(group_id), user_ids, now).await?;
        let group = Self::fetch_group(&mut *tx, group_id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(group)
    }

    async fn remove_members(&self, group_id: i64, user_ids: &[i64], now: i64) -> Result<Group> {
        let mut tx = self.writer.begin().await?;
        let text = format!(
            "DELETE FROM group_member WHERE group_id = $1 AND role <> 'owner' AND user_id IN ({})",
            placeholders(2, user_ids.len())
        );
        let mut delete = sqlx::query(sql(text)).bind(group_id);
        for id in user_ids {
            delete = delete.bind(*id);
        }
        let removed = delete.execute(&mut *tx).await?.rows_affected() as i64;
        let text = format!(
            "DELETE FROM conversation_member WHERE conversation_id = $1 AND user_id IN ({}) \
             AND user_id NOT IN (SELECT user_id FROM group_member WHERE group_id = $2)",
            placeholders(3, user_ids.len())
        );
        let mut forget = sqlx::query(sql(text)).bind(group_conversation(group_id)).bind(group_id);
        for id in user_ids {
            forget = forget.bind(*id);
        }
        forget.execute(&mut *tx).await?;
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
        let change = sqlx::query(
            "UPDATE chat_group SET name = COALESCE($1, name), avatar = COALESCE($2, avatar), intro = COALESCE($3, intro), \
             notice = COALESCE($4, notice), join_policy = COALESCE($5, join_policy) WHERE id = $6",
        )
        .bind(patch.name.as_deref())
        .bind(patch.avatar.as_deref())
        .bind(patch.intro.as_deref())
        .bind(patch.notice.as_deref())
        .bind(patch.join_policy.map(JoinPolicy::as_str))
        .bind(group_id);
        self.change_group(group_id, now, change).await
    }

    async fn set_role(&self, group_id: i64, user_id: i64, role: Role, now: i64) -> Result<Group> {
        let change =
            sqlx::query("UPDATE group_member SET role = $1 WHERE group_id = $2 AND user_id = $3 AND role <> 'owner'")
                .bind(role.as_str())
                .bind(group_id)
                .bind(user_id);
        self.change_group(group_id, now, change).await
    }

    async fn transfer(&self, group_id: i64, from: i64, to: i64, now: i64) -> Result<Group> {
        let mut tx = self.writer.begin().await?;
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
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn mute_group(&self, group_id: i64, until: i64, now: i64) -> Result<Group> {
        let change = sqlx::query("UPDATE chat_group SET muted_until = $1 WHERE id = $2").bind(until).bind(group_id);
        self.change_group(group_id, now, change).await
    }

    async fn mute_member(&self, group_id: i64, user_id: i64, until: i64, now: i64) -> Result<Group> {
        let change = sqlx::query("UPDATE group_member SET muted_until = $1 WHERE group_id = $2 AND user_id = $3")
            .bind(until)
            .bind(group_id)
            .bind(user_id);
        self.change_group(group_id, now, change).await
    }

    async fn group_ids_of(&self, user_id: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT m.group_id FROM group_member m JOIN chat_group g ON g.id = m.group_id \
             WHERE m.user_id = $1 AND g.dismissed_at IS NULL",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
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

    async fn users_by_ids(&self, ids: &[i64]) -> Result<Vec<User>> {
        let select = format!("SELECT {USER_COLUMNS} FROM users u JOIN profile p ON p.user_id = u.id WHERE u.id");
        self.fetch_in(&select, 1, &[], ids).await?.iter().map(user_from_row).collect()
    }

    async fn groups_by_ids(&self, ids: &[i64]) -> Result<Vec<Group>> {
        let select = format!("SELECT {GROUP_COLUMNS} FROM chat_group g WHERE g.id");
        self.fetch_in(&select, 1, &[], ids).await?.iter().map(group_from_row).collect()
    }

    async fn append_message(&self, new: NewMessage) -> Result<(Message, bool)> {
        self.appender.append(new).await
    }

    fn set_commit_hook(&self, hook: CommitHook) {
        self.appender.set_hook(hook);
    }

    async fn message_by_client_id(&self, sender: i64, client_msg_id: &str) -> Result<Option<Message>> {
        let row = sqlx::query(sql(format!(
            "SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.sender_id = $1 AND m.client_msg_id = $2"
        )))
        .bind(sender)
        .bind(client_msg_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn message(&self, id: i64) -> Result<Option<Message>> {
        let row = sqlx::query(sql(format!("SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn messages_by_ids(&self, ids: &[i64]) -> Result<Vec<Message>> {
        let select = format!("SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.id");
        self.fetch_in(&select, 1, &[], ids).await?.iter().map(message_from_row).collect()
    }

    async fn messages_after(&self, conversation_id: &str, after: i64, limit: i64) -> Result<Vec<Message>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.conversation_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3"
        )))
        .bind(conversation_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn messages_before(&self, conversation_id: &str, before: i64, limit: i64) -> Result<Vec<Message>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.conversation_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
        )))
        .bind(conversation_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn recall(&self, message_id: i64) -> Result<Message> {
        sqlx::query("UPDATE message SET status = 'recalled', content = '{}' WHERE id = $1")
            .bind(message_id)
            .execute(&self.writer)
            .await?;
        self.message(message_id).await?.ok_or(Error::NotFound)
    }

    async fn is_participant(&self, conversation_id: &str, user_id: i64) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) FROM conversation_member WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation_id)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    async fn readers(&self, conversation_id: &str, seq: i64, except: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT user_id FROM conversation_member WHERE conversation_id = $1 AND read_seq >= $2 AND user_id <> $3 ORDER BY user_id",
        )
        .bind(conversation_id)
        .bind(seq)
        .bind(except)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn last_seqs(&self, user_id: i64) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT c.id, c.last_seq, c.updated_at FROM conversation_member cm JOIN conversation c ON c.id = cm.conversation_id \
             WHERE cm.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }

    async fn conversation_states(&self, user_id: i64, only: Option<&str>) -> Result<Vec<ConversationState>> {
        let rows = match only {
            Some(id) => {
                sqlx::query(sql(format!("{STATE_SELECT} AND c.id = $2")))
                    .bind(user_id)
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query(STATE_SELECT).bind(user_id).fetch_all(&self.pool).await?,
        };
        rows.iter().map(state_from_row).collect()
    }

    async fn update_conversation_state(
        &self,
        conversation_id: &str,
        user_id: i64,
        patch: &ConversationPatch,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE conversation_member SET pinned = COALESCE($1, pinned), muted = COALESCE($2, muted), \
             hidden = COALESCE($3, hidden), draft = COALESCE($4, draft), updated_at = $5 \
             WHERE conversation_id = $6 AND user_id = $7",
        )
        .bind(patch.pinned.map(i64::from))
        .bind(patch.muted.map(i64::from))
        .bind(patch.hidden.map(i64::from))
        .bind(patch.draft.as_deref())
        .bind(now)
        .bind(conversation_id)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn mark_read(&self, conversation_id: &str, user_id: i64, seq: i64, now: i64) -> Result<()> {
        // Forward only, and never past the last seq (read in the same statement).
        sqlx::query(
            "UPDATE conversation_member SET \
               read_seq = (SELECT CASE WHEN $1 < c.last_seq THEN $1 ELSE c.last_seq END FROM conversation c WHERE c.id = $3), \
               updated_at = $2 \
             WHERE conversation_id = $3 AND user_id = $4 \
               AND read_seq < (SELECT CASE WHEN $1 < c.last_seq THEN $1 ELSE c.last_seq END FROM conversation c WHERE c.id = $3)",
        )
        .bind(seq)
        .bind(now)
        .bind(conversation_id)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn create_file(&self, file: &FileMeta) -> Result<()> {
        sqlx::query("INSERT INTO file (id, owner_id, size, mime, sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&file.id)
            .bind(file.owner_id)
            .bind(file.size)
            .bind(&file.mime)
            .bind(&file.sha256)
            .bind(file.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn file(&self, id: &str) -> Result<Option<FileMeta>> {
        let row = sqlx::query("SELECT id, owner_id, size, mime, sha256, created_at FROM file WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(FileMeta {
                id: r.try_get(0)?,
                owner_id: r.try_get(1)?,
                size: r.try_get(2)?,
                mime: r.try_get(3)?,
                sha256: r.try_get(4)?,
                created_at: r.try_get(5)?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

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
}
