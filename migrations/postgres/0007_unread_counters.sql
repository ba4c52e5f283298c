-- Unread counts kept as counters, in the transactions that change them, so that reading a
-- count costs nothing whatever the history: a participant's unread is the conversation's
-- countable messages (normal, not system) minus those that are not unread for them (at or below
-- their read position, or their own).

ALTER TABLE conversation ADD COLUMN countable BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversation_member ADD COLUMN read_countable BIGINT NOT NULL DEFAULT 0;
COMMENT ON COLUMN conversation.countable IS 'messages that count as unread for the others: normal, not system';
COMMENT ON COLUMN conversation_member.read_countable IS 'of those, how many are not unread for this user: at or below read_seq, or their own';

UPDATE conversation SET countable = (
    SELECT COUNT(*) FROM message m
    WHERE m.conversation_id = conversation.id AND m.status = 'normal' AND m.kind <> 'system');
UPDATE conversation_member SET read_countable =
    (SELECT c.countable FROM conversation c WHERE c.id = conversation_member.conversation_id)
    - (SELECT COUNT(*) FROM message m
       WHERE m.conversation_id = conversation_member.conversation_id AND m.seq > conversation_member.read_seq
         AND m.sender_id <> conversation_member.user_id AND m.status = 'normal' AND m.kind <> 'system');
