//! An S3-compatible object store served in this process.

use std::path::Path;

/// An S3-compatible object store (s3s-fs over a temp dir) served in this process on a random
/// port, with one bucket.
pub struct S3 {
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// The bucket's name.
    pub bucket: String,
    root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

const S3_KEY: &str = "chatgate-test-key";
const S3_SECRET: &str = "chatgate-test-secret-0123456789";

impl S3 {
    /// Starts the store with an empty bucket named `bucket`.
    pub async fn start(bucket: &str) -> S3 {
        let root = tempfile::tempdir().expect("s3 dir");
        std::fs::create_dir(root.path().join(bucket)).expect("bucket dir");
        let mut builder = s3s::service::S3ServiceBuilder::new(s3s_fs::FileSystem::new(root.path()).expect("s3s-fs"));
        builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY, S3_SECRET));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind s3");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(socket);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        S3 { endpoint, bucket: bucket.to_owned(), root, task }
    }

    /// The environment a node needs to use this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", S3_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.into()),
        ]
    }

    /// Every stored object's key, and the store's unfinished multipart parts.
    pub fn contents(&self) -> (Vec<String>, Vec<String>) {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let bucket = self.root.path().join(&self.bucket);
        let mut objects = Vec::new();
        walk(&bucket, &bucket, &mut objects);
        let parts = std::fs::read_dir(self.root.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".part"))
            .collect();
        (objects, parts)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}
