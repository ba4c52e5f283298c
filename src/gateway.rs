//! The gateway: turns domain events into pushes and closes for live sessions.
//!
//! Each push is built once and encoded at most once per format, then shared by every recipient
//! session (see [`Push`]). Recipients' sessions are looked up in the [`Registry`] with one map
//! read per user, and nothing here waits on any session.

use std::sync::Arc;

use crate::events::{Event, Events};
use crate::proto::{
    self, ConversationReply, GroupDismissed, GroupMember, GroupReply, MessageReply, Push, ReadReceipt, Recalled,
    TypingInfo,
};
use crate::registry::{Ending, Registry};

/// Delivers events to this node's sessions.
pub struct Gateway {
    registry: Arc<Registry>,
}

impl Gateway {
    /// A gateway over `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Gateway { registry }
    }

    /// Queues `push` to every session of every user in `recipients`, but `skip`.
    fn deliver_except(&self, recipients: &[i64], push: &Push, skip: Option<u64>) {
        for &user_id in recipients {
            for session in self.registry.sessions(user_id) {
                if Some(session.id) != skip {
                    session.send(push.payload(session.format));
                }
            }
        }
    }

    fn deliver(&self, recipients: &[i64], push: &Push) {
        self.deliver_except(recipients, push, None);
    }
}

impl Events for Gateway {
    fn publish(&self, event: Event) {
        match event {
            Event::Kick { user_id, jti, reason } => {
                for session in self.registry.sessions(user_id) {
                    let matches = match (&jti, session.identity()) {
                        (None, _) => true,
                        (Some(jti), Some(identity)) => identity.jti == *jti,
                        (Some(_), None) => false,
                    };
                    if matches {
                        session.end(Ending::Kicked(reason));
                    }
                }
            }
            Event::GroupChanged { group, change, recipients } => {
                let group_id = group.id;
                self.deliver(&recipients, &Push::new(proto::event::GROUP_UPDATED, GroupReply { group: group.into() }));
                if let Some(change) = change {
                    let member = GroupMember {
                        group_id,
                        action: change.action.as_str(),
                        user_ids: change.user_ids,
                        by: change.by,
                    };
                    self.deliver(&recipients, &Push::new(proto::event::GROUP_MEMBER, member));
                }
            }
            Event::GroupDismissed { group_id, by, recipients } => {
                self.deliver(&recipients, &Push::new(proto::event::GROUP_DISMISSED, GroupDismissed { group_id, by }));
            }
            Event::MessageNew { message, recipients, skip_session } => {
                let push = Push::new(proto::event::MESSAGE_NEW, MessageReply { message: message.into() });
                self.deliver_except(&recipients, &push, skip_session);
            }
            Event::MessageRecalled { conversation_id, message_id, seq, recipients } => {
                let push = Push::new(proto::event::MESSAGE_RECALLED, Recalled { conversation_id, message_id, seq });
                self.deliver(&recipients, &push);
            }
            Event::Typing { conversation_id, user_id, recipients } => {
                self.deliver(&recipients, &Push::new(proto::event::TYPING, TypingInfo { conversation_id, user_id }));
            }
            Event::MessageRead { conversation_id, user_id, seq, recipients } => {
                let push = Push::new(proto::event::MESSAGE_READ, ReadReceipt { conversation_id, user_id, seq });
                self.deliver(&recipients, &push);
            }
            Event::ConversationUpdated { user_id, view, skip_session } => {
                let push =
                    Push::new(proto::event::CONVERSATION_UPDATED, ConversationReply { conversation: (*view).into() });
                self.deliver_except(&[user_id], &push, skip_session);
            }
        }
    }
}
