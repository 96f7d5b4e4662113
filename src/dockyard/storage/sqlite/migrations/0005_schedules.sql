-- Schedules: the spec as the document users wrote (JSON), and the scheduler's progress beside it.
-- Times are seconds since the epoch; next_fire_at is NULL once nothing is left to fire.
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

-- The scheduler reads the enabled schedules that are due, earliest first.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled AND next_fire_at IS NOT NULL;
