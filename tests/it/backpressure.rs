//! The outbound queue's byte cap (`--outbound-queue-bytes`, 1 MiB), seen from outside: a reader
//! that stops reading while another user floods it with 64 KB messages is dropped, the sender
//! never waits, and the server process's memory stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Backend, Process, WAIT, Ws, metric_at, postgres_database, register_at, rss_kib};
use crate::on_both;

on_both!(a_reader_that_stops_reading_costs_its_queue_cap_and_no_more);

/// Characters of each message's payload: with the request's envelope (about 200 bytes) it is
/// just under the default 64 KiB frame cap, so each push is about 64 KB too.
const BLOB: usize = 64_000;
/// Messages sent at the stuck reader: 820 × 64 KB = 52.5 MB.
const MESSAGES: usize = 820;
/// What the server's resident memory may grow by while they are sent. With the byte cap the
/// stuck session holds at most 1 MiB queued plus the batch its writer took out of the queue
/// before the socket filled (at most another 1 MiB) and tungstenite's write buffer (144 KiB);
/// the kernel's socket buffers are not in the process's RSS. The rest of the margin is the
/// allocator's and the database's. Without the byte cap, only the frame cap (1024 frames)
/// would stop the queue: all 820 messages, 52 MB, would sit in it.
const MAX_GROWTH_MIB: f64 = 24.0;
const PASSWORD: &str = "a long enough password";

async fn a_reader_that_stops_reading_costs_its_queue_cap_and_no_more(backend: Backend) {
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(postgres_database().await),
    };
    let mut args =
        vec!["--log", "warn", "--hash-concurrency", "1", "--db-max-connections", "4", "--rate-session", "100000"];
    args.extend(["--rate-user", "100000", "--rate-address", "100000", "--login-attempts-per-minute", "100000"]);
    if let Some(url) = &database {
        args.extend(["--database-url", url]);
    }
    let server = Process::start(&args, &[]).await;
    let (sender, _) = register_at(&server.base, "bp-sender").await;
    let (_, reader_id) = register_at(&server.base, "bp-reader").await;
    let http = reqwest::Client::new();
    let send = |n: usize| {
        let body = json!({"chatType": "single", "to": reader_id, "kind": "custom", "content": {"data": "x".repeat(BLOB)}, "clientMsgId": format!("bp-{n}")});
        http.post(format!("{}/message/send", server.base)).bearer_auth(&sender).json(&body).send()
    };

    // The reader logs in over its socket, whose receive buffer is small so that the kernel
    // takes little off the server's hands, and reads the first messages: the path is warm.
    let mut reader = stuck_reader(&server).await;
    for n in 0..8 {
        assert_eq!(send(n).await.unwrap().json::<Value>().await.unwrap()["code"], 0);
        assert_eq!(
            reader.push("message.new").await["data"]["message"]["content"]["data"].as_str().unwrap().len(),
            BLOB
        );
    }
    let before = server.rss_kib();
    let peak = PeakRss::watch(server.child.id());

    // From here on it never reads. Every send still succeeds, without waiting for it (a send
    // that did would wait for ever).
    let mut slowest = Duration::ZERO;
    for n in 8..MESSAGES {
        let started = Instant::now();
        let reply: Value = send(n).await.unwrap().json().await.unwrap();
        assert_eq!(reply["code"], 0, "send {n}: {reply}");
        slowest = slowest.max(started.elapsed());
        if n == MESSAGES / 2 {
            // 26 MB in, far past the cap and whatever the kernel buffers, it has been dropped;
            // the frame cap alone (1024 frames) would have kept it.
            wait_offline(&server.base, &sender, &reader_id).await;
        }
    }
    let peak = peak.stop();
    assert!(slowest < Duration::from_secs(5), "a send waited {slowest:?}");
    assert_eq!(metric_at(&server.base, "chatgate_queue_drops_total").await, 1.0);
    assert_eq!(metric_at(&server.base, "chatgate_sessions").await, 0.0);
    let growth_mib = peak.saturating_sub(before) as f64 / 1024.0;
    eprintln!(
        "{} MB sent at a stuck reader: server RSS {before} -> peak {peak} KiB (+{growth_mib:.1} MiB)",
        MESSAGES * BLOB / 1_000_000
    );
    assert!(growth_mib < MAX_GROWTH_MIB, "server RSS grew {growth_mib:.1} MiB ({before} -> {peak} KiB)");

    // What the server had written before it gave up is still there to read, then the end.
    let mut delivered = 0;
    while reader.recv().await.is_ok() {
        delivered += 1;
    }
    assert!(delivered < MESSAGES / 4, "{delivered} messages reached a reader that never read");
}

/// A socket logged in as `bp-reader`, with a small receive buffer.
async fn stuck_reader(server: &Process) -> Ws {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let request = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
    let (socket, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await.unwrap();
    let mut reader = Ws::wrap(socket);
    let login = reader.request("/user/login", json!({"username": "bp-reader", "password": PASSWORD})).await;
    assert_eq!(login["code"], 0, "{login}");
    reader.push("session.ready").await;
    reader
}

/// Waits until `user` has no session left, as the sender (`token`) sees it.
async fn wait_offline(base: &str, token: &str, user: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let request = reqwest::Client::new().get(format!("{base}/user/online")).query(&[("ids", user)]);
        let online: Value = request.bearer_auth(token).send().await.unwrap().json().await.unwrap();
        if online["data"]["online"][user] == false {
            return;
        }
        assert!(Instant::now() < deadline, "the stuck reader was never dropped: {online}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The highest resident memory of a process, sampled every 10 ms on a thread of its own
/// (memory freed by the end would hide a peak from a reading taken then).
struct PeakRss {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl PeakRss {
    fn watch(pid: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            // A server gone (a failed test killed it) ends the watch with what was seen.
            while let Some(rss) = rss_kib(pid) {
                peak = peak.max(rss);
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        PeakRss { stop, thread }
    }

    /// The peak, in KiB.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampler")
    }
}
