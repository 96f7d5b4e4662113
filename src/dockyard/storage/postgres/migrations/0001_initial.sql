-- Dockyard on PostgreSQL: the whole schema of release 0.2 in one step.
-- Times are timestamptz, documents jsonb. The jobs table keeps finished jobs until the
-- maintenance service prunes them; every index the hot path reads is partial, so claim cost
-- follows the runnable backlog, not the history.

CREATE TABLE definitions (
    name        text        NOT NULL,
    revision    integer     NOT NULL,
    status      text        NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
    created_at  timestamptz NOT NULL,
    document    jsonb       NOT NULL,
    PRIMARY KEY (name, revision)
);

CREATE TABLE jobs (
    seq                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   text        NOT NULL UNIQUE,
    name                 text        NOT NULL,
    definition_name      text        NOT NULL,
    definition_revision  integer     NOT NULL,
    state                text        NOT NULL,
    status_reason        text,
    queue                text        NOT NULL,
    group_key            text,
    priority             integer     NOT NULL DEFAULT 0,
    idempotency_key      text,
    payload              jsonb,
    overrides            jsonb       NOT NULL DEFAULT '{}',
    parameters           jsonb       NOT NULL DEFAULT '{}',
    max_attempts         integer     NOT NULL,
    attempt_count        integer     NOT NULL DEFAULT 0,
    attempts_used        integer     NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    not_before           timestamptz NOT NULL,
    started_at           timestamptz,
    stopped_at           timestamptz,
    worker_id            text,
    lease_expires_at     timestamptz,
    exit_code            integer,
    result               jsonb
);

-- The claim walks this in order and stops after LIMIT rows.
CREATE INDEX jobs_claim_order ON jobs (priority DESC, seq) WHERE state = 'RUNNABLE';
CREATE INDEX jobs_runnable ON jobs (queue, priority DESC, seq) WHERE state = 'RUNNABLE';
CREATE INDEX jobs_runnable_due ON jobs (not_before) WHERE state = 'RUNNABLE';
-- A grouped job runs only when no earlier job of its group is unfinished (SQS FIFO groups).
CREATE INDEX jobs_open_groups ON jobs (group_key, seq)
    WHERE group_key IS NOT NULL AND state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED');
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state IN ('STARTING', 'RUNNING');
CREATE INDEX jobs_finished ON jobs (stopped_at) WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED');
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state, seq);
CREATE INDEX jobs_queue_state ON jobs (queue, state);
CREATE INDEX jobs_definition ON jobs (definition_name, seq);

CREATE TABLE attempts (
    job_id         text        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number         integer     NOT NULL,
    worker_id      text        NOT NULL,
    claimed_at     timestamptz NOT NULL,
    started_at     timestamptz,
    stopped_at     timestamptz,
    exit_code      integer,
    reason         text,
    status_reason  text,
    counted        boolean     NOT NULL DEFAULT true,
    PRIMARY KEY (job_id, number)
);

CREATE TABLE workers (
    id            text        PRIMARY KEY,
    hostname      text        NOT NULL,
    pid           integer     NOT NULL,
    queues        jsonb,
    concurrency   integer     NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL,
    stopped_at    timestamptz
);

CREATE TABLE tokens (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    hash        text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

CREATE TABLE queues (
    name        text        PRIMARY KEY,
    paused      boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL
);
