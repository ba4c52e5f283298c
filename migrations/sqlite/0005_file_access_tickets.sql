-- Who may read a file besides its uploader: each conversation one of whose messages references
-- it, or 'public' for a profile's or a group's avatar. Written with the message that shares it.
CREATE TABLE file_ref (
    file_id TEXT NOT NULL REFERENCES file(id), -- the shared file
    scope   TEXT NOT NULL,                     -- a conversation id, or 'public'
    PRIMARY KEY (file_id, scope)
);

-- Single-use socket tickets, for browsers, which cannot set a header on a WebSocket handshake.
-- Only the ticket's digest is kept; redeeming deletes the row, so a ticket opens one socket.
CREATE TABLE ws_ticket (
    digest           TEXT    PRIMARY KEY,                  -- hex SHA-256 of the ticket
    user_id          INTEGER NOT NULL REFERENCES users(id), -- whose session it opens
    jti              TEXT    NOT NULL,                     -- the login token it stands for
    token_version    INTEGER NOT NULL,                     -- that token's version
    token_expires_at INTEGER NOT NULL,                     -- that token's expiry, Unix ms
    expires_at       INTEGER NOT NULL                      -- the ticket's own expiry, Unix ms
);
CREATE INDEX ws_ticket_expires_at ON ws_ticket (expires_at);
