//! Messages: appending them in order, exactly once, and reading them back.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{ConversationId, Message, MessageId, NewMessage, UserId};

/// Told of each newly stored message, in commit order, right after its commit and before its
/// sender is answered: so pushes of one conversation leave a node in seq order. It must not
/// block (publishing an event does not).
pub type CommitHook = Box<dyn Fn(&NewMessage, &Message) + Send + Sync>;

/// Where messages live.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a message: creates the conversation and, for one-to-one, both participants'
    /// state on first use; allocates the next seq; un-hides the conversation. If the sender
    /// used this `client_msg_id` before, stores nothing and returns the first message with
    /// `false`. `NotFound` if a one-to-one recipient does not exist. Messages arriving together
    /// are committed together (group commit).
    async fn append_message(&self, new: NewMessage) -> Result<(Message, bool)>;
    /// Sets the hook told of every new message; set once, at start-up.
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
    /// Marks a message recalled and empties its content.
    async fn recall(&self, message_id: MessageId) -> Result<Message>;
    /// Whether `user_id` takes part in a conversation.
    async fn is_participant(&self, conversation: &ConversationId, user_id: UserId) -> Result<bool>;
    /// Participants other than `except` whose read position reached `seq`.
    async fn readers(&self, conversation: &ConversationId, seq: i64, except: UserId) -> Result<Vec<UserId>>;
    /// `(conversation, last seq, updated_at)` of each of a user's conversations.
    async fn last_seqs(&self, user_id: UserId) -> Result<Vec<(ConversationId, i64, i64)>>;
}
