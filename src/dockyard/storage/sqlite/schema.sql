-- Generated from migrations/ by scripts/schema-sql; tests/test_jobs.py checks it. Do not edit.

CREATE TABLE attempts (
    job_id         TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number         INTEGER NOT NULL,
    worker_id      TEXT    NOT NULL,
    claimed_at     REAL    NOT NULL,
    started_at     REAL,
    stopped_at     REAL,
    exit_code      INTEGER,
    reason         TEXT,
    status_reason  TEXT,
    counted        INTEGER NOT NULL DEFAULT 1, image TEXT,
    PRIMARY KEY (job_id, number)
) WITHOUT ROWID;

CREATE TABLE definitions (
    name        TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
    created_at  REAL    NOT NULL,
    document    TEXT    NOT NULL,
    PRIMARY KEY (name, revision)
) WITHOUT ROWID;

CREATE TABLE dockyard_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL);

CREATE TABLE jobs (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT    NOT NULL UNIQUE,
    name                 TEXT    NOT NULL,
    definition_name      TEXT    NOT NULL,
    definition_revision  INTEGER NOT NULL,
    state                TEXT    NOT NULL,
    status_reason        TEXT,
    queue                TEXT    NOT NULL,
    group_key            TEXT,
    priority             INTEGER NOT NULL DEFAULT 0,
    idempotency_key      TEXT,
    payload              TEXT,
    overrides            TEXT    NOT NULL DEFAULT '{}',
    parameters           TEXT    NOT NULL DEFAULT '{}',
    max_attempts         INTEGER NOT NULL,
    attempt_count        INTEGER NOT NULL DEFAULT 0,
    attempts_used        INTEGER NOT NULL DEFAULT 0,
    created_at           REAL    NOT NULL,
    not_before           REAL    NOT NULL,
    started_at           REAL,
    stopped_at           REAL,
    worker_id            TEXT,
    lease_expires_at     REAL,
    exit_code            INTEGER,
    result               TEXT
);

CREATE TABLE queues (
    name        TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE schedules (
    name          TEXT    PRIMARY KEY,
    spec          TEXT    NOT NULL,
    enabled       INTEGER NOT NULL,
    next_fire_at  REAL,
    last_fire_at  REAL,
    last_job_id   TEXT,
    fires         INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    hash        TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    revoked_at  REAL
) WITHOUT ROWID;

CREATE TABLE workers (
    id            TEXT    PRIMARY KEY,
    hostname      TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    queues        TEXT,
    concurrency   INTEGER NOT NULL,
    started_at    REAL    NOT NULL,
    heartbeat_at  REAL    NOT NULL,
    stopped_at    REAL
) WITHOUT ROWID;

CREATE INDEX jobs_claim_order ON jobs (priority DESC, seq) WHERE state = 'RUNNABLE';

CREATE INDEX jobs_definition ON jobs (definition_name, seq);

CREATE INDEX jobs_finished ON jobs (stopped_at) WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED');

CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state IN ('STARTING', 'RUNNING');

CREATE INDEX jobs_open_groups ON jobs (group_key, seq)
    WHERE group_key IS NOT NULL AND state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED');

CREATE INDEX jobs_queue_state ON jobs (queue, state);

CREATE INDEX jobs_runnable ON jobs (queue, priority DESC, seq) WHERE state = 'RUNNABLE';

CREATE INDEX jobs_runnable_due ON jobs (not_before) WHERE state = 'RUNNABLE';

CREATE INDEX jobs_state ON jobs (state, seq);

CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled AND next_fire_at IS NOT NULL;

