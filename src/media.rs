//! Media: uploads streamed to storage, and their metadata.
//!
//! Invariants:
//! - An upload is never held whole in memory: it streams, chunk by chunk, into a temporary
//!   file while its size is counted and its SHA-256 computed, and is renamed into place only
//!   when complete and within the size limit. A failed or oversized upload leaves nothing.
//! - The media type is sniffed from the content's first bytes, never taken from the client.
//! - A file id is 128 random bits (hex), so ids cannot be guessed.
//!
//! Storage is a directory (`<data-dir>/files`). Several nodes need a shared directory or an
//! object store behind this same interface.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::now_ms;
use crate::store::{FileMeta, Store};
use crate::user::Identity;

/// Bytes looked at to sniff a type.
const SNIFF_BYTES: usize = 8192;

/// The media service.
pub struct Media {
    store: Arc<dyn Store>,
    dir: PathBuf,
    max_bytes: u64,
}

/// Whether `id` has the shape of a file id; anything else names no file.
fn is_file_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
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
    /// A media service storing under `dir`, refusing uploads over `max_bytes`.
    pub fn new(store: Arc<dyn Store>, dir: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Media { store, dir, max_bytes })
    }

    /// Streams an upload into storage and records it.
    pub async fn upload<S, E>(&self, who: &Identity, mut body: S) -> Result<FileMeta>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let id = hex::encode(raw);
        let partial = self.dir.join(format!("{id}.part"));
        let written = self.receive(&partial, &mut body).await;
        let (size, sha256, head) = match written {
            Ok(done) => done,
            Err(err) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(err);
            }
        };
        tokio::fs::rename(&partial, self.path(&id)).await.map_err(Error::internal)?;
        let meta =
            FileMeta { id, owner_id: who.user_id, size: size as i64, mime: sniff(&head), sha256, created_at: now_ms() };
        self.store.create_file(&meta).await?;
        Ok(meta)
    }

    async fn receive<S, E>(&self, path: &Path, body: &mut S) -> Result<(u64, String, Vec<u8>)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create(path).await.map_err(Error::internal)?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::MalformedFrame(format!("upload interrupted: {e}")))?;
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(Error::FileTooLarge { max_bytes: self.max_bytes });
            }
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(Error::internal)?;
        }
        if size == 0 {
            return Err(Error::validation("file", "the upload is empty"));
        }
        file.sync_all().await.map_err(Error::internal)?;
        Ok((size, hex::encode(hasher.finalize()), head))
    }

    /// A file's metadata and where its bytes are, for authenticated callers.
    pub async fn locate(&self, id: &str) -> Result<(FileMeta, PathBuf)> {
        if !is_file_id(id) {
            return Err(Error::NotFound);
        }
        let meta = self.store.file(id).await?.ok_or(Error::NotFound)?;
        Ok((meta, self.path(id)))
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
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
        assert!(is_file_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_file_id("../../etc/passwd"));
        assert!(!is_file_id("0123456789ABCDEF0123456789abcdef"));
    }
}
