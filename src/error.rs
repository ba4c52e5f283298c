//! The one error type of chatgate.
//!
//! Every failure a client can see is a variant here. Each variant has a stable wire reason
//! (the `error` field of a response, catalogued in `proto-docs/errors.md`) and an HTTP status.
//! Internal details travel in [`Error::Internal`] and are logged by the transport, never sent.

use std::borrow::Cow;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure with a stable wire reason and an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The route needs an authenticated caller and there is none.
    #[error("authentication required")]
    AuthRequired,
    /// Wrong username or password; the two cases are indistinguishable on purpose.
    #[error("wrong username or password")]
    InvalidCredentials,
    /// The token is malformed, expired, revoked or signed by someone else.
    #[error("token is invalid or expired")]
    TokenInvalid,
    /// A password-reset secret that is unknown, spent or expired.
    #[error("reset token is invalid, used or expired")]
    ResetTokenInvalid,
    /// A signed file link that is malformed, forged or expired.
    #[error("the file link is invalid or expired; ask for a new one")]
    LinkInvalid,
    /// A socket ticket that is unknown, used or expired.
    #[error("the socket ticket is invalid, used or expired; ask for a new one")]
    TicketInvalid,
    /// A request field failed validation; `field` names it in the reason `validation.<field>`.
    #[error("{message}")]
    Validation {
        /// The offending field, as named on the wire.
        field: Cow<'static, str>,
        /// What is wrong with it, for people.
        message: String,
    },
    /// The username is taken.
    #[error("username already taken")]
    UserExists,
    /// The sender is muted in the group.
    #[error("you are muted in this group")]
    Muted,
    /// An upload over the size limit.
    #[error("the file is larger than the limit of {max_bytes} bytes")]
    FileTooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// An upload that would take its user past their storage quota.
    #[error("the upload would pass your storage quota of {quota_bytes} bytes")]
    QuotaExceeded {
        /// The quota.
        quota_bytes: u64,
    },
    /// The group has no room for the members being added.
    #[error("the group is full")]
    GroupFull,
    /// The message can no longer be edited: recalled, deleted, or past the edit window.
    #[error("this message can no longer be edited")]
    NotEditable,
    /// The message has as many distinct reaction keys as it may; only those can be added.
    #[error("this message has as many kinds of reaction as it may")]
    ReactionsFull,
    /// Nothing by that id, or nothing the caller may see.
    #[error("not found")]
    NotFound,
    /// The caller is known but may not do this.
    #[error("forbidden")]
    Forbidden,
    /// Too many requests; try again after the given delay.
    #[error("rate limited")]
    RateLimited {
        /// Milliseconds until a retry may succeed.
        retry_after_ms: u64,
    },
    /// The frame could not be decoded (bad JSON or MessagePack, wrong shape).
    #[error("malformed frame: {0}")]
    MalformedFrame(String),
    /// The frame decoded but its `type` is not one the server knows.
    #[error("unknown frame type")]
    UnknownFrameType,
    /// No route has that path.
    #[error("unknown route")]
    UnknownRoute,
    /// The route exists but not with this HTTP method.
    #[error("method not allowed for this route")]
    MethodNotAllowed,
    /// The route is served over the WebSocket only.
    #[error("this route is served over the WebSocket only")]
    SocketOnly,
    /// A dependency (the database) is unreachable; retry later.
    #[error("service unavailable, retry later")]
    Unavailable,
    /// A bug or an unexpected failure. The source is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// Builds a [`Error::Validation`] for `field`.
    pub fn validation(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::Validation { field: field.into(), message: message.into() }
    }

    /// Wraps an unexpected failure.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Error::Internal(err.into())
    }

    /// The stable wire reason, e.g. `auth.required` or `validation.username`.
    pub fn reason(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Error::AuthRequired => "auth.required",
            Error::InvalidCredentials => "auth.invalid_credentials",
            Error::TokenInvalid => "auth.token_invalid",
            Error::ResetTokenInvalid => "auth.reset_token_invalid",
            Error::TicketInvalid => "auth.ticket_invalid",
            Error::LinkInvalid => "file.link_invalid",
            Error::Validation { field, .. } => return Cow::Owned(format!("validation.{field}")),
            Error::UserExists => "user.exists",
            Error::GroupFull => "group.full",
            Error::NotEditable => "message.not_editable",
            Error::ReactionsFull => "message.reactions_full",
            Error::FileTooLarge { .. } => "file.too_large",
            Error::QuotaExceeded { .. } => "quota.exceeded",
            Error::NotFound => "not_found",
            Error::Forbidden => "forbidden",
            Error::Muted => "group.muted",
            Error::RateLimited { .. } => "rate_limited",
            Error::MalformedFrame(_) => "frame.malformed",
            Error::UnknownFrameType => "frame.unknown_type",
            Error::UnknownRoute => "route.unknown",
            Error::MethodNotAllowed => "route.method",
            Error::SocketOnly => "route.socket_only",
            Error::Unavailable => "unavailable",
            Error::Internal(_) => "internal",
        })
    }

    /// The reason with every `validation.<field>` folded into `validation`: a fixed set, for
    /// metric labels.
    pub fn family(&self) -> &'static str {
        if matches!(self, Error::Validation { .. }) {
            return "validation";
        }
        match self.reason() {
            Cow::Borrowed(reason) => reason,
            Cow::Owned(_) => "validation",
        }
    }

    /// The HTTP status the HTTP mirror answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Validation { .. } | Error::MalformedFrame(_) | Error::UnknownFrameType | Error::SocketOnly => 400,
            Error::AuthRequired
            | Error::InvalidCredentials
            | Error::TokenInvalid
            | Error::ResetTokenInvalid
            | Error::TicketInvalid => 401,
            Error::Forbidden | Error::Muted | Error::LinkInvalid => 403,
            Error::NotFound | Error::UnknownRoute => 404,
            Error::MethodNotAllowed => 405,
            Error::UserExists | Error::GroupFull | Error::NotEditable | Error::ReactionsFull => 409,
            Error::FileTooLarge { .. } | Error::QuotaExceeded { .. } => 413,
            Error::RateLimited { .. } => 429,
            Error::Internal(_) => 500,
            Error::Unavailable => 503,
        }
    }

    /// The message sent to people: never the internal cause.
    pub fn public_message(&self) -> String {
        self.to_string()
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %err, "database unavailable");
                Error::Unavailable
            }
            other => Error::Internal(other.into()),
        }
    }
}
