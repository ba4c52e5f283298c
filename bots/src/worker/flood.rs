//! The flood role: malformed frames on a schedule, to show that each gets a typed error or a
//! close, and that healthy sessions do not feel it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{Ctx, close_reason};
use crate::conn::{self, Incoming, Socket};
use crate::pace::{Next, Pacer};
use crate::plan::Plan;
use crate::stats::Stats;

/// Malformed frames, round-robin: each must get a typed error, or a close.
fn bad_frame(n: u64) -> Message {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    match n % 6 {
        0 => Message::Text("{\"type\":\"req\",".into()),
        1 => Message::Text(r#"{"type":"zap","id":1}"#.into()),
        2 => Message::Text("[".repeat(5000).into()),
        3 => Message::Binary(vec![0xc1, 0xff, 0x00].into()),
        4 => Message::Text(r#"{"type":"req","id":123456789012345678901234567890,"route":"/x"}"#.into()),
        _ => Message::Frame(Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true)),
    }
}

/// Sends bad frames on schedule; counts the error reasons and closes that come back.
pub async fn flood(ctx: Ctx, plan: Arc<Plan>, node: usize, ws: Socket, rate: f64) -> Stats {
    let mut stats = Stats::default();
    let Some(mut pacer) = Pacer::new(rate) else { return stats };
    let mut ws = Some(ws);
    let mut n = 0u64;
    while !ctx.stop.is_cancelled() {
        let Some(socket) = ws.as_mut() else {
            match conn::open(ctx.protocol, plan.nodes[node % plan.nodes.len()], None, None, None).await {
                Ok(fresh) => ws = Some(fresh),
                Err(reason) => {
                    Stats::fail(&mut stats.connect_failures, &reason);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            continue;
        };
        match pacer.next(ctx.start.elapsed()) {
            Next::Wait(due) => {
                tokio::select! {
                    _ = ctx.stop.cancelled() => break,
                    _ = tokio::time::sleep_until((ctx.start + due).into()) => continue,
                }
            }
            Next::Send(_) => {}
        }
        n += 1;
        stats.sent += 1;
        ctx.live.sent.fetch_add(1, Ordering::Relaxed);
        if socket.send(bad_frame(n)).await.is_err() {
            ws = None;
            continue;
        }
        // Its answer: a typed error, or the close it earned.
        let answer = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        match answer {
            Ok(Some(Ok(Message::Text(text)))) => match conn::classify(ctx.protocol, &text) {
                Incoming::Reply { error: Some(reason), .. } => Stats::fail(&mut stats.errors, reason),
                _ => Stats::fail(&mut stats.errors, "unexpected answer"),
            },
            Ok(Some(Ok(Message::Close(frame)))) => {
                Stats::fail(&mut stats.closed, &close_reason(frame));
                ws = None;
            }
            // A MessagePack frame is answered in MessagePack.
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                let malformed = bytes.windows(15).any(|w| w == b"frame.malformed");
                Stats::fail(&mut stats.errors, if malformed { "frame.malformed" } else { "unexpected binary answer" });
            }
            Ok(Some(Ok(_))) => Stats::fail(&mut stats.errors, "unexpected answer"),
            _ => {
                Stats::fail(&mut stats.closed, &format!("no answer to bad frame kind {}", n % 6));
                ws = None;
            }
        }
    }
    stats
}
