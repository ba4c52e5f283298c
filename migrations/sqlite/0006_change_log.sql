-- The conversation log: every change to a conversation's messages (a new message, a recall, an
-- edit, a reaction added or removed, a delete for everyone) takes the next position of the
-- conversation's one monotonic sequence, apart from the gapless message seq. A new message's
-- position is its row's `pos`; the other changes are rows of message_change. Sync returns the
-- entries after a device's position, so a device that was away converges to what an online one
-- saw. Written by the message writer, in the transaction of the change itself.

ALTER TABLE conversation ADD COLUMN last_pos INTEGER NOT NULL DEFAULT 0; -- position of the newest entry of the conversation's log
ALTER TABLE conversation ADD COLUMN log_floor INTEGER NOT NULL DEFAULT 0; -- entries at or below this position were compacted away

-- The message table again, to let its status say 'deleted' (SQLite cannot alter a CHECK) and to
-- keep when it was last edited and its position in the log.
CREATE TABLE message_next (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- unique message id
    conversation_id TEXT    NOT NULL REFERENCES conversation(id) ON DELETE CASCADE, -- where it was sent
    seq             INTEGER NOT NULL,              -- position in the conversation: 1, 2, 3... with no gaps
    chat_type       TEXT    NOT NULL CHECK (chat_type IN ('single','group')), -- one-to-one or group
    sender_id       INTEGER NOT NULL REFERENCES users(id), -- who sent it (for system messages, who caused it)
    recipient       INTEGER NOT NULL,              -- the peer's user id, or the group id
    kind            TEXT    NOT NULL,              -- text, image, video, audio, file, location, custom or system
    content         TEXT    NOT NULL,              -- the kind's content as JSON; '{}' once recalled or deleted
    client_msg_id   TEXT    NOT NULL,              -- the sender's idempotency key
    sent_at         INTEGER NOT NULL,              -- when the server stored it
    status          TEXT    NOT NULL DEFAULT 'normal' CHECK (status IN ('normal','recalled','deleted')), -- recalled and deleted messages keep their place
    edited_at       INTEGER,                       -- when its sender last edited it, NULL if never
    pos             INTEGER NOT NULL DEFAULT 0,    -- its entry's position in the conversation's log
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_msg_id)
);
INSERT INTO message_next (id, conversation_id, seq, chat_type, sender_id, recipient, kind, content, client_msg_id, sent_at, status, pos)
SELECT id, conversation_id, seq, chat_type, sender_id, recipient, kind, content, client_msg_id, sent_at, status, seq FROM message;
DROP TABLE message;
ALTER TABLE message_next RENAME TO message;

CREATE TABLE message_change (
    conversation_id TEXT    NOT NULL REFERENCES conversation(id) ON DELETE CASCADE, -- whose log
    pos             INTEGER NOT NULL,              -- position in the conversation's log: 1, 2, 3...
    message_id      INTEGER NOT NULL,              -- the message changed
    kind            TEXT    NOT NULL CHECK (kind IN ('recall','delete','edit','react','unreact')), -- what happened to it
    actor_id        INTEGER NOT NULL,              -- who did it
    data            TEXT    NOT NULL,              -- the state it left, as JSON: the edited content, a reaction's key and count
    at              INTEGER NOT NULL,              -- when
    PRIMARY KEY (conversation_id, pos)
);

-- Every message already stored is its conversation's entry at its seq.
UPDATE conversation SET last_pos = last_seq;

CREATE TABLE message_edit (
    message_id INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE, -- the edited message
    version    INTEGER NOT NULL,                   -- 1 for the content as sent, 2 after the first edit...
    content    TEXT    NOT NULL,                   -- the content of that version, as JSON
    replaced_at INTEGER NOT NULL,                  -- when an edit replaced it
    PRIMARY KEY (message_id, version)
);

CREATE TABLE message_reaction (
    message_id INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE, -- the message reacted to
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,   -- who reacted
    reaction   TEXT    NOT NULL,                   -- the reaction's key: an emoji or a short name
    at         INTEGER NOT NULL,                   -- when
    PRIMARY KEY (message_id, reaction, user_id)
);
