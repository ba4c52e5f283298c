//! [`FileStore`] on SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
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
}
