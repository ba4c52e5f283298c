-- One clock for every conversation log: each batch the message writer commits takes the next
-- stamp, and its messages, its changes and the conversations they touch carry it. The clock's
-- row is updated in the batch's transaction, so its lock orders the commits of every writer
-- (on every node) by stamp: once a stamp is read, every entry at or below it is committed. A
-- device then syncs from one stamp (everything at or below it is known) instead of naming each
-- of its conversations, and sync's cost follows the conversations that changed since.

CREATE TABLE log_clock (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    stamp BIGINT  NOT NULL
);
COMMENT ON TABLE log_clock IS 'the one row of the conversation logs'' clock';
COMMENT ON COLUMN log_clock.stamp IS 'the newest batch stamp taken';
INSERT INTO log_clock (id, stamp) VALUES (1, 0);

ALTER TABLE conversation ADD COLUMN stamp BIGINT NOT NULL DEFAULT 0;
ALTER TABLE message ADD COLUMN stamp BIGINT NOT NULL DEFAULT 0;
ALTER TABLE message_change ADD COLUMN stamp BIGINT NOT NULL DEFAULT 0;
COMMENT ON COLUMN conversation.stamp IS 'stamp of the batch of its log''s newest entry';
COMMENT ON COLUMN message.stamp IS 'stamp of the batch that stored it';
COMMENT ON COLUMN message_change.stamp IS 'stamp of the batch that stored it';
