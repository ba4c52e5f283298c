//! The in-process bus: a single node attaches alone and nothing crosses; several nodes in one
//! process (tests) reach each other through it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Bus, INBOUND_QUEUE};
use crate::model::UserId;

#[derive(Default)]
struct HubNode {
    channels: HashSet<String>,
    online: HashSet<UserId>,
    inbound: Option<mpsc::Sender<Bytes>>,
}

/// An in-process bus shared by the nodes of one process.
#[derive(Default, Clone)]
pub struct LocalHub {
    nodes: Arc<Mutex<HashMap<String, HubNode>>>,
}

/// One node's handle on a [`LocalHub`].
pub struct LocalBus {
    hub: LocalHub,
    node: String,
}

impl LocalHub {
    /// Attaches node `node`; envelopes for it arrive on the returned receiver.
    pub fn attach(&self, node: &str) -> (LocalBus, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_owned(), HubNode { inbound: Some(tx), ..HubNode::default() });
        (LocalBus { hub: self.clone(), node: node.to_owned() }, rx)
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, HubNode>) -> R) -> R {
        f(&mut self.nodes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for LocalBus {
    fn drop(&mut self) {
        self.hub.with(|nodes| nodes.remove(&self.node));
    }
}

#[async_trait]
impl Bus for LocalBus {
    fn publish(&self, channel: String, envelope: Bytes) {
        let targets: Vec<mpsc::Sender<Bytes>> = self.hub.with(|nodes| {
            nodes
                .iter()
                .filter(|(id, n)| **id != self.node && n.channels.contains(&channel))
                .filter_map(|(_, n)| n.inbound.clone())
                .collect()
        });
        for target in targets {
            let _ = target.try_send(envelope.clone());
        }
    }

    fn subscribe(&self, channel: String) {
        self.hub.with(|nodes| nodes.get_mut(&self.node).map(|n| n.channels.insert(channel)));
    }

    fn unsubscribe(&self, channel: String) {
        self.hub.with(|nodes| nodes.get_mut(&self.node).map(|n| n.channels.remove(&channel)));
    }

    fn set_presence(&self, users: Vec<UserId>, online: bool) {
        self.hub.with(|nodes| {
            if let Some(n) = nodes.get_mut(&self.node) {
                for user in users {
                    if online {
                        n.online.insert(user);
                    } else {
                        n.online.remove(&user);
                    }
                }
            }
        });
    }

    async fn online(&self, users: &[UserId]) -> anyhow::Result<Vec<bool>> {
        Ok(self.hub.with(|nodes| users.iter().map(|u| nodes.values().any(|n| n.online.contains(u))).collect()))
    }

    fn has_peers(&self) -> bool {
        self.hub.with(|nodes| nodes.len() > 1)
    }

    async fn ready(&self) -> bool {
        true
    }
}
