-- Mentions: who each group message mentions, and counters that keep a participant's unread
-- mentions without counting rows when they are read. A participant's mentionUnread is the
-- conversation's @all messages plus the messages listing them, minus those that are not unread
-- for them (at or below their read position, their own, or hidden by them). Only messages as
-- sent (not recalled or deleted) have rows here, and a recall moves the counters with it.

CREATE TABLE message_mention (
    conversation_id TEXT   NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
    user_id         BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    message_id      BIGINT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    sender_id       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id, seq)
);
CREATE INDEX message_mention_message ON message_mention (message_id);
COMMENT ON TABLE message_mention IS 'who each group message as sent mentions';
COMMENT ON COLUMN message_mention.user_id IS 'who is mentioned; 0 for @all';
COMMENT ON COLUMN message_mention.sender_id IS 'who sent it (never mentioned by it)';

ALTER TABLE conversation ADD COLUMN mentions_all BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversation_member ADD COLUMN mentioned BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversation_member ADD COLUMN mention_read BIGINT NOT NULL DEFAULT 0;
COMMENT ON COLUMN conversation.mentions_all IS 'its @all messages';
COMMENT ON COLUMN conversation_member.mentioned IS 'messages listing this user';
COMMENT ON COLUMN conversation_member.mention_read IS 'of those and the @all ones, how many are not unread for this user';

INSERT INTO message_mention (conversation_id, user_id, seq, message_id, sender_id)
SELECT m.conversation_id, 0, m.seq, m.id, m.sender_id FROM message m
WHERE m.chat_type = 'group' AND m.kind = 'text' AND m.status = 'normal'
  AND jsonb_typeof(m.content::jsonb -> 'mentions') = 'string' AND m.content::jsonb ->> 'mentions' = 'all';
INSERT INTO message_mention (conversation_id, user_id, seq, message_id, sender_id)
SELECT DISTINCT m.conversation_id, j.value::bigint, m.seq, m.id, m.sender_id
FROM message m, jsonb_array_elements_text(
    CASE WHEN jsonb_typeof(m.content::jsonb -> 'mentions') = 'array' THEN m.content::jsonb -> 'mentions' ELSE '[]'::jsonb END) j
WHERE m.chat_type = 'group' AND m.kind = 'text' AND m.status = 'normal' AND j.value::bigint <> m.sender_id
ON CONFLICT DO NOTHING;

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
