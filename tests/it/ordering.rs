//! One session's requests take effect in the order they were sent: pipelined sends get seqs in
//! send order, their replies come back in that order, and the other side's pushes follow it.

use serde_json::{Value, json};

use crate::harness::{Backend, Server, Via, Wire, device, user};
use crate::on_both;

on_both!(pipelined_sends_keep_their_order);

/// Sends written before the first reply is read.
const PIPELINED: usize = 500;

async fn pipelined_sends_keep_their_order(backend: Backend) {
    let server = Server::start(backend).await;
    let (mut alice, _) = user(&server, Via::Http, "order-alice").await;
    let (bob, bob_id) = user(&server, Via::Http, "order-bob").await;
    let made = alice.call("/group/room/add", json!({"name": "Order", "members": [bob_id]})).await.ok();
    let group_id = made["group"]["id"].as_str().unwrap().to_owned();
    for (chat_type, to) in [("single", bob_id.as_str()), ("group", group_id.as_str())] {
        let mut listener = device(&server, &bob, Wire::Json).await;
        let mut sender = device(&server, &alice, Wire::MsgPack).await;
        for i in 0..PIPELINED {
            let data = json!({"chatType": chat_type, "to": to, "kind": "text", "content": {"text": format!("{i}")}, "clientMsgId": format!("{chat_type}-{i}")});
            sender.send_value(&json!({"type": "req", "id": i, "route": "/message/send", "data": data})).await;
        }
        let mut replies = Vec::with_capacity(PIPELINED);
        while replies.len() < PIPELINED {
            let frame = sender.recv().await.expect("the sender's socket stays open");
            if frame["type"] == "res" {
                assert_eq!(frame["code"], 0, "{frame}");
                replies.push(frame);
            }
        }
        let reply_ids: Vec<i64> = replies.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(reply_ids, (0..PIPELINED as i64).collect::<Vec<_>>(), "{chat_type}: replies in send order");
        let seqs: Vec<i64> = replies.iter().map(|r| r["data"]["message"]["seq"].as_i64().unwrap()).collect();
        assert_eq!(inversions(&seqs), 0, "{chat_type}: seqs follow send order: {seqs:?}");

        let mut pushed = Vec::with_capacity(PIPELINED);
        while pushed.len() < PIPELINED {
            let push = listener.push("message.new").await;
            pushed.push(text_of(&push["data"]["message"]));
        }
        assert_eq!(pushed, (0..PIPELINED as i64).collect::<Vec<_>>(), "{chat_type}: pushes in send order");
    }
}

/// Adjacent pairs out of order.
fn inversions(seqs: &[i64]) -> usize {
    seqs.windows(2).filter(|w| w[0] >= w[1]).count()
}

fn text_of(message: &Value) -> i64 {
    message["content"]["text"].as_str().unwrap().parse().unwrap()
}
