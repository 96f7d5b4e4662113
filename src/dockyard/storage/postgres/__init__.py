"""The PostgreSQL backend: many API servers and workers on many hosts share one database.

On psycopg 3 (async) with a connection pool; one module per storage port (``jobs.py``,
``schedules.py``…), each with its statements in ``sql/<port>.sql``, over the shared plumbing of
``database.py`` (the pool, reconnects, wake-ups), composed by :class:`PostgresStorage`.

The fast path of DESIGN.md §5:

- **Claims in batches**: one statement picks up to ``limit`` runnable jobs in claim order with
  ``FOR UPDATE SKIP LOCKED`` (so workers on many hosts never wait on each other or take the same
  job), moves them to STARTING and opens their attempts.
- **Batched completions**: the transitions a worker collected go to the server in one pipeline,
  one round trip and one commit for the batch, with the next claim in the same transaction.
- **Bulk submit**: one ``INSERT … SELECT FROM unnest(…)`` for the whole batch.
- **Wake-ups**: every commit that changes jobs sends ``NOTIFY`` on a channel of this schema; a
  listener connection turns it into the in-process change signal that idle workers and waiting
  API calls sleep on. The worker's polling interval is the fallback while the listener reconnects.
- **Partial indexes** on runnable, leased and unfinished grouped jobs, so a claim reads the
  backlog, never the history.

Connection failures (a restart, a failover, a network cut) are retried with backoff for up to a
minute, so workers and API servers ride out a PostgreSQL restart; every write is idempotent or
guarded by the state it expects, so a retry changes nothing twice (``database.py``).
"""

from __future__ import annotations

from dockyard.storage.postgres.database import listen_channel, with_search_path
from dockyard.storage.postgres.store import PostgresStorage

__all__ = ["PostgresStorage", "listen_channel", "with_search_path"]
