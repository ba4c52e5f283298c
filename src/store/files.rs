//! Uploaded files' metadata (their bytes live in an object store).

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{FileId, FileMeta, UserId};

/// Where file metadata lives.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Records an uploaded file.
    async fn create_file(&self, file: &FileMeta) -> Result<()>;
    /// An uploaded file's metadata.
    async fn file(&self, id: &FileId) -> Result<Option<FileMeta>>;
    /// Bytes of the files `owner` uploaded.
    async fn stored_bytes(&self, owner: UserId) -> Result<i64>;
    /// Which of `ids` `user` may read, in one query: files they uploaded, files shared with
    /// everyone, and files a message of one of their conversations references.
    async fn readable_files(&self, user: UserId, ids: &[FileId]) -> Result<Vec<FileId>>;
    /// Makes a file readable by every logged-in user: it became an avatar.
    async fn share_file_publicly(&self, id: &FileId) -> Result<()>;
}
