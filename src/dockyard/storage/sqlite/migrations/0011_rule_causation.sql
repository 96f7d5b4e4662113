-- Rule loops (issue 26): the causation depth of jobs that rules submit, and invocations that are
-- recorded but never made (THROTTLED: over the rule's rate; REFUSED: deeper than the cap).
--
-- A job a rule's target submitted has a row here with its depth (jobs submitted otherwise have
-- depth 0 and no row); the rules leader reads it when it routes the job's state changes.
CREATE TABLE job_causation (
    job_id  TEXT    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    depth   INTEGER NOT NULL
) WITHOUT ROWID;

-- Invocations get their depth (those made before it: 1, as for an event of depth 0) and two
-- more states. SQLite cannot change a CHECK constraint in place: the table is rebuilt with its
-- rows.
CREATE TABLE invocations_rebuilt (
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

INSERT INTO invocations_rebuilt (id, rule, target, event_id, event, state, attempts,
                                 next_attempt_at, result, error, created_at, updated_at)
SELECT id, rule, target, event_id, event, state, attempts, next_attempt_at, result, error,
       created_at, updated_at
FROM invocations;

DROP TABLE invocations;

ALTER TABLE invocations_rebuilt RENAME TO invocations;

CREATE INDEX invocations_due ON invocations (next_attempt_at) WHERE state = 'PENDING';
CREATE INDEX invocations_history ON invocations (rule, created_at);
