//! The floor and the ceiling: bare tokio-tungstenite servers with 4 KiB read buffers, with no
//! accounts, routing or storage.
//!
//! - [`echo`], the floor: one task per socket that echoes what it reads (the server measured in
//!   ../shared/notes at about 6.8 KB per idle socket).
//! - [`serve`], the ceiling: every text frame one socket sends goes, as the same bytes, to
//!   every other socket; each socket's writer feeds the frames that are queued and flushes once
//!   (the batched writes chatgate's own sessions use).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Peers = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Utf8Bytes>>>>;

/// Echoes on `127.0.0.1:port` until killed.
pub async fn echo(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else { return };
            while let Some(Ok(frame)) = ws.next().await {
                if frame.is_text() && ws.send(frame).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Broadcasts on `127.0.0.1:port` until killed.
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
