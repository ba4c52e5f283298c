-- The per-user change feed: each change to a user's own state (a conversation's settings or
-- read position, joining, leaving or being removed from a group, a group's info, the user's
-- profile) takes the next position of the user's feed, in the transaction of the change. Sync
-- answers the current state of what changed after a device's feed position, so a device that
-- was away learns it left a group or that a chat was read on the phone.

ALTER TABLE users ADD COLUMN feed_pos BIGINT NOT NULL DEFAULT 0;
COMMENT ON COLUMN users.feed_pos IS 'position of the newest entry of the user''s feed';

CREATE TABLE user_change (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pos     BIGINT NOT NULL,
    kind    TEXT   NOT NULL CHECK (kind IN ('conversation','group','profile','hidden')),
    subject TEXT   NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, pos)
);
COMMENT ON TABLE user_change IS 'each user''s feed of changes to their own state, by position';
COMMENT ON COLUMN user_change.subject IS 'the conversation id, the group id, or the user id';
