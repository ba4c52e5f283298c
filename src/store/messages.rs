//! Messages: appending them in order, exactly once, and reading them back.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{
    Change, ConversationId, LogEntry, Message, MessageId, NewChange, NewMessage, Reaction, Turn, UserId,
};

/// What the message writer committed: a new message or a change to one.
#[derive(Debug, Clone, Copy)]
pub enum Committed<'a> {
    /// A new message, and what was asked.
    Message(&'a NewMessage, &'a Message),
    /// A change, and what was asked.
    Change(&'a NewChange, &'a Change),
}

/// Told of each new message and change, in commit order, right after its commit and before its
/// sender is answered: so pushes of one conversation leave a node in log order. It must not
/// block (publishing an event does not).
pub type CommitHook = Box<dyn Fn(Committed<'_>) + Send + Sync>;

/// A page of a conversation's log.
#[derive(Debug, Clone, Default)]
pub struct LogPage {
    /// The entries, in log order: a prefix of what follows the position asked.
    pub entries: Vec<LogEntry>,
    /// Entries beyond the page wait.
    pub has_more: bool,
}

/// A conversation of a user, as sync first looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its newest message's seq.
    pub last_seq: i64,
    /// Its log's newest position.
    pub last_pos: i64,
    /// Entries at or below this position were compacted away.
    pub log_floor: i64,
    /// Its latest activity.
    pub updated_at: i64,
}

/// Where messages live.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a message: creates the conversation and, for one-to-one, both participants'
    /// state on first use; allocates the next seq; un-hides the conversation. If the sender
    /// used this `client_msg_id` before, stores nothing and returns the first message with
    /// `false`. `NotFound` if a one-to-one recipient does not exist. Messages arriving together
    /// are committed together (group commit), and queued for the writer in `turn`: so one
    /// session's messages take seqs in the order it sent them.
    async fn append_message(&self, new: NewMessage, turn: &Turn) -> Result<(Message, bool)>;
    /// Changes a message, taking the next position of its conversation's log, through the same
    /// writer as new messages and in `turn`. `None` when the message is already in the state
    /// asked (recalled, reacted with that key...): nothing is logged. Refused with `not_found`
    /// when the message is gone, `message.not_editable` for an edit of a message no longer
    /// normal, and `message.reactions_full` past the distinct keys a message may have.
    async fn change_message(&self, change: NewChange, turn: &Turn) -> Result<Option<Change>>;
    /// Sets the hook told of every new message and change; set once, at start-up.
    fn set_commit_hook(&self, hook: CommitHook);
    /// A sender's message by idempotency key.
    async fn message_by_client_id(&self, sender: UserId, client_msg_id: &str) -> Result<Option<Message>>;
    /// A message by id.
    async fn message(&self, id: MessageId) -> Result<Option<Message>>;
    /// Messages by id.
    async fn messages_by_ids(&self, ids: &[MessageId]) -> Result<Vec<Message>>;
    /// Messages with seq above `after`, ascending.
    async fn messages_after(&self, conversation: &ConversationId, after: i64, limit: i64) -> Result<Vec<Message>>;
    /// Messages with seq below `before`, descending.
    async fn messages_before(&self, conversation: &ConversationId, before: i64, limit: i64) -> Result<Vec<Message>>;
    /// The messages of a conversation with seq below `before` that mention `user_id` (by id or
    /// `@all`), sent by others and not hidden by them, descending.
    async fn mentions_before(
        &self,
        conversation: &ConversationId,
        user_id: UserId,
        before: i64,
        limit: i64,
    ) -> Result<Vec<Message>>;
    /// Hides a message from `user_id`'s own devices (delete for me): it stops counting as their
    /// unread, and the hide is an entry of their feed. `false` if it was hidden already.
    async fn hide_message(&self, user_id: UserId, message: &Message, now: i64) -> Result<bool>;
    /// Which of `messages` `user_id` has hidden.
    async fn hidden_among(&self, user_id: UserId, messages: &[MessageId]) -> Result<Vec<MessageId>>;
    /// Entries of a conversation's log after position `after` and stamped at or below `upto`:
    /// at most `limit` of them.
    async fn log_after(&self, conversation: &ConversationId, after: i64, upto: i64, limit: i64) -> Result<LogPage>;
    /// The reactions of `messages`, with `reader`'s own marked, by message.
    async fn reactions(&self, messages: &[MessageId], reader: UserId) -> Result<Vec<(MessageId, Reaction)>>;
    /// A message's earlier versions: `(version, content, replaced_at)`, oldest first.
    async fn versions(&self, message_id: MessageId) -> Result<Vec<(i64, serde_json::Value, i64)>>;
    /// Whether `user_id` takes part in a conversation.
    async fn is_participant(&self, conversation: &ConversationId, user_id: UserId) -> Result<bool>;
    /// Participants other than `except` whose read position reached `seq` (or with `read`
    /// false, has not), ascending by id after `after`: at most `limit`.
    async fn readers(
        &self,
        conversation: &ConversationId,
        seq: i64,
        except: UserId,
        read: bool,
        after: UserId,
        limit: i64,
    ) -> Result<Vec<UserId>>;
    /// Who reacted to a message with `key`, ascending by id after `after`: at most `limit`.
    async fn reactors(&self, message_id: MessageId, key: &str, after: UserId, limit: i64) -> Result<Vec<UserId>>;
    /// How many participants other than `except` have read up to `seq`, and how many have not.
    async fn reader_counts(&self, conversation: &ConversationId, seq: i64, except: UserId) -> Result<(i64, i64)>;
    /// The read positions past `after` of a conversation's participants.
    async fn read_positions_past(&self, conversation: &ConversationId, after: i64) -> Result<Vec<(UserId, i64)>>;
    /// Where each of a user's conversations stands.
    async fn heads(&self, user_id: UserId) -> Result<Vec<LogHead>>;
    /// The newest stamp of the log clock: every entry stamped at or below it is committed.
    async fn clock(&self) -> Result<i64>;
    /// Where each of a user's conversations whose log moved past stamp `since` stands, from
    /// conversation `from` on (by id, itself included), ascending by id: at most `limit`.
    async fn changed_heads(
        &self,
        user_id: UserId,
        since: i64,
        from: Option<&ConversationId>,
        limit: i64,
    ) -> Result<Vec<LogHead>>;
    /// The position of a conversation's newest entry stamped at or below `stamp` (0 if none).
    async fn pos_at(&self, conversation: &ConversationId, stamp: i64) -> Result<i64>;
}
