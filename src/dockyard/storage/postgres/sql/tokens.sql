-- The tokens port (storage/postgres/tokens.py): API tokens, found by the SHA-256 of their
-- secret (the secret itself is never stored).

-- name: insert
INSERT INTO tokens (id, name, role, hash, created_at, expires_at)
VALUES (%(id)s, %(name)s, %(role)s, %(hash)s, %(created_at)s, %(expires_at)s);

-- name: find
SELECT * FROM tokens WHERE hash = %(hash)s;

-- name: all
SELECT * FROM tokens ORDER BY created_at;

-- name: revoke
-- Once: a second revoke keeps the first time.
UPDATE tokens SET revoked_at = %(now)s WHERE id = %(id)s AND revoked_at IS NULL;

-- name: get
SELECT * FROM tokens WHERE id = %(id)s;

-- name: touch
-- At most once per interval, whichever process sees the use.
UPDATE tokens SET last_used_at = %(now)s
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < %(stale_before)s);
