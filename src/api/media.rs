//! Media over HTTP: what the streaming upload and download handlers of the HTTP layer call.

use serde::{Deserialize, Serialize};

use super::{Api, Caller, Ctx, Request};
pub use crate::domain::Download;
use crate::error::{Error, Result};
use crate::model::{FileId, FileMeta, Identity};

/// `{fileId, url, link, size, mime, sha256}` of an upload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadReply {
    /// The file's id.
    pub file_id: FileId,
    /// What a message's content names it by: `/file/{fileId}`.
    pub url: String,
    /// A signed link the uploader can show it by at once (see `/file/link`).
    pub link: String,
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
            link: self.domain.media.link_to_upload(&meta).url,
            file_id: meta.id,
            size: meta.size,
            mime: meta.mime,
            sha256: meta.sha256,
        };
        serde_json::to_value(reply).map_err(Error::internal)
    }

    /// `GET /file/{fileId}` with a token: the file's metadata, if the caller may read it.
    pub async fn file(&self, caller: &Caller, id: String) -> Result<FileMeta> {
        let who = self.charged_identity(caller).await?;
        self.domain.media.readable(&who, &FileId(id)).await
    }

    /// `GET /file/{fileId}?exp=…&sig=…`: the file's metadata, if the signed link holds. The
    /// link is the capability, so only the address's bucket is charged.
    pub async fn file_by_link(&self, caller: &Caller, id: String, exp: &str, sig: &str) -> Result<FileMeta> {
        self.domain.limits.request(None, None, caller.origin.ip.parse().ok())?;
        self.domain.media.by_link(&FileId(id), exp, sig).await
    }

    /// The bytes of a file [`Api::file`] found, or a range of them.
    pub async fn download(&self, meta: FileMeta, range: Option<std::ops::Range<u64>>) -> Result<Download> {
        self.domain.media.download(meta, range).await
    }

    /// Makes `change`, which may set an avatar to `url`: the file it names must be one `who` may
    /// read (checked first, so a refused change shares nothing), and every logged-in user may
    /// read it once the change is made.
    pub(super) async fn with_avatar<T>(
        &self,
        who: &Identity,
        url: Option<&str>,
        change: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let avatar = self.domain.media.avatar_file(who, url).await?;
        let done = change.await?;
        if let Some(file) = avatar {
            self.domain.media.share_publicly(&file).await?;
        }
        Ok(done)
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

/// `POST /file/link`: `{fileId}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinkRequest {
    /// The file.
    pub file_id: FileId,
}

impl Request for LinkRequest {}

/// `{url, expiresAt}`: a signed link to one file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkReply {
    /// `/file/{fileId}?exp=…&sig=…`, to fetch without a token (an `<img>`'s `src`).
    pub url: String,
    /// When it stops working, Unix ms (10 to 15 minutes from now by default).
    pub expires_at: i64,
}

/// `POST /file/link`: a signed link to a file the caller may read.
pub(super) async fn link(api: &Api, cx: &Ctx<'_>, req: LinkRequest) -> Result<LinkReply> {
    let link = api.domain.media.link(cx.who()?, &req.file_id).await?;
    Ok(LinkReply { url: link.url, expires_at: link.expires_at })
}
