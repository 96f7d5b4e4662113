-- Generated from migrations/ by scripts/schema-sql; tests/test_jobs.py checks it. Do not edit.

CREATE TRIGGER definition_registered AFTER INSERT ON definitions
WHEN EXISTS (SELECT 1 FROM rules WHERE enabled)
BEGIN
    INSERT INTO events (id, source, detail_type, body, received_at)
    SELECT e.id, 'dockyard.definition', 'Definition Registered', json_object(
            'version', '0', 'id', e.id, 'detail-type', 'Definition Registered',
            'source', 'dockyard.definition', 'account', '', 'time', e.time, 'region', '',
            'resources', json_array('dockyard:definition/' || NEW.name || ':' || NEW.revision),
            'detail', json_object(
                'name', NEW.name, 'revision', NEW.revision, 'status', NEW.status,
                'executor', json_extract(NEW.document, '$.executor'),
                'image', json_extract(NEW.document, '$.image'))),
        e.now
    FROM (SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'
                 || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(2)) || '-'
                 || hex(randomblob(6))) AS id,
                 strftime('%Y-%m-%dT%H:%M:%SZ', 'now') AS time,
                 (julianday('now') - 2440587.5) * 86400.0 AS now) AS e;
END;

CREATE TRIGGER job_state_change AFTER UPDATE OF state ON jobs
WHEN NEW.state IS NOT OLD.state AND EXISTS (SELECT 1 FROM rules WHERE enabled)
BEGIN
    INSERT INTO events (id, source, detail_type, body, received_at)
    SELECT e.id, 'dockyard.job', 'Job State Change', json_object(
            'version', '0', 'id', e.id, 'detail-type', 'Job State Change',
            'source', 'dockyard.job', 'account', '', 'time', e.time, 'region', '',
            'resources', json_array('dockyard:job/' || NEW.id),
            'detail', json_object(
                'jobId', NEW.id, 'jobName', NEW.name,
                'jobDefinition', NEW.definition_name || ':' || NEW.definition_revision,
                'jobQueue', NEW.queue, 'status', NEW.state, 'previousStatus', OLD.state,
                'statusReason', NEW.status_reason, 'attempts', NEW.attempt_count,
                'exitCode', NEW.exit_code, 'group', NEW.group_key)),
        e.now
    FROM (SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'
                 || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(2)) || '-'
                 || hex(randomblob(6))) AS id,
                 strftime('%Y-%m-%dT%H:%M:%SZ', 'now') AS time,
                 (julianday('now') - 2440587.5) * 86400.0 AS now) AS e;
END;

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
    counted        INTEGER NOT NULL DEFAULT 1, image TEXT, outputs TEXT,
    PRIMARY KEY (job_id, number)
) WITHOUT ROWID;

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    token_id    TEXT NOT NULL,
    token_name  TEXT NOT NULL,
    role        TEXT NOT NULL,
    operation   TEXT NOT NULL,
    target      TEXT
);

CREATE TABLE definitions (
    name        TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
    created_at  REAL    NOT NULL,
    document    TEXT    NOT NULL,
    PRIMARY KEY (name, revision)
) WITHOUT ROWID;

CREATE TABLE dockyard_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL);

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    source       TEXT    NOT NULL,
    detail_type  TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    received_at  REAL    NOT NULL,
    routed       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE "invocations" (
    id               TEXT    PRIMARY KEY,
    rule             TEXT    NOT NULL REFERENCES rules (name) ON DELETE CASCADE,
    target           TEXT    NOT NULL,
    event_id         TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    state            TEXT    NOT NULL
                     CHECK (state IN ('PENDING', 'DELIVERED', 'DEAD', 'THROTTLED', 'REFUSED')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL,
    result           TEXT,
    error            TEXT,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    depth            INTEGER NOT NULL DEFAULT 1,
    UNIQUE (rule, target, event_id)
) WITHOUT ROWID;

CREATE TABLE job_causation (
    job_id  TEXT    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    depth   INTEGER NOT NULL
) WITHOUT ROWID;

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
, executor TEXT);

CREATE TABLE queues (
    name        TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE rules (
    name        TEXT    PRIMARY KEY,
    spec        TEXT    NOT NULL,
    enabled     INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL
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

CREATE TABLE "tokens" (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'publisher', 'viewer')),
    hash          TEXT NOT NULL UNIQUE,
    created_at    REAL NOT NULL,
    revoked_at    REAL,
    expires_at    REAL,
    last_used_at  REAL
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

CREATE INDEX audit_at ON audit (at);

CREATE INDEX events_received ON events (received_at);

CREATE INDEX events_unrouted ON events (seq) WHERE NOT routed;

CREATE INDEX invocations_due ON invocations (next_attempt_at) WHERE state = 'PENDING';

CREATE INDEX invocations_history ON invocations (rule, created_at);

CREATE INDEX jobs_claim_order ON jobs (priority DESC, seq) WHERE state = 'RUNNABLE';

CREATE INDEX jobs_definition ON jobs (definition_name, seq);

CREATE INDEX jobs_finished ON jobs (stopped_at) WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED');

CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state IN ('STARTING', 'RUNNING');

CREATE INDEX jobs_open_groups ON jobs (group_key, seq)
    WHERE group_key IS NOT NULL AND state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED');

CREATE INDEX jobs_runnable ON jobs (queue, priority DESC, seq) WHERE state = 'RUNNABLE';

CREATE INDEX jobs_runnable_due ON jobs (not_before)
    WHERE state = 'RUNNABLE' AND not_before > created_at;

CREATE INDEX jobs_state ON jobs (state, seq);

CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled AND next_fire_at IS NOT NULL;

