//! Uploads and downloads: streaming, sniffing, Range, limits, memory.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::{Backend, Process, S3, Server, Via, postgres_database, register_at, upload_at, user};
use crate::on_both;

on_both!(upload_sniff_and_ranges, oversized_upload_is_refused_whole, uploads_stop_at_the_storage_quota);

const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];

fn png(len: usize) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    bytes.extend((0..len - PNG.len()).map(|i| (i % 251) as u8));
    bytes
}

async fn upload_sniff_and_ranges(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, _) = user(&server, Via::Http, "media-alice").await;
    let (bob, _) = user(&server, Via::Http, "media-bob").await;
    let token = alice.token.clone().unwrap();
    let http = reqwest::Client::new();
    let body = png(300_000);

    // A raw body whose claimed type is a lie: the type is sniffed.
    let r = http
        .post(server.url("/file/upload"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let up: Value = r.json().await.unwrap();
    let data = &up["data"];
    assert_eq!((data["mime"].as_str(), data["size"].as_i64()), (Some("image/png"), Some(300_000)));
    assert_eq!(data["sha256"], hex::encode(Sha256::digest(&body)));
    let url = data["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/file/{}", data["fileId"].as_str().unwrap()));

    // The uploader may fetch it by header; another user may not until it is shared with them.
    let r = http.get(server.url(&url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "image/png"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["content-security-policy"], "sandbox");
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    let r = http.get(server.url(&url)).bearer_auth(bob.token.as_ref().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // The upload's signed link is what an <img> carries: no token at all.
    let link = data["link"].as_str().unwrap();
    let r = http.get(server.url(link)).header("range", "bytes=1000-1999").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 1000-1999/300000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[1000..2000]);
    let get = |range: &'static str| http.get(server.url(&url)).bearer_auth(&token).header("range", range).send();
    let tail = get("bytes=-100").await.unwrap();
    assert_eq!(
        (tail.status().as_u16(), tail.headers()["content-range"].to_str().unwrap()),
        (206, "bytes 299900-299999/300000")
    );
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &body[299_900..]);
    let beyond = get("bytes=400000-").await.unwrap();
    assert_eq!(
        (beyond.status().as_u16(), beyond.headers()["content-range"].to_str().unwrap()),
        (416, "bytes */300000")
    );
    // A Range that does not parse is ignored: the whole file.
    assert_eq!(get("pages=1-2").await.unwrap().bytes().await.unwrap().len(), 300_000);
    let etag = format!("\"{}\"", data["sha256"].as_str().unwrap());
    let cached = http.get(server.url(&url)).bearer_auth(&token).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);

    refusals_and_multipart(&server, &url, &token).await;
}

/// Refusals for missing and bad tokens or ids; multipart uploads are sniffed too.
async fn refusals_and_multipart(server: &Server, url: &str, token: &str) {
    let http = reqwest::Client::new();
    // Refusals: no token, a bad token, ids that name nothing.
    assert_eq!(http.get(server.url(url)).send().await.unwrap().status(), 401);
    assert_eq!(http.get(server.url(url)).bearer_auth("x.y.z").send().await.unwrap().status(), 401);
    for bad in ["/file/0123456789abcdef0123456789abcdef", "/file/..%2F..%2Fetc%2Fpasswd", "/file/chatgate.db"] {
        assert_eq!(http.get(server.url(bad)).bearer_auth(token).send().await.unwrap().status(), 404, "{bad}");
    }
    // (A small body: refused unread, a large one may be cut off while it is still being sent.)
    assert_eq!(http.post(server.url("/file/upload")).body(PNG.to_vec()).send().await.unwrap().status(), 401);
    let empty = http.post(server.url("/file/upload")).bearer_auth(token).send().await.unwrap();
    assert_eq!(empty.status(), 400);

    // Multipart, and a non-media type is served as an attachment.
    let form = reqwest::multipart::Form::new().text("note", "ignored").part(
        "file",
        reqwest::multipart::Part::bytes(b"<html><script>alert(1)</script>".to_vec())
            .file_name("x.html")
            .mime_str("image/png")
            .unwrap(),
    );
    let up: Value = http
        .post(server.url("/file/upload"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(up["data"]["mime"], "text/html", "sniffed, not the claimed image/png: {up}");
    let r = http.get(server.url(up["data"]["url"].as_str().unwrap())).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.headers()["content-disposition"], "attachment");
}

async fn oversized_upload_is_refused_whole(backend: Backend) {
    let server = Server::start_with(backend, &["--max-upload-bytes", "1048576"]).await;
    let (alice, _) = user(&server, Via::Http, "media-big").await;
    let http = reqwest::Client::new();
    let r = http
        .post(server.url("/file/upload"))
        .bearer_auth(alice.token.as_ref().unwrap())
        .body(png(2 << 20))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "file.too_large");
    let leftovers: Vec<_> = std::fs::read_dir(server.dir.path().join("files")).unwrap().collect();
    assert!(leftovers.is_empty(), "a refused upload leaves nothing: {leftovers:?}");
    let ok = http
        .post(server.url("/file/upload"))
        .bearer_auth(alice.token.as_ref().unwrap())
        .body(png(1 << 20))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// A 50 MiB upload streams: the server's resident memory grows by far less than the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_streams_without_buffering() {
    let server = Process::start(&["--log", "warn", "--hash-concurrency", "1"], &[]).await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let (token, _) = register_at(&base, "streamer").await;
    // Warm up the upload path so one-off allocations do not count as growth.
    http.post(format!("{base}/file/upload")).bearer_auth(&token).body(png(1 << 20)).send().await.unwrap();
    let before = server.rss_kib();

    const SIZE: usize = 50 << 20;
    const CHUNK: usize = 64 << 10;
    let mut hasher = Sha256::new();
    let chunks: Vec<bytes::Bytes> =
        (0..SIZE / CHUNK).map(|i| bytes::Bytes::from(vec![(i % 256) as u8; CHUNK])).collect();
    for c in &chunks {
        hasher.update(c);
    }
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let r = http
        .post(format!("{base}/file/upload"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let up: Value = r.json().await.unwrap();
    assert_eq!(up["data"]["size"], SIZE as i64);
    assert_eq!(up["data"]["sha256"], hex::encode(hasher.finalize()));
    let after = server.rss_kib();
    let growth_mib = after.saturating_sub(before) as f64 / 1024.0;
    assert!(growth_mib < 10.0, "server RSS grew {growth_mib:.1} MiB for a 50 MiB upload ({before} -> {after} KiB)");
    eprintln!("50 MiB upload: server RSS {before} -> {after} KiB (+{growth_mib:.1} MiB)");
}

/// Two nodes on one database and one S3 bucket: a file uploaded through one is served, whole
/// and by range, by the other; an oversized upload leaves neither an object nor a part behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_uploads_through_s3() {
    let s3 = S3::start("media").await;
    let database = postgres_database().await;
    let args = [
        "--database-url",
        &database,
        "--media-url",
        "s3://media/uploads",
        "--max-upload-bytes",
        "8388608",
        "--jwt-secret",
        "integration-tests-shared-signing-key-0123456789",
        "--log",
        "warn",
        "--hash-concurrency",
        "1",
    ];
    let a = Process::start(&args, &s3.env()).await;
    let b = Process::start(&args, &s3.env()).await;
    let http = reqwest::Client::new();
    let (token, _) = register_at(&a.base, "s3-user").await;

    // Over 5 MiB: at least two parts of a multipart upload.
    let body = png(7 << 20);
    let up = upload_at(&a.base, &token, body.clone()).await;
    let data = &up["data"];
    assert_eq!((data["mime"].as_str(), data["size"].as_u64()), (Some("image/png"), Some(7 << 20)), "{up}");
    let url = data["url"].as_str().unwrap().to_owned();
    let id = data["fileId"].as_str().unwrap().to_owned();
    assert_eq!(s3.contents(), (vec![format!("uploads/{id}")], vec![]), "one object under the prefix, no parts left");

    let whole = http.get(format!("{}{url}", b.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!((whole.status().as_u16(), whole.headers()["content-type"].to_str().unwrap()), (200, "image/png"));
    assert_eq!(whole.headers()["etag"], format!("\"{}\"", data["sha256"].as_str().unwrap()));
    let bytes = whole.bytes().await.unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), data["sha256"].as_str().unwrap());
    let part = http
        .get(format!("{}{url}", b.base))
        .bearer_auth(&token)
        .header("range", "bytes=5242000-5243999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], format!("bytes 5242000-5243999/{}", 7 << 20));
    assert_eq!(part.bytes().await.unwrap().as_ref(), &body[5_242_000..5_244_000]);

    let refused = http.post(format!("{}/file/upload", a.base)).bearer_auth(&token).body(png(12 << 20)).send().await;
    assert_eq!(refused.unwrap().status(), 413);
    assert_eq!(s3.contents(), (vec![format!("uploads/{id}")], vec![]), "the refused upload left nothing");
}

async fn uploads_stop_at_the_storage_quota(backend: Backend) {
    let server = Server::start_with(backend, &["--storage-quota-bytes", "700000"]).await;
    let (alice, _) = user(&server, Via::Http, "media-quota").await;
    let (bob, _) = user(&server, Via::Http, "media-quota-bob").await;
    let http = reqwest::Client::new();
    let upload = |token: String, len: usize| {
        let request = http.post(server.url("/file/upload")).bearer_auth(token).body(png(len));
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let alice_token = alice.token.clone().unwrap();
    assert_eq!(upload(alice_token.clone(), 400_000).await.0, 200);
    // 400,000 + 400,000 passes 700,000: refused mid-stream, and the partial file is gone.
    let (status, body) = upload(alice_token.clone(), 400_000).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("quota.exceeded")), "{body}");
    let stored = std::fs::read_dir(server.dir.path().join("files")).unwrap().count();
    assert_eq!(stored, 1, "only the first upload is stored");
    // What still fits is taken; the quota is the user's own, not shared.
    assert_eq!(upload(alice_token.clone(), 250_000).await.0, 200);
    assert_eq!(upload(alice_token, 60_000).await.1["error"], "quota.exceeded");
    assert_eq!(upload(bob.token.clone().unwrap(), 400_000).await.0, 200);
}
