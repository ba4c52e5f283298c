-- Who may read a file besides its uploader: each conversation one of whose messages references
-- it, or 'public' for a profile's or a group's avatar. Written with the message that shares it.
CREATE TABLE file_ref (
    file_id TEXT NOT NULL REFERENCES file(id),
    scope   TEXT NOT NULL,
    PRIMARY KEY (file_id, scope)
);
COMMENT ON TABLE file_ref IS 'conversations (or public) a file is shared with';

-- Single-use socket tickets, for browsers, which cannot set a header on a WebSocket handshake.
-- Only the ticket's digest is kept; redeeming deletes the row, so a ticket opens one socket.
CREATE TABLE ws_ticket (
    digest           TEXT   PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users(id),
    jti              TEXT   NOT NULL,
    token_version    BIGINT NOT NULL,
    token_expires_at BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX ws_ticket_expires_at ON ws_ticket (expires_at);
