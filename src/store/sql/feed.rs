//! The per-user change feed, written inside the transactions of the changes it records.
//!
//! Each user's feed position is a counter on their row, moved by the transaction that adds the
//! entry: so a user's entries commit in position order, and a device that has seen position n
//! has seen every entry up to n. On PostgreSQL the rows are locked in id order first, so that
//! two changes recording for overlapping users (two groups with common members) cannot
//! deadlock.

use super::statement::Tx;
use super::{Backend, placeholders, sql};
use crate::error::Result;
use crate::model::{FeedKind, GroupId, UserId};

/// Whose feeds an entry goes to.
pub(super) enum Whom<'a> {
    /// These users.
    Users(&'a [UserId]),
    /// Every member of the group, as the transaction sees them.
    Members(GroupId),
}

/// Adds an entry of `kind` about `subject` to the feed of each of `whom`.
pub(super) async fn record(
    tx: &mut Tx<'_>,
    backend: Backend,
    whom: Whom<'_>,
    kind: FeedKind,
    subject: &str,
    now: i64,
) -> Result<()> {
    let (users, binds): (String, Vec<i64>) = match whom {
        Whom::Users([]) => return Ok(()),
        Whom::Users(ids) => (format!("id IN ({})", placeholders(1, ids.len())), ids.iter().map(|u| u.0).collect()),
        Whom::Members(group) => ("id IN (SELECT user_id FROM group_member WHERE group_id = $1)".into(), vec![group.0]),
    };
    let statements = [
        (backend == Backend::Postgres).then(|| format!("SELECT id FROM users WHERE {users} ORDER BY id FOR UPDATE")),
        Some(format!("UPDATE users SET feed_pos = feed_pos + 1 WHERE {users}")),
    ];
    for text in statements.into_iter().flatten() {
        let mut query = sqlx::query(sql(text));
        for value in &binds {
            query = query.bind(*value);
        }
        query.fetch_all(&mut **tx).await?;
    }
    let n = binds.len();
    let text = format!(
        "INSERT INTO user_change (user_id, pos, kind, subject, at) SELECT id, feed_pos, ${}, ${}, ${} FROM users WHERE {users}",
        n + 1,
        n + 2,
        n + 3
    );
    let mut insert = sqlx::query(sql(text));
    for value in &binds {
        insert = insert.bind(*value);
    }
    insert.bind(kind.as_str()).bind(subject).bind(now).execute(&mut **tx).await?;
    Ok(())
}
