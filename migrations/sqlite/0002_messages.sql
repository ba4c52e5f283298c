-- Messages and media. Group conversations exist from the group's creation, with a state row per
-- member; groups made before this migration get theirs here.

CREATE TABLE file (
    id         TEXT    PRIMARY KEY,                -- random 128-bit hex id, the {fileId} of /file/{fileId}
    owner_id   INTEGER NOT NULL REFERENCES users(id), -- who uploaded it
    size       INTEGER NOT NULL,                   -- bytes
    mime       TEXT    NOT NULL,                   -- type sniffed from the content, not the client's claim
    sha256     TEXT    NOT NULL,                   -- hex SHA-256 of the content
    created_at INTEGER NOT NULL                    -- upload time
);

INSERT INTO conversation (id, chat_type, group_id, last_seq, created_at, updated_at)
SELECT 'g:' || id, 'group', id, 0, created_at, updated_at FROM chat_group WHERE dismissed_at IS NULL
ON CONFLICT (id) DO NOTHING;

INSERT INTO conversation_member (conversation_id, user_id, read_seq, updated_at)
SELECT 'g:' || m.group_id, m.user_id, 0, m.joined_at
FROM group_member m JOIN chat_group g ON g.id = m.group_id WHERE g.dismissed_at IS NULL
ON CONFLICT (conversation_id, user_id) DO NOTHING;
