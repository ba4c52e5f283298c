-- The per-user change feed: each change to a user's own state (a conversation's settings or
-- read position, joining, leaving or being removed from a group, a group's info, the user's
-- profile) takes the next position of the user's feed, in the transaction of the change. Sync
-- answers the current state of what changed after a device's feed position, so a device that
-- was away learns it left a group or that a chat was read on the phone.

ALTER TABLE users ADD COLUMN feed_pos INTEGER NOT NULL DEFAULT 0; -- position of the newest entry of the user's feed

CREATE TABLE user_change (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, -- whose feed
    pos     INTEGER NOT NULL,                  -- position in the user's feed: 1, 2, 3...
    kind    TEXT    NOT NULL CHECK (kind IN ('conversation','group','profile','hidden')), -- what changed; 'hidden' is a message deleted for this user only
    subject TEXT    NOT NULL,                  -- which: the conversation id, the group id, the user id, or the message id
    at      INTEGER NOT NULL,                  -- when
    PRIMARY KEY (user_id, pos)
);
