-- API tokens: only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    hash        TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    revoked_at  REAL
) WITHOUT ROWID;

-- Queues exist as soon as a job names them; a row here only records that one is paused.
CREATE TABLE queues (
    name        TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE INDEX jobs_queue_state ON jobs (queue, state);
