-- chatgate schema for SQLite. Every column says what it holds; times are integer milliseconds
-- since the Unix epoch; flags are 0 or 1. The PostgreSQL twin is migrations/postgres/0001_init.sql.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT, -- unique user id, sent as a string on the wire
    username      TEXT    NOT NULL UNIQUE,           -- login name: 3-32 of [A-Za-z0-9_.-], unique
    password_hash TEXT    NOT NULL,                  -- argon2id PHC string; never the password
    token_version INTEGER NOT NULL DEFAULT 0,        -- bumped to revoke every token of the user (password reset)
    created_at    INTEGER NOT NULL,                  -- when the account was registered
    updated_at    INTEGER NOT NULL                   -- last change to the account row
);

CREATE TABLE profile (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE, -- owner of this profile
    nickname   TEXT    NOT NULL DEFAULT '',        -- display name, up to 64 characters
    avatar     TEXT    NOT NULL DEFAULT '',        -- avatar image URL (http(s) or /file/...), or empty
    gender     TEXT    NOT NULL DEFAULT 'unknown' CHECK (gender IN ('unknown','male','female','other')), -- self-declared gender
    birthday   TEXT,                               -- YYYY-MM-DD, or NULL when not given; private to the owner
    age        INTEGER CHECK (age BETWEEN 0 AND 150), -- self-declared age, or NULL
    signature  TEXT    NOT NULL DEFAULT '',        -- short status line, up to 256 characters
    updated_at INTEGER NOT NULL                    -- last profile change
);

CREATE TABLE user_login_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- log entry id, used as the paging cursor
    user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE, -- the account tried, NULL when the username matched none
    username   TEXT    NOT NULL,                   -- the username as typed (truncated to 64 characters)
    at         INTEGER NOT NULL,                   -- when the attempt was made
    ip         TEXT    NOT NULL,                   -- client address as the server saw it
    user_agent TEXT    NOT NULL,                   -- User-Agent header or device string, truncated to 256
    transport  TEXT    NOT NULL CHECK (transport IN ('ws','http')), -- the transport the attempt came over
    success    INTEGER NOT NULL CHECK (success IN (0,1)) -- 1 when the attempt logged in or registered
);
CREATE INDEX user_login_log_user ON user_login_log(user_id, id);

CREATE TABLE password_reset (
    token_hash TEXT    PRIMARY KEY,                -- SHA-256 (hex) of the single-use secret; the secret itself is never stored
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, -- whose password the secret resets
    created_at INTEGER NOT NULL,                   -- when it was issued
    expires_at INTEGER NOT NULL,                   -- after this it is refused (30 minutes after issue)
    used_at    INTEGER                             -- when it was spent or voided, NULL while usable
);
CREATE INDEX password_reset_user ON password_reset(user_id);

CREATE TABLE revoked_token (
    jti        TEXT    PRIMARY KEY,                -- the token id (JWT jti) that logged out
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, -- its owner
    expires_at INTEGER NOT NULL                    -- the token's own expiry; the row is useless after it
);

CREATE TABLE chat_group (
    id           INTEGER PRIMARY KEY AUTOINCREMENT, -- unique group id
    name         TEXT    NOT NULL,                 -- group name, 1-64 characters
    avatar       TEXT    NOT NULL DEFAULT '',      -- group avatar URL, or empty
    intro        TEXT    NOT NULL DEFAULT '',      -- what the group is about
    notice       TEXT    NOT NULL DEFAULT '',      -- the pinned announcement
    owner_id     INTEGER NOT NULL REFERENCES users(id), -- the one owner
    join_policy  TEXT    NOT NULL DEFAULT 'open' CHECK (join_policy IN ('open','invite')), -- who may join without an invite
    member_count INTEGER NOT NULL DEFAULT 0,       -- current members, kept in step with group_member
    max_members  INTEGER NOT NULL,                 -- member cap, at most the server's configured cap
    muted_until  INTEGER NOT NULL DEFAULT 0,       -- whole-group mute: plain members cannot send before this time
    dismissed_at INTEGER,                          -- when the owner dismissed it; a dismissed group is gone for clients
    created_at   INTEGER NOT NULL,                 -- when it was created
    updated_at   INTEGER NOT NULL,                 -- last change to its info or membership
    CHECK (member_count <= max_members)
);

CREATE TABLE group_member (
    group_id    INTEGER NOT NULL REFERENCES chat_group(id) ON DELETE CASCADE, -- the group
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,      -- the member
    role        TEXT    NOT NULL CHECK (role IN ('owner','admin','member')),  -- the member's role
    joined_at   INTEGER NOT NULL,                  -- when the member joined
    muted_until INTEGER NOT NULL DEFAULT 0,        -- this member cannot send before this time
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_member_user ON group_member(user_id);

CREATE TABLE conversation (
    id              TEXT    PRIMARY KEY,           -- 's:<low user id>:<high user id>' for one-to-one, 'g:<group id>' for a group
    chat_type       TEXT    NOT NULL CHECK (chat_type IN ('single','group')), -- one-to-one or group
    group_id        INTEGER REFERENCES chat_group(id) ON DELETE CASCADE, -- the group, for group conversations
    last_seq        INTEGER NOT NULL DEFAULT 0,    -- seq of the newest message; seqs are gapless from 1
    last_message_id INTEGER,                       -- id of the newest message, NULL before the first
    created_at      INTEGER NOT NULL,              -- when the first message or group made it
    updated_at      INTEGER NOT NULL               -- time of the latest activity
);

CREATE TABLE conversation_member (
    conversation_id TEXT    NOT NULL REFERENCES conversation(id) ON DELETE CASCADE, -- the conversation
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,        -- the participant whose state this is
    read_seq        INTEGER NOT NULL DEFAULT 0,    -- highest seq this user has read; only moves forward
    pinned          INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0,1)), -- listed first
    muted           INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0,1)),  -- left out of the unread total
    hidden          INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0,1)), -- hidden from the list until the next message
    draft           TEXT    NOT NULL DEFAULT '',   -- unsent text the user left in the composer
    updated_at      INTEGER NOT NULL,              -- last change to this user's state
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_member_user ON conversation_member(user_id);

CREATE TABLE message (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- unique message id
    conversation_id TEXT    NOT NULL REFERENCES conversation(id) ON DELETE CASCADE, -- where it was sent
    seq             INTEGER NOT NULL,              -- position in the conversation: 1, 2, 3... with no gaps
    chat_type       TEXT    NOT NULL CHECK (chat_type IN ('single','group')), -- one-to-one or group
    sender_id       INTEGER NOT NULL REFERENCES users(id), -- who sent it (for system messages, who caused it)
    recipient       INTEGER NOT NULL,              -- the peer's user id, or the group id
    kind            TEXT    NOT NULL,              -- text, image, video, audio, file, location, custom or system
    content         TEXT    NOT NULL,              -- the kind's content as JSON; '{}' once recalled
    client_msg_id   TEXT    NOT NULL,              -- the sender's idempotency key
    sent_at         INTEGER NOT NULL,              -- when the server stored it
    status          TEXT    NOT NULL DEFAULT 'normal' CHECK (status IN ('normal','recalled')), -- recalled messages keep their place
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_msg_id)
);
