-- The tokens port on SQLite (tokens.py): API tokens, stored by the SHA-256 of their secret.
-- Parameters are positional (?), in the order each statement's comment gives.

-- name: insert
-- id, name, role, hash, created_at, expires_at.
INSERT INTO tokens (id, name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)

-- name: find
-- hash.
SELECT * FROM tokens WHERE hash = ?

-- name: all
SELECT * FROM tokens ORDER BY created_at

-- name: revoke
-- Once: a second revoke keeps the first time. revoked_at, id.
UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL

-- name: get
-- id.
SELECT * FROM tokens WHERE id = ?

-- name: touch
-- At most once per interval, whichever process sees the use. now, id, stale_before.
UPDATE tokens SET last_used_at = ?
WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)
