//! Delivery of notifications the user must receive out of band (password-reset secrets).
//!
//! With `--notify-webhook` they are POSTed as JSON to an email or SMS service; without it they
//! are appended, one JSON object per line, to `<data-dir>/outbox.jsonl`. Delivery runs in the
//! background so that the caller's answer and its timing reveal nothing.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::domain::Notices;
use crate::model::{ResetNotice, UserId};

/// A password-reset notification as delivered: `{kind, username, userId, resetToken, resetUrl,
/// expiresAt}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    kind: &'static str,
    username: &'a str,
    user_id: UserId,
    reset_token: &'a str,
    reset_url: &'a str,
    expires_at: i64,
}

/// Where notifications go.
#[derive(Clone)]
pub enum Notifier {
    /// POST to a URL.
    Webhook {
        /// HTTP client with a timeout.
        client: reqwest::Client,
        /// The webhook.
        url: String,
    },
    /// Append to a file.
    Outbox {
        /// The outbox file.
        path: PathBuf,
    },
}

impl Notifier {
    /// Builds the notifier the configuration asks for.
    pub fn new(webhook: Option<&str>, outbox: PathBuf) -> anyhow::Result<Self> {
        Ok(match webhook {
            Some(url) => Notifier::Webhook {
                client: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
                url: url.to_owned(),
            },
            None => Notifier::Outbox { path: outbox },
        })
    }

    async fn deliver(&self, notice: &ResetNotice) -> anyhow::Result<()> {
        let envelope = Envelope {
            kind: "password_reset",
            username: &notice.username,
            user_id: notice.user_id,
            reset_token: &notice.reset_token,
            reset_url: &notice.reset_url,
            expires_at: notice.expires_at,
        };
        match self {
            Notifier::Webhook { client, url } => {
                client.post(url).json(&envelope).send().await?.error_for_status()?;
            }
            Notifier::Outbox { path } => {
                let mut line = serde_json::to_vec(&envelope)?;
                line.push(b'\n');
                // One write of one line with O_APPEND: concurrent notices never interleave.
                let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?;
                file.write_all(&line).await?;
                file.flush().await?;
            }
        }
        Ok(())
    }
}

impl Notices for Notifier {
    /// Delivers a reset notice in the background; failures are logged (without the secret).
    fn send_reset(&self, notice: ResetNotice) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.deliver(&notice).await {
                tracing::error!(user_id = %notice.user_id, error = %err, "password-reset notification not delivered");
            }
        });
    }
}
