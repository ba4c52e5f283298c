//! Media over HTTP: what the streaming upload and download handlers of the HTTP layer call.

use serde::Serialize;

use super::{Api, Caller};
pub use crate::domain::Download;
use crate::error::{Error, Result};
use crate::model::{FileId, FileMeta, Identity};

/// `{fileId, url, size, mime, sha256}` of an upload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadReply {
    /// The file's id.
    pub file_id: FileId,
    /// Where it is served: `/file/{fileId}`.
    pub url: String,
    /// Bytes.
    pub size: i64,
    /// Sniffed type.
    pub mime: String,
    /// Hex SHA-256.
    pub sha256: String,
}

impl Api {
    /// `POST /file/upload`: streams `body` into storage. Answers `{fileId, url, size, mime, sha256}`.
    pub async fn upload<S, E>(&self, caller: &Caller, body: S) -> Result<serde_json::Value>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let who = self.charged_identity(caller).await?;
        let meta = self.domain.media.upload(&who, body).await?;
        let reply = UploadReply {
            url: format!("/file/{}", meta.id),
            file_id: meta.id,
            size: meta.size,
            mime: meta.mime,
            sha256: meta.sha256,
        };
        serde_json::to_value(reply).map_err(Error::internal)
    }

    /// `GET /file/{fileId}`: the file's metadata, for any logged-in caller.
    pub async fn file(&self, caller: &Caller, id: String) -> Result<FileMeta> {
        self.charged_identity(caller).await?;
        self.domain.media.meta(&FileId(id)).await
    }

    /// The bytes of a file [`Api::file`] found, or a range of them.
    pub async fn download(&self, meta: FileMeta, range: Option<std::ops::Range<u64>>) -> Result<Download> {
        self.domain.media.download(meta, range).await
    }

    /// The caller, once their address's bucket and then their own have been charged: file
    /// routes count against the same limits as every other HTTP call.
    async fn charged_identity(&self, caller: &Caller) -> Result<Identity> {
        self.domain.limits.request(None, None, caller.origin.ip.parse().ok())?;
        let who = self.identity(caller).await?;
        self.domain.limits.user_request(who.user_id)?;
        Ok(who)
    }
}
