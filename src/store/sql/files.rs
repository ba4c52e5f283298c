//! [`FileStore`] on SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, placeholders, sql};
use crate::error::Result;
use crate::model::{FileId, FileMeta, UserId};
use crate::store::FileStore;

#[async_trait]
impl FileStore for SqlStore {
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

    async fn file(&self, id: &FileId) -> Result<Option<FileMeta>> {
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

    async fn stored_bytes(&self, owner: UserId) -> Result<i64> {
        let row = sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM file WHERE owner_id = $1")
            .bind(owner)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn readable_files(&self, user: UserId, ids: &[FileId]) -> Result<Vec<FileId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let text = format!(
            "SELECT f.id FROM file f WHERE (f.owner_id = $1 OR EXISTS (\
             SELECT 1 FROM file_ref r LEFT JOIN conversation_member m \
             ON m.conversation_id = r.scope AND m.user_id = $1 \
             WHERE r.file_id = f.id AND (r.scope = '{PUBLIC_SCOPE}' OR m.user_id IS NOT NULL))) \
             AND f.id IN ({})",
            placeholders(2, ids.len())
        );
        let mut query = sqlx::query(sql(text)).bind(user);
        for id in ids {
            query = query.bind(id);
        }
        query.fetch_all(&self.pool).await?.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    async fn share_file_publicly(&self, id: &FileId) -> Result<()> {
        sqlx::query("INSERT INTO file_ref (file_id, scope) VALUES ($1, $2) ON CONFLICT (file_id, scope) DO NOTHING")
            .bind(id)
            .bind(PUBLIC_SCOPE)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

/// The `file_ref` scope of a file every logged-in user may read.
const PUBLIC_SCOPE: &str = "public";
