-- Messages and media, the twin of migrations/sqlite/0002_messages.sql.

CREATE TABLE file (
    id         TEXT   PRIMARY KEY,
    owner_id   BIGINT NOT NULL REFERENCES users(id),
    size       BIGINT NOT NULL,
    mime       TEXT   NOT NULL,
    sha256     TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
COMMENT ON TABLE file IS 'uploaded media';
COMMENT ON COLUMN file.id IS 'random 128-bit hex id, the {fileId} of /file/{fileId}';
COMMENT ON COLUMN file.owner_id IS 'who uploaded it';
COMMENT ON COLUMN file.size IS 'bytes';
COMMENT ON COLUMN file.mime IS 'type sniffed from the content, not the client''s claim';
COMMENT ON COLUMN file.sha256 IS 'hex SHA-256 of the content';
COMMENT ON COLUMN file.created_at IS 'upload time';

INSERT INTO conversation (id, chat_type, group_id, last_seq, created_at, updated_at)
SELECT 'g:' || id, 'group', id, 0, created_at, updated_at FROM chat_group WHERE dismissed_at IS NULL
ON CONFLICT (id) DO NOTHING;

INSERT INTO conversation_member (conversation_id, user_id, read_seq, updated_at)
SELECT 'g:' || m.group_id, m.user_id, 0, m.joined_at
FROM group_member m JOIN chat_group g ON g.id = m.group_id WHERE g.dismissed_at IS NULL
ON CONFLICT (conversation_id, user_id) DO NOTHING;
