//! Media: uploads streamed to an object store, and their metadata.
//!
//! Invariants:
//! - An upload is never held whole in memory: it streams, part by part, into a multipart
//!   upload while its size is counted and its SHA-256 computed, and becomes visible only when
//!   complete and within the size limit. A failed or oversized upload is aborted and leaves
//!   nothing.
//! - The media type is sniffed from the content's first bytes, never taken from the client.
//! - A file id is 128 random bits (hex), so ids cannot be guessed; even so, knowing one is not
//!   enough. A file is read by its uploader, by the participants of a conversation a message
//!   of which references it, or by anyone once it is an avatar; or through a signed link
//!   ([`super::links`]), which is minted only for those.
//!
//! Storage is an [`ObjectStore`]: by default a directory (`<data-dir>/files`), or an
//! S3-compatible bucket (`--media-url s3://bucket/prefix`) that several nodes share.

use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::links::{FileLink, LinkSigner};
use crate::error::{Error, Result};
use crate::model::{FileId, FileMeta, Identity, now_ms};
use crate::store::Store;

/// Bytes looked at to sniff a type.
const SNIFF_BYTES: usize = 8192;
/// Part size for a local directory: small parts keep an upload's memory small.
const LOCAL_PART_BYTES: usize = 256 * 1024;
/// Part size for S3, which refuses parts under 5 MiB (all but the last).
const S3_PART_BYTES: usize = 5 * 1024 * 1024;

/// Opens the object store `--media-url` names: `s3://bucket[/prefix]` (endpoint, region and
/// credentials from the standard `AWS_*` environment variables), or, when unset, `dir` on the
/// local disk.
pub fn open_storage(url: Option<&str>, dir: &FsPath) -> anyhow::Result<(Arc<dyn ObjectStore>, usize)> {
    let Some(url) = url else {
        std::fs::create_dir_all(dir)?;
        return Ok((Arc::new(LocalFileSystem::new_with_prefix(dir)?), LOCAL_PART_BYTES));
    };
    let rest = url.strip_prefix("s3://").ok_or_else(|| anyhow::anyhow!("--media-url must be an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build()?;
    let prefix = prefix.trim_matches('/');
    let store: Arc<dyn ObjectStore> =
        if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
    Ok((store, S3_PART_BYTES))
}

/// The media service.
pub struct Media {
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectStore>,
    part_bytes: usize,
    max_bytes: u64,
    quota_bytes: u64,
    links: LinkSigner,
}

/// A stored file's bytes, or a range of them, as a stream.
pub struct Download {
    /// The file.
    pub meta: FileMeta,
    /// The bytes served: all of them, or the range asked for.
    pub range: Range<u64>,
    /// The bytes.
    pub body: BoxStream<'static, std::result::Result<Bytes, object_store::Error>>,
}

/// The media type of content that starts with `head`.
fn sniff(head: &[u8]) -> String {
    match infer::get(head) {
        Some(kind) => kind.mime_type().to_owned(),
        None if !head.is_empty() && std::str::from_utf8(head).is_ok() => "text/plain".to_owned(),
        None => "application/octet-stream".to_owned(),
    }
}

impl Media {
    /// A media service storing in `objects` in parts of `part_bytes`, refusing uploads over
    /// `max_bytes`, and those that would take their user's stored bytes past `quota_bytes`;
    /// its links are signed by `links`.
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectStore>,
        part_bytes: usize,
        (max_bytes, quota_bytes): (u64, u64),
        links: LinkSigner,
    ) -> Self {
        Media { store, objects, part_bytes, max_bytes, quota_bytes, links }
    }

    /// Streams an upload into storage and records it.
    pub async fn upload<S, E>(&self, who: &Identity, mut body: S) -> Result<FileMeta>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        // Counted before the first byte is read; uploads racing each other may pass the quota by
        // what they carry between them, at most one upload limit each.
        let stored = u64::try_from(self.store.stored_bytes(who.user_id).await?).unwrap_or(0);
        let room = self.quota_bytes.saturating_sub(stored);
        if room == 0 {
            return Err(Error::QuotaExceeded { quota_bytes: self.quota_bytes });
        }
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let id = FileId(hex::encode(raw));
        let upload = self.objects.put_multipart(&Path::from(id.as_str())).await.map_err(Error::internal)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_bytes);
        let received = self.receive(&mut writer, &mut body, room).await;
        let (size, sha256, head) = match received {
            Ok(done) => done,
            Err(err) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "could not abort a failed upload");
                }
                return Err(err);
            }
        };
        writer.finish().await.map_err(Error::internal)?;
        let meta =
            FileMeta { id, owner_id: who.user_id, size: size as i64, mime: sniff(&head), sha256, created_at: now_ms() };
        self.store.create_file(&meta).await?;
        Ok(meta)
    }

    /// Streams `body` into `writer`, stopping at the size limit or at `room`, the user's quota
    /// left, whichever is first: the rest of the body is never read.
    async fn receive<S, E>(
        &self,
        writer: &mut WriteMultipart,
        body: &mut S,
        room: u64,
    ) -> Result<(u64, String, Vec<u8>)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::MalformedFrame(format!("upload interrupted: {e}")))?;
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(Error::FileTooLarge { max_bytes: self.max_bytes });
            }
            if size > room {
                return Err(Error::QuotaExceeded { quota_bytes: self.quota_bytes });
            }
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            // One part in flight at a time: what is buffered stays near one part, whatever the
            // client's pace against the store's.
            writer.wait_for_capacity(1).await.map_err(Error::internal)?;
            writer.write(&chunk);
        }
        if size == 0 {
            return Err(Error::validation("file", "the upload is empty"));
        }
        Ok((size, hex::encode(hasher.finalize()), head))
    }

    /// A file's metadata, if `who` may read it; `not_found` alike when it does not exist and
    /// when it is not theirs to read.
    pub async fn readable(&self, who: &Identity, id: &FileId) -> Result<FileMeta> {
        if !id.is_well_formed() || self.store.readable_files(who.user_id, std::slice::from_ref(id)).await?.is_empty() {
            return Err(Error::NotFound);
        }
        self.store.file(id).await?.ok_or(Error::NotFound)
    }

    /// A signed link to a file `who` may read.
    pub async fn link(&self, who: &Identity, id: &FileId) -> Result<FileLink> {
        self.readable(who, id).await?;
        Ok(self.links.sign(id, now_ms()))
    }

    /// A signed link to a file just uploaded, for its uploader.
    pub fn link_to_upload(&self, meta: &FileMeta) -> FileLink {
        self.links.sign(&meta.id, now_ms())
    }

    /// The metadata of the file a signed link (`exp`, `sig`) opens.
    pub async fn by_link(&self, id: &FileId, exp: &str, sig: &str) -> Result<FileMeta> {
        if !id.is_well_formed() {
            return Err(Error::NotFound);
        }
        self.links.verify(id, exp, sig, now_ms())?;
        self.store.file(id).await?.ok_or(Error::NotFound)
    }

    /// The file an avatar URL names, if it names one, checked: only a file `who` may read can
    /// become an avatar. Nothing is shared yet; [`Media::share_publicly`] does that once the
    /// change it belongs to is made.
    pub async fn avatar_file(&self, who: &Identity, url: Option<&str>) -> Result<Option<FileId>> {
        let Some(rest) = url.and_then(|u| u.strip_prefix("/file/")) else { return Ok(None) };
        let id = FileId(rest.to_owned());
        if !id.is_well_formed() || self.store.readable_files(who.user_id, std::slice::from_ref(&id)).await?.is_empty() {
            return Err(Error::validation("avatar", "an avatar's /file/ URL must name a file you can read"));
        }
        Ok(Some(id))
    }

    /// Lets every logged-in user read a file: it became an avatar, which anyone may see.
    pub async fn share_publicly(&self, id: &FileId) -> Result<()> {
        self.store.share_file_publicly(id).await
    }

    /// Streams a file's bytes, or the `range` of them, of a file `meta` found.
    pub async fn download(&self, meta: FileMeta, range: Option<Range<u64>>) -> Result<Download> {
        let options = GetOptions { range: range.clone().map(GetRange::Bounded), ..Default::default() };
        let got = self.objects.get_opts(&Path::from(meta.id.as_str()), options).await.map_err(|err| match err {
            object_store::Error::NotFound { .. } => {
                tracing::error!(file = %meta.id, "a recorded file is missing from storage");
                Error::NotFound
            }
            other => Error::internal(other),
        })?;
        let range = got.range.clone();
        Ok(Download { meta, range, body: got.into_stream() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_sniffed_from_content() {
        assert_eq!(sniff(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]), "image/png");
        assert_eq!(sniff(b"%PDF-1.7 rest"), "application/pdf");
        assert_eq!(sniff(b"just words"), "text/plain");
        assert_eq!(sniff(&[0xff, 0x00, 0xfe]), "application/octet-stream");
    }
}
