//! [`GroupStore`] on SQL.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyArguments;

use super::feed::{self, Whom};
use super::rows::{self, GROUP_COLUMNS, USER_COLUMNS};
use super::{SqlStore, placeholders, sql};
use crate::error::{Error, Result};
use crate::model::{
    ConversationId, FeedKind, Group, GroupId, GroupPatch, JoinPolicy, Member, NewGroup, Role, Standing, UserId,
};
use crate::store::GroupStore;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

impl SqlStore {
    async fn fetch_group<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
        executor: E,
        group_id: GroupId,
    ) -> Result<Option<Group>> {
        let text = format!("SELECT {GROUP_COLUMNS} FROM chat_group g WHERE g.id = $1 AND g.dismissed_at IS NULL");
        let row = sqlx::query(sql(text)).bind(group_id).fetch_optional(executor).await?;
        row.as_ref().map(rows::group).transpose()
    }

    /// Gives users their state of a conversation, reading from its current last seq: members
    /// who join a group later have no unread backlog, and no unread mentions.
    async fn add_states(tx: &mut Tx<'_>, conversation: &ConversationId, user_ids: &[UserId], now: i64) -> Result<()> {
        let text = format!(
            "INSERT INTO conversation_member (conversation_id, user_id, read_seq, read_countable, mention_read, updated_at) \
             SELECT c.id, u.id, c.last_seq, c.countable, c.mentions_all, $2 FROM users u JOIN conversation c ON c.id = $1 \
             WHERE u.id IN ({}) \
             ON CONFLICT (conversation_id, user_id) DO NOTHING",
            placeholders(3, user_ids.len())
        );
        let mut insert = sqlx::query(sql(text)).bind(conversation).bind(now);
        for id in user_ids {
            insert = insert.bind(*id);
        }
        insert.execute(&mut **tx).await?;
        Ok(())
    }

    /// Runs one change to a group and bumps its `updated_at`, in one transaction.
    async fn change_group(
        &self,
        group_id: GroupId,
        now: i64,
        change: sqlx::query::Query<'_, sqlx::Any, AnyArguments>,
    ) -> Result<Group> {
        let mut tx = self.writer.begin().await?;
        change.execute(&mut *tx).await?;
        let group = Self::touch(&mut tx, group_id, now).await?;
        feed::record(&mut tx, self.backend, Whom::Members(group_id), FeedKind::Group, &group_id.to_string(), now)
            .await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Bumps `updated_at` and returns the group, inside `tx`.
    async fn touch(tx: &mut Tx<'_>, group_id: GroupId, now: i64) -> Result<Group> {
        sqlx::query("UPDATE chat_group SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(group_id)
            .execute(&mut **tx)
            .await?;
        Self::fetch_group(&mut **tx, group_id).await?.ok_or(Error::NotFound)
    }

    /// Inserts the owner and the first members of a new group.
    async fn insert_founders(tx: &mut Tx<'_>, group_id: GroupId, everyone: &[(UserId, Role)], now: i64) -> Result<()> {
        let values = (0..everyone.len())
            .map(|i| format!("($1, ${}, ${}, $2)", 3 + 2 * i, 4 + 2 * i))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!("INSERT INTO group_member (group_id, user_id, role, joined_at) VALUES {values}");
        let mut insert = sqlx::query(sql(text)).bind(group_id).bind(now);
        for (user_id, role) in everyone {
            insert = insert.bind(*user_id).bind(role.as_str());
        }
        insert.execute(&mut **tx).await?;
        Ok(())
    }
}

#[async_trait]
impl GroupStore for SqlStore {
    async fn create_group(&self, new: &NewGroup, owner: UserId, members: &[UserId], now: i64) -> Result<Group> {
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
        let group_id: GroupId = row.try_get(0)?;
        let everyone: Vec<(UserId, Role)> =
            std::iter::once((owner, Role::Owner)).chain(members.iter().map(|m| (*m, Role::Member))).collect();
        Self::insert_founders(&mut tx, group_id, &everyone, now).await?;
        let conversation = ConversationId::group(group_id);
        sqlx::query(
            "INSERT INTO conversation (id, chat_type, group_id, last_seq, created_at, updated_at) \
             VALUES ($1, 'group', $2, 0, $3, $3)",
        )
        .bind(&conversation)
        .bind(group_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let user_ids: Vec<UserId> = everyone.iter().map(|(id, _)| *id).collect();
        Self::add_states(&mut tx, &conversation, &user_ids, now).await?;
        feed::record(&mut tx, self.backend, Whom::Members(group_id), FeedKind::Group, &group_id.to_string(), now)
            .await?;
        let group = Self::fetch_group(&mut *tx, group_id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(group)
    }

    async fn group_with_standing(
        &self,
        group_id: GroupId,
        user_id: UserId,
    ) -> Result<Option<(Group, Option<Standing>)>> {
        let text = format!(
            "SELECT {GROUP_COLUMNS}, m.role, m.muted_until AS member_muted_until FROM chat_group g \
             LEFT JOIN group_member m ON m.group_id = g.id AND m.user_id = $2 \
             WHERE g.id = $1 AND g.dismissed_at IS NULL"
        );
        let row = sqlx::query(sql(text)).bind(group_id).bind(user_id).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let standing = match row.try_get::<Option<String>, _>("role")? {
            Some(role) => {
                Some(Standing { role: rows::role_named(&role)?, muted_until: row.try_get("member_muted_until")? })
            }
            None => None,
        };
        Ok(Some((rows::group(&row)?, standing)))
    }

    async fn standing(&self, group_id: GroupId, user_id: UserId) -> Result<Option<Standing>> {
        let row = sqlx::query("SELECT role, muted_until FROM group_member WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::standing).transpose()
    }

    async fn standings(&self, group_id: GroupId, user_ids: &[UserId]) -> Result<HashMap<UserId, Standing>> {
        let select = "SELECT user_id, role, muted_until FROM group_member WHERE group_id = $1 AND user_id";
        let rows = self.fetch_in(select, &[group_id.0], user_ids.iter().map(|u| u.0)).await?;
        rows.iter().map(|r| Ok((r.try_get("user_id")?, rows::standing(r)?))).collect()
    }

    async fn member_ids(&self, group_id: GroupId) -> Result<Vec<UserId>> {
        let rows = sqlx::query("SELECT user_id FROM group_member WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn add_members(&self, group_id: GroupId, user_ids: &[UserId], now: i64) -> Result<Group> {
        let mut tx = self.writer.begin().await?;
        let values =
            (0..user_ids.len()).map(|i| format!("($1, ${}, 'member', $2)", 3 + i)).collect::<Vec<_>>().join(", ");
        let text = format!(
            "INSERT INTO group_member (group_id, user_id, role, joined_at) VALUES {values} \
             ON CONFLICT (group_id, user_id) DO NOTHING"
        );
        let mut insert = sqlx::query(sql(text)).bind(group_id).bind(now);
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
        Self::add_states(&mut tx, &ConversationId::group(group_id), user_ids, now).await?;
        feed::record(&mut tx, self.backend, Whom::Users(user_ids), FeedKind::Group, &group_id.to_string(), now).await?;
        let group = Self::fetch_group(&mut *tx, group_id).await?.ok_or(Error::NotFound)?;
        tx.commit().await?;
        Ok(group)
    }

    async fn remove_members(&self, group_id: GroupId, user_ids: &[UserId], now: i64) -> Result<Group> {
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
        let mut forget = sqlx::query(sql(text)).bind(ConversationId::group(group_id)).bind(group_id);
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
        feed::record(&mut tx, self.backend, Whom::Users(user_ids), FeedKind::Group, &group_id.to_string(), now).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn update_group(&self, group_id: GroupId, patch: &GroupPatch, now: i64) -> Result<Group> {
        let change = sqlx::query(
            "UPDATE chat_group SET name = COALESCE($1, name), avatar = COALESCE($2, avatar), \
             intro = COALESCE($3, intro), notice = COALESCE($4, notice), \
             join_policy = COALESCE($5, join_policy) WHERE id = $6",
        )
        .bind(patch.name.as_deref())
        .bind(patch.avatar.as_deref())
        .bind(patch.intro.as_deref())
        .bind(patch.notice.as_deref())
        .bind(patch.join_policy.map(JoinPolicy::as_str))
        .bind(group_id);
        self.change_group(group_id, now, change).await
    }

    async fn set_role(&self, group_id: GroupId, user_id: UserId, role: Role, now: i64) -> Result<Group> {
        let change =
            sqlx::query("UPDATE group_member SET role = $1 WHERE group_id = $2 AND user_id = $3 AND role <> 'owner'")
                .bind(role.as_str())
                .bind(group_id)
                .bind(user_id);
        self.change_group(group_id, now, change).await
    }

    async fn transfer(&self, group_id: GroupId, from: UserId, to: UserId, now: i64) -> Result<Group> {
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
        feed::record(&mut tx, self.backend, Whom::Members(group_id), FeedKind::Group, &group_id.to_string(), now)
            .await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn dismiss(&self, group_id: GroupId, now: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let dismissed = sqlx::query(
            "UPDATE chat_group SET dismissed_at = $1, updated_at = $1 WHERE id = $2 AND dismissed_at IS NULL",
        )
        .bind(now)
        .bind(group_id)
        .execute(&mut *tx)
        .await?;
        if dismissed.rows_affected() > 0 {
            let whom = Whom::Members(group_id);
            feed::record(&mut tx, self.backend, whom, FeedKind::Group, &group_id.to_string(), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mute_group(&self, group_id: GroupId, until: i64, now: i64) -> Result<Group> {
        let change = sqlx::query("UPDATE chat_group SET muted_until = $1 WHERE id = $2").bind(until).bind(group_id);
        self.change_group(group_id, now, change).await
    }

    async fn mute_member(&self, group_id: GroupId, user_id: UserId, until: i64, now: i64) -> Result<Group> {
        let change = sqlx::query("UPDATE group_member SET muted_until = $1 WHERE group_id = $2 AND user_id = $3")
            .bind(until)
            .bind(group_id)
            .bind(user_id);
        self.change_group(group_id, now, change).await
    }

    async fn group_ids_of(&self, user_id: UserId) -> Result<Vec<GroupId>> {
        let rows = sqlx::query(
            "SELECT m.group_id FROM group_member m JOIN chat_group g ON g.id = m.group_id \
             WHERE m.user_id = $1 AND g.dismissed_at IS NULL",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn group_ids_of_users(&self, users: &[UserId]) -> Result<Vec<(UserId, GroupId)>> {
        let mut pairs = Vec::new();
        // Well under both databases' limits on bound values.
        for chunk in users.chunks(500) {
            let text = format!(
                "SELECT m.user_id, m.group_id FROM group_member m JOIN chat_group g ON g.id = m.group_id \
                 WHERE m.user_id IN ({}) AND g.dismissed_at IS NULL",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(sql(text));
            for user in chunk {
                query = query.bind(*user);
            }
            for row in query.fetch_all(&self.pool).await? {
                pairs.push((row.try_get(0)?, row.try_get(1)?));
            }
        }
        Ok(pairs)
    }

    async fn groups_of(&self, user_id: UserId) -> Result<Vec<Group>> {
        let text = format!(
            "SELECT {GROUP_COLUMNS} FROM chat_group g JOIN group_member m ON m.group_id = g.id \
             WHERE m.user_id = $1 AND g.dismissed_at IS NULL ORDER BY g.updated_at DESC, g.id DESC"
        );
        let rows = sqlx::query(sql(text)).bind(user_id).fetch_all(&self.pool).await?;
        rows.iter().map(rows::group).collect()
    }

    async fn members(&self, group_id: GroupId, after: Option<UserId>, limit: i64) -> Result<Vec<Member>> {
        let text = format!(
            "SELECT {USER_COLUMNS}, m.role, m.joined_at, m.muted_until FROM group_member m \
             JOIN users u ON u.id = m.user_id JOIN profile p ON p.user_id = u.id \
             WHERE m.group_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3"
        );
        let rows = sqlx::query(sql(text))
            .bind(group_id)
            .bind(after.map_or(0, |a| a.0))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let standing = rows::standing(row)?;
                Ok(Member {
                    user: rows::user(row)?.public(),
                    role: standing.role,
                    joined_at: row.try_get("joined_at")?,
                    muted_until: standing.muted_until,
                })
            })
            .collect()
    }

    async fn groups_by_ids(&self, ids: &[GroupId]) -> Result<Vec<Group>> {
        let select = format!("SELECT {GROUP_COLUMNS} FROM chat_group g WHERE g.id");
        self.fetch_in(&select, &[], ids.iter().map(|g| g.0)).await?.iter().map(rows::group).collect()
    }
}
