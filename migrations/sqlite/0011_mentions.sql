-- Mentions: who each group message mentions, and counters that keep a participant's unread
-- mentions without counting rows when they are read. A participant's mentionUnread is the
-- conversation's @all messages plus the messages listing them, minus those that are not unread
-- for them (at or below their read position, their own, or hidden by them). Only messages as
-- sent (not recalled or deleted) have rows here, and a recall moves the counters with it.

CREATE TABLE message_mention (
    conversation_id TEXT    NOT NULL REFERENCES conversation(id) ON DELETE CASCADE, -- where
    user_id         INTEGER NOT NULL,              -- who is mentioned; 0 for @all
    seq             INTEGER NOT NULL,              -- the message's seq
    message_id      INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE, -- the message
    sender_id       INTEGER NOT NULL,              -- who sent it (never mentioned by it)
    PRIMARY KEY (conversation_id, user_id, seq)
);
CREATE INDEX message_mention_message ON message_mention (message_id);

ALTER TABLE conversation ADD COLUMN mentions_all INTEGER NOT NULL DEFAULT 0;        -- its @all messages
ALTER TABLE conversation_member ADD COLUMN mentioned INTEGER NOT NULL DEFAULT 0;    -- messages listing this user
ALTER TABLE conversation_member ADD COLUMN mention_read INTEGER NOT NULL DEFAULT 0; -- of both, how many are not unread for them

INSERT INTO message_mention (conversation_id, user_id, seq, message_id, sender_id)
SELECT m.conversation_id, 0, m.seq, m.id, m.sender_id FROM message m
WHERE m.chat_type = 'group' AND m.kind = 'text' AND m.status = 'normal'
  AND json_type(m.content, '$.mentions') = 'text' AND json_extract(m.content, '$.mentions') = 'all';
INSERT OR IGNORE INTO message_mention (conversation_id, user_id, seq, message_id, sender_id)
SELECT m.conversation_id, CAST(j.value AS INTEGER), m.seq, m.id, m.sender_id
FROM message m, json_each(m.content, '$.mentions') j
WHERE m.chat_type = 'group' AND m.kind = 'text' AND m.status = 'normal'
  AND json_type(m.content, '$.mentions') = 'array' AND CAST(j.value AS INTEGER) <> m.sender_id;

UPDATE conversation SET mentions_all =
    (SELECT COUNT(*) FROM message_mention mm WHERE mm.conversation_id = conversation.id AND mm.user_id = 0);
UPDATE conversation_member SET mentioned =
    (SELECT COUNT(*) FROM message_mention mm
     WHERE mm.conversation_id = conversation_member.conversation_id AND mm.user_id = conversation_member.user_id);
UPDATE conversation_member SET mention_read =
    (SELECT c.mentions_all FROM conversation c WHERE c.id = conversation_member.conversation_id) + mentioned
    - (SELECT COUNT(*) FROM message_mention mm
       WHERE mm.conversation_id = conversation_member.conversation_id AND mm.seq > conversation_member.read_seq
         AND mm.user_id IN (conversation_member.user_id, 0) AND mm.sender_id <> conversation_member.user_id
         AND mm.message_id NOT IN (SELECT h.message_id FROM message_hidden h WHERE h.user_id = conversation_member.user_id));
