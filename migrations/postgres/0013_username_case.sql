-- Usernames are one name whatever their ASCII case ("Bob" and "bob" are the same person): the
-- name keeps the case it was registered with, and is looked up and kept unique by lower().
-- Accounts registered before this that differ only by case keep working for their first
-- holder; each later one is renamed to "<name>-<id>", so that the unique index can be built.

UPDATE users SET username = username || '-' || id
WHERE EXISTS (SELECT 1 FROM users o WHERE lower(o.username) = lower(users.username) AND o.id < users.id);
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
