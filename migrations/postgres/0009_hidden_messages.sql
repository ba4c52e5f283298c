-- Delete for me: messages a user has hidden from their own devices. Others still see them. A
-- hidden message no longer counts as unread for its hider (the unread counters move with the
-- hide, in its transaction), and the hide is an entry of the hider's feed.

CREATE TABLE message_hidden (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message_id BIGINT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    PRIMARY KEY (user_id, message_id)
);
CREATE INDEX message_hidden_message ON message_hidden (message_id);
COMMENT ON TABLE message_hidden IS 'messages each user deleted for themselves only';

