-- Tokens: the publisher role (may only put events), an optional expiry and the last use.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with its rows.
CREATE TABLE tokens_rebuilt (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'publisher', 'viewer')),
    hash          TEXT NOT NULL UNIQUE,
    created_at    REAL NOT NULL,
    revoked_at    REAL,
    expires_at    REAL,
    last_used_at  REAL
) WITHOUT ROWID;

INSERT INTO tokens_rebuilt (id, name, role, hash, created_at, revoked_at)
SELECT id, name, role, hash, created_at, revoked_at FROM tokens;

DROP TABLE tokens;

ALTER TABLE tokens_rebuilt RENAME TO tokens;

-- The audit trail: one row per change made through the facade (never a payload or a secret).
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    token_id    TEXT NOT NULL,
    token_name  TEXT NOT NULL,
    role        TEXT NOT NULL,
    operation   TEXT NOT NULL,
    target      TEXT
);

-- Pruning by age reads the oldest rows first.
CREATE INDEX audit_at ON audit (at);
