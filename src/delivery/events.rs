//! The domain's outward ports, served by the gateway: each event becomes its push (encoded by
//! the API layer, once per format) for this node's sessions, and an envelope for the others.

use std::collections::HashSet;

use async_trait::async_trait;

use super::bus::{group_channel, user_channel};
use super::gateway::{Gateway, Item};
use crate::api::push::{self, Push};
use crate::domain::{Events, Presence};
use crate::model::{Audience, Event, Group, GroupId, MemberChange, UserId};

#[async_trait]
impl Presence for Gateway {
    async fn online(&self, users: &[UserId]) -> anyhow::Result<Vec<bool>> {
        let cluster = self.bus.online(users).await?;
        // Users with a session here are online whatever the bus says.
        Ok(users.iter().zip(cluster).map(|(u, c)| c || self.has_sessions(*u)).collect())
    }
}

impl Events for Gateway {
    fn publish(&self, event: Event) {
        match event {
            Event::Kick { user_id, jti, reason } => {
                self.kick(user_id, jti.as_deref(), reason);
                let item =
                    Item::Kick { user: user_id, jti: jti.map(|j| j.to_string()), reason: reason.as_str().to_owned() };
                self.send(user_channel(user_id), vec![item]);
            }
            Event::GroupChanged { group, change, recipients, joined, left } => {
                self.group_changed(group, change, &recipients, &joined, &left);
            }
            Event::GroupDismissed { group_id, by, recipients } => self.group_dismissed(group_id, by, recipients),
            Event::MessageNew { message, audience, skip_session } => {
                self.fan_out(push::message_new(message), &audience, skip_session);
            }
            Event::MessageChanged { change, audience, skip_session } => {
                self.fan_out(push::message_changed(change), &audience, skip_session);
            }
            Event::MessageHidden { user_id, conversation_id, message_id, seq, skip_session } => {
                let push = push::message_hidden(conversation_id, message_id, seq);
                self.fan_out(push, &Audience::Users(vec![user_id]), skip_session);
            }
            Event::Typing { conversation_id, user_id, audience } => {
                self.fan_out(push::typing(conversation_id, user_id), &audience, None);
            }
            Event::MessageRead { conversation_id, user_id, seq, recipients } => {
                self.fan_out(push::message_read(conversation_id, user_id, seq), &Audience::Users(recipients), None);
            }
            Event::MessageDelivered { conversation_id, user_id, seq, recipients } => {
                let push = push::message_delivered(conversation_id, user_id, seq);
                self.fan_out(push, &Audience::Users(recipients), None);
            }
            Event::ReadCounts { conversation_id, counts, recipient } => {
                self.fan_out(
                    push::message_read_count(conversation_id, counts),
                    &Audience::Users(vec![recipient]),
                    None,
                );
            }
            Event::ConversationUpdated { user_id, view, skip_session } => {
                self.fan_out(push::conversation_updated(*view), &Audience::Users(vec![user_id]), skip_session);
            }
        }
    }
}

impl Gateway {
    /// A group's info or membership changed: its members hear of it, and every node follows
    /// the membership change in its subscriptions.
    fn group_changed(
        &self,
        group: Group,
        change: Option<MemberChange>,
        recipients: &[UserId],
        added: &[UserId],
        removed: &[UserId],
    ) {
        let group_id = group.id;
        let updated = push::group_updated(group);
        let member = change.as_ref().map(|change| push::group_member(group_id, change));
        self.deliver(recipients, &updated, None);
        if let Some(member) = &member {
            self.deliver(recipients, member, None);
        }
        self.apply_membership(group_id, added, removed);
        if !self.bus.has_peers() {
            return;
        }
        // Users whose membership changed hear of it on their own channel: their nodes may not be
        // subscribed to the group (yet, or any more).
        let affected: HashSet<UserId> = added.iter().chain(removed).copied().collect();
        let items = |to: Vec<UserId>| {
            let mut items = vec![Item::Push { frame: updated.json_text(), to: to.clone() }];
            if let Some(member) = &member {
                items.push(Item::Push { frame: member.json_text(), to });
            }
            items.push(Item::Membership { group: group_id, added: added.to_vec(), removed: removed.to_vec() });
            items
        };
        let others: Vec<UserId> = recipients.iter().copied().filter(|r| !affected.contains(r)).collect();
        self.send(group_channel(group_id), items(others));
        for user in affected {
            self.send(user_channel(user), items(vec![user]));
        }
    }

    /// A group was dismissed: its members hear of it and leave it, here and on every node.
    fn group_dismissed(&self, group_id: GroupId, by: UserId, recipients: Vec<UserId>) {
        let push: Push = push::group_dismissed(group_id, by);
        self.deliver(&recipients, &push, None);
        self.apply_membership(group_id, &[], &recipients);
        let items = vec![
            Item::Push { frame: push.json_text(), to: recipients.clone() },
            Item::Membership { group: group_id, added: vec![], removed: recipients },
        ];
        self.send(group_channel(group_id), items);
    }
}
