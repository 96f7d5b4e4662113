-- Events, rules and their invocations (DESIGN.md: Event / Rule / Target).
--
-- events is the bus's outbox: what was put, and what Dockyard emitted, each with its whole
-- EventBridge envelope in body. The rules leader reads the unrouted ones, matches them against
-- the enabled rules and records one invocation per matching target in the same transaction that
-- marks them routed.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    source       TEXT    NOT NULL,
    detail_type  TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    received_at  REAL    NOT NULL,
    routed       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_unrouted ON events (seq) WHERE NOT routed;
CREATE INDEX events_received ON events (received_at);

-- Rules: the spec as the document users wrote (JSON).
CREATE TABLE rules (
    name        TEXT    PRIMARY KEY,
    spec        TEXT    NOT NULL,
    enabled     INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL
) WITHOUT ROWID;

-- One delivery of one event to one target of a rule: PENDING until it is DELIVERED, or DEAD once
-- its retries are spent (the dead list); its event is copied, so pruning events loses none.
CREATE TABLE invocations (
    id               TEXT    PRIMARY KEY,
    rule             TEXT    NOT NULL REFERENCES rules (name) ON DELETE CASCADE,
    target           TEXT    NOT NULL,
    event_id         TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'DEAD')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL,
    result           TEXT,
    error            TEXT,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    UNIQUE (rule, target, event_id)
) WITHOUT ROWID;
CREATE INDEX invocations_due ON invocations (next_attempt_at) WHERE state = 'PENDING';
CREATE INDEX invocations_history ON invocations (rule, created_at);

-- Dockyard's own events, written by the same transaction as the change they announce, and only
-- while a rule is enabled (with none, nothing would read them).
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
