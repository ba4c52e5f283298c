//! The floor and the ceiling: a bare tokio-tungstenite server with 4 KiB read buffers. Every
//! text frame one socket sends goes, as the same bytes, to every other socket; each socket's
//! writer feeds the frames that are queued and flushes once (the batched writes chatgate's own
//! sessions use). No accounts, no routing, no storage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Peers = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Utf8Bytes>>>>;

/// Serves on `127.0.0.1:port` until killed.
pub async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let peers: Peers = Arc::default();
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(16 * 1024);
    for id in 0u64.. {
        let (stream, _) = listener.accept().await?;
        let peers = peers.clone();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else { return };
            let (tx, mut rx) = mpsc::unbounded_channel();
            peers.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
            let (mut sink, mut source) = ws.split();
            loop {
                tokio::select! {
                    Some(first) = rx.recv() => {
                        let mut ok = sink.feed(Message::Text(first)).await.is_ok();
                        while let (true, Ok(more)) = (ok, rx.try_recv()) {
                            ok = sink.feed(Message::Text(more)).await.is_ok();
                        }
                        if !ok || sink.flush().await.is_err() { break; }
                    }
                    frame = source.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            for (other, tx) in peers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                                if *other != id { let _ = tx.send(text.clone()); }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            peers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }
    Ok(())
}
