-- The plumbing every port shares: session setup, snapshots, wake-ups (storage/postgres/database.py).

-- name: configure_session
-- Run on every new connection: times in UTC, and the server's end of the dead-peer timeouts,
-- so that a session whose client vanished ends (releasing its locks, such as a leadership)
-- after about DEAD_PEER_SECONDS instead of the system's 2 hours.
SELECT set_config('TimeZone', 'UTC', false),
       set_config('tcp_keepalives_idle', %(idle)s, false),
       set_config('tcp_keepalives_interval', '1', false),
       set_config('tcp_keepalives_count', %(count)s, false),
       set_config('tcp_user_timeout', %(user_timeout)s, false);

-- name: current_schema
-- The schema the URL's search_path selects: it names the NOTIFY channel and the leader locks.
SELECT current_schema();

-- name: snapshot
-- A read of several statements sees one moment (a job and its attempts, say).
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: notify
-- Wakes other processes' waiters when the transaction that sends it commits.
SELECT pg_notify(%(channel)s, '');
