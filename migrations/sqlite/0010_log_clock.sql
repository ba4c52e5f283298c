-- One clock for every conversation log: each batch the message writer commits takes the next
-- stamp, and its messages, its changes and the conversations they touch carry it. A device then
-- syncs from one stamp (everything at or below it is known) instead of naming each of its
-- conversations, and sync's cost follows the conversations that changed since.

CREATE TABLE log_clock (
    id    INTEGER PRIMARY KEY CHECK (id = 1),  -- the one row
    stamp INTEGER NOT NULL                     -- the newest batch stamp taken
);
INSERT INTO log_clock (id, stamp) VALUES (1, 0);

ALTER TABLE conversation ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0;   -- its newest entry's stamp
ALTER TABLE message ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0;        -- its batch's stamp
ALTER TABLE message_change ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0; -- its batch's stamp
