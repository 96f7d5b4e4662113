"""One attempt through its executor, for the worker (:mod:`dockyard.runtime.worker`).

The attempt gets its :class:`~dockyard.executors.port.ExecutionContext` and log; an executor's
bug becomes a failed attempt, never the worker's end. An executor that
:func:`~dockyard.executors.port.begins_itself` (it fetches inputs first) calls ``begin`` as its
body starts; for the others the attempt begins at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import DefinitionSpec, Job
from dockyard.executors.port import ExecutionContext, Executor, begins_itself
from dockyard.logs.port import LogStore
from dockyard.runtime.leases import Running

__all__ = ["run_attempt"]

log = logging.getLogger("dockyard.worker")


async def run_attempt(
    executor: Executor | None,
    *,
    job: Job,
    spec: DefinitionSpec,
    running: Running,
    logs: LogStore,
    worker_id: str,
    begin: Callable[[], None],
) -> Outcome:
    """Run one attempt of ``job``; ``begin`` writes its start (see the module docstring)."""
    if not begins_itself(executor):
        begin()
    if executor is None:
        return Outcome.failed(
            reason="NoExecutor",
            status_reason=f"This worker has no {spec.executor.kind} executor",
        )
    sink = logs.open(job.id, job.attempt_count, spec.log_max_bytes)
    context = ExecutionContext(
        job=job,
        attempt=job.attempt_count,
        spec=spec,
        log=sink,
        cancelled=running.cancelled,
        worker_id=worker_id,
        lingering=running.linger,
        threads=running.runs_on_thread,
        begin=begin,
    )
    try:
        return await executor.run(context)
    except Exception as error:  # an executor bug must not kill the worker
        log.exception("executor failed on job %s", job.id)
        return Outcome.failed(
            reason="ExecutorError", status_reason=f"{type(error).__name__}: {error}"
        )
    finally:
        if running.body is not None and not running.body.done():
            running.body.add_done_callback(lambda _: sink.close())  # it still prints
        else:
            sink.close()
