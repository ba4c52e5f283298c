-- Pruning revoked tokens deletes by expiry: an index, not a scan of every revocation.
CREATE INDEX revoked_token_expires_at ON revoked_token (expires_at);
