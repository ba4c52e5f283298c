//! Uploaded files.

use super::ids::{FileId, UserId};

/// An uploaded file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Random hex id.
    pub id: FileId,
    /// Uploader.
    pub owner_id: UserId,
    /// Bytes.
    pub size: i64,
    /// Sniffed media type.
    pub mime: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Upload time.
    pub created_at: i64,
}
