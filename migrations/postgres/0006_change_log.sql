-- The conversation log: every change to a conversation's messages (a new message, a recall, an
-- edit, a reaction added or removed, a delete for everyone) takes the next position of the
-- conversation's one monotonic sequence, apart from the gapless message seq. A new message's
-- position is its row's `pos`; the other changes are rows of message_change. Sync returns the
-- entries after a device's position, so a device that was away converges to what an online one
-- saw. Written by the message writer, in the transaction of the change itself.

ALTER TABLE conversation ADD COLUMN last_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversation ADD COLUMN log_floor BIGINT NOT NULL DEFAULT 0;
COMMENT ON COLUMN conversation.last_pos IS 'position of the newest entry of the conversation''s log';
COMMENT ON COLUMN conversation.log_floor IS 'entries at or below this position were compacted away';

ALTER TABLE message DROP CONSTRAINT message_status_check;
ALTER TABLE message ADD CONSTRAINT message_status_check CHECK (status IN ('normal','recalled','deleted'));
ALTER TABLE message ADD COLUMN edited_at BIGINT;
ALTER TABLE message ADD COLUMN pos BIGINT NOT NULL DEFAULT 0;
UPDATE message SET pos = seq;
COMMENT ON COLUMN message.status IS 'recalled and deleted messages keep their place';
COMMENT ON COLUMN message.edited_at IS 'when its sender last edited it, NULL if never';
COMMENT ON COLUMN message.pos IS 'its entry''s position in the conversation''s log';

CREATE TABLE message_change (
    conversation_id TEXT   NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
    pos             BIGINT NOT NULL,
    message_id      BIGINT NOT NULL,
    kind            TEXT   NOT NULL CHECK (kind IN ('recall','delete','edit','react','unreact')),
    actor_id        BIGINT NOT NULL,
    data            TEXT   NOT NULL,
    at              BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, pos)
);
COMMENT ON TABLE message_change IS 'each conversation''s log of changes to its messages, by position (new messages keep theirs in message.pos)';
COMMENT ON COLUMN message_change.pos IS 'position in the conversation''s log: 1, 2, 3...';
COMMENT ON COLUMN message_change.data IS 'the state it left, as JSON: the edited content, a reaction''s key and count';

-- Every message already stored is its conversation's entry at its seq.
UPDATE conversation SET last_pos = last_seq;

CREATE TABLE message_edit (
    message_id BIGINT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    content     TEXT   NOT NULL,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, version)
);
COMMENT ON TABLE message_edit IS 'earlier versions of edited messages: the content of each version, 1 as sent, until an edit replaced it at replaced_at';

CREATE TABLE message_reaction (
    message_id BIGINT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reaction   TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (message_id, reaction, user_id)
);
COMMENT ON TABLE message_reaction IS 'one row per user per reaction key per message';
