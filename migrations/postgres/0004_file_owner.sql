-- A user's stored bytes are summed on every upload, for the storage quota.
CREATE INDEX file_owner_id ON file (owner_id);
