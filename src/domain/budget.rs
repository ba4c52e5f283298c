//! Replies bounded by bytes as well as by count: a page of messages stops at a byte budget, so
//! that every reply fits what the socket accepts (its write buffer and the session's outbound
//! queue), whatever the messages hold. What is cut is never lost: the page says `has_more`, and
//! the client asks again from where it got to.

use serde_json::Value;

use crate::model::{Change, Changed, ConversationView, Message, Peer};

/// Bytes one reply carries at most, by these estimates: a quarter of a session's 1 MiB outbound
/// queue, so that a reply and the pushes around it fit, and far above any one message (a frame
/// is at most 64 KiB), so that a page always holds at least one.
pub const REPLY_BUDGET: usize = 256 * 1024;

/// The share of [`REPLY_BUDGET`] a sync gives its messages and changes; a quarter is for the
/// conversations they belong to, and the rest for the user's feed ([`SYNC_FEED_BUDGET`]).
pub const SYNC_MESSAGES_BUDGET: usize = REPLY_BUDGET / 8 * 5;

/// The share of [`REPLY_BUDGET`] a sync gives the user's feed.
pub const SYNC_FEED_BUDGET: usize = REPLY_BUDGET / 8;

/// The share of [`REPLY_BUDGET`] a sync gives the conversations its messages belong to: the
/// rest, so that the three shares add up to the whole.
pub const SYNC_CONVERSATIONS_BUDGET: usize = REPLY_BUDGET - SYNC_MESSAGES_BUDGET - SYNC_FEED_BUDGET;

/// What a conversation's fields other than its texts take on the wire, at most: ids, counters,
/// flags, times and field names.
const CONVERSATION_OVERHEAD: usize = 1024;

/// What a message's fields other than its content take on the wire, at most: ids, seq, kinds,
/// the sender's key (64 characters at most), times, status, position and the field names.
const MESSAGE_OVERHEAD: usize = 448;

/// What a change to a message takes on the wire besides an edit's content and a reaction's
/// key: ids, seq, position, times, its type and the field names.
const CHANGE_OVERHEAD: usize = 320;

/// What a reply's quote takes besides its kind and snippet: ids, status and the field names.
const QUOTE_OVERHEAD: usize = 160;

/// What one reaction takes besides its key: its count, its flag and the field names.
const REACTION_OVERHEAD: usize = 64;

/// An upper bound of the bytes `message` takes in a JSON reply (MessagePack is smaller).
pub fn estimate(message: &Message) -> usize {
    let reactions: usize = message.reactions.iter().map(|r| REACTION_OVERHEAD + string_bytes(&r.key)).sum();
    let quote = message.quote.as_ref().map_or(0, |q| QUOTE_OVERHEAD + string_bytes(&q.kind) + string_bytes(&q.snippet));
    MESSAGE_OVERHEAD + value_bytes(&message.content) + reactions + quote
}

/// An upper bound of the bytes `change` takes in a JSON reply.
pub fn change_estimate(change: &Change) -> usize {
    CHANGE_OVERHEAD
        + match &change.what {
            Changed::Edited { content } => value_bytes(content),
            Changed::Reaction { key, .. } => string_bytes(key),
            Changed::Recalled | Changed::Deleted => 0,
        }
}

/// The bytes serde_json writes for `value`, or a little more: strings with their quotes and
/// escapes, numbers at their longest, and the punctuation around each item.
fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => string_bytes(s),
        Value::Array(items) => 2 + items.iter().map(|v| value_bytes(v) + 1).sum::<usize>(),
        Value::Object(map) => 2 + map.iter().map(|(k, v)| string_bytes(k) + 2 + value_bytes(v)).sum::<usize>(),
    }
}

/// A string's JSON bytes: UTF-8 as it is, quotes and backslashes doubled, control characters
/// as `\uXXXX` at worst.
fn string_bytes(s: &str) -> usize {
    2 + s.len() + s.bytes().filter(|&b| b < 0x20 || b == b'"' || b == b'\\').count() * 5
}

/// An upper bound of the bytes `view` takes in a JSON reply: its texts, doubled for escapes,
/// and its last message by [`estimate`].
pub fn view_estimate(view: &ConversationView) -> usize {
    let texts: usize = match &view.peer {
        Some(Peer::User(user)) => {
            let p = &user.profile;
            [&user.username, &p.nickname, &p.avatar, &p.signature].iter().map(|t| t.len()).sum()
        }
        Some(Peer::Group(group)) => {
            [&group.name, &group.avatar, &group.intro, &group.notice].iter().map(|t| t.len()).sum()
        }
        None => 0,
    };
    CONVERSATION_OVERHEAD + 2 * (texts + view.state.draft.len()) + view.last_message.as_ref().map_or(0, estimate)
}

/// The bytes a reply has left, spent item by item in the order the items are sent.
#[derive(Debug)]
pub struct Budget {
    left: usize,
    admitted: usize,
}

impl Budget {
    /// A reply of at most `bytes`.
    pub fn new(bytes: usize) -> Self {
        Budget { left: bytes, admitted: 0 }
    }

    /// Whether an item of `size` bytes still goes in, spending it if so. The first item always
    /// does, so that a page holds at least one and paging always moves on.
    pub fn admit(&mut self, size: usize) -> bool {
        if size > self.left && self.admitted > 0 {
            return false;
        }
        self.left = self.left.saturating_sub(size);
        self.admitted += 1;
        true
    }

    /// How many of `messages`, taken in order, go in.
    pub fn fitting<'m>(&mut self, messages: impl IntoIterator<Item = &'m Message>) -> usize {
        messages.into_iter().take_while(|m| self.admit(estimate(m))).count()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::message::QUOTE_CHARS;
    use crate::model::{ConversationId, MessageId, Quote, Reaction, Recipient, Status, UserId};

    fn message(content: Value) -> Message {
        Message {
            id: MessageId(i64::MAX),
            conversation_id: ConversationId::group(crate::model::GroupId(i64::MAX)),
            seq: i64::MAX,
            from: UserId(i64::MAX),
            to: Recipient::Group(crate::model::GroupId(i64::MAX)),
            kind: "custom".into(),
            content,
            client_msg_id: "k".repeat(64),
            sent_at: i64::MAX,
            status: Status::Normal,
            pos: i64::MAX,
            edited_at: Some(i64::MAX),
            reactions: vec![Reaction { key: "\"".repeat(32), count: i64::MAX, mine: false }],
            quote: Some(Quote {
                message_id: MessageId(i64::MAX),
                from: UserId(i64::MAX),
                kind: "custom".into(),
                status: Status::Recalled,
                snippet: "\"".repeat(QUOTE_CHARS),
            }),
        }
    }

    #[test]
    fn the_estimate_is_never_below_what_serde_writes() {
        let contents = [
            json!({"text": "plain words"}),
            json!({"text": "é✓ unicode \" quotes \\ and\nnew\tlines \u{1}"}),
            json!({"data": {"deep": [1, -2.5e300, null, true, {"k": "v"}], "n": u64::MAX}}),
            json!({"text": "x".repeat(5000)}),
        ];
        for content in contents {
            let m = message(content);
            let wire = serde_json::to_vec(&json!({
                "id": m.id.0.to_string(), "conversationId": m.conversation_id.to_string(), "seq": m.seq,
                "chatType": "group", "from": m.from.0.to_string(), "to": "9223372036854775807",
                "kind": m.kind, "content": m.content, "clientMsgId": m.client_msg_id, "sentAt": m.sent_at,
                "status": "recalled", "pos": m.pos, "editedAt": m.edited_at,
                "reactions": m.reactions.iter().map(|r| json!({"key": r.key, "count": r.count, "mine": r.mine})).collect::<Vec<_>>(),
                "quote": m.quote.as_ref().map(|q| json!({"messageId": q.message_id.0.to_string(), "from": q.from.0.to_string(), "kind": q.kind, "status": "recalled", "snippet": q.snippet})),
            }))
            .unwrap();
            assert!(estimate(&m) >= wire.len(), "{} < {}", estimate(&m), wire.len());
        }
    }

    #[test]
    fn pages_stop_at_the_budget_but_hold_one() {
        let big = || message(json!({"text": "x".repeat(100_000)}));
        let small = || message(json!({"text": "x"}));
        let mut budget = Budget::new(4000);
        budget.admitted = 1;
        assert_eq!(budget.fitting(&[small(), small(), small()]), 2);
        let mut budget = Budget::new(1000);
        assert_eq!(budget.fitting(&[big(), small()]), 1, "one always goes");
        assert_eq!(budget.left, 0);
        assert_eq!(budget.fitting(&[small()]), 0, "the budget is spent");
    }
}
