"""A worker writes a fast job twice (issue 22): its claim moves it straight to RUNNING with its
attempt started, and its end finishes it; a job whose executor prepares still goes through
STARTING. What a user sees is the jobs' `Job State Change` events, on both backends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dockyard.app import Dockyard
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.states import JobState
from dockyard.settings import Settings

WAIT = 30.0


def changes(envelopes: list[Any], job_id: str) -> list[tuple[str, str]]:
    """The (previous, new) states of ``job_id``'s events, in the order they were written."""
    return [
        (e["detail"]["previousStatus"], e["detail"]["status"])
        for e in envelopes
        if e["detail-type"] == "Job State Change" and e["detail"]["jobId"] == job_id
    ]


def test_a_python_job_is_claimed_running_and_a_process_job_starting(
    settings: Settings, start_worker: Any
) -> None:
    async def scenario() -> tuple[Any, Any, list[Any]]:
        app = await Dockyard.open(settings)
        try:
            await app.definitions.register(
                {"executor": "python", "function": "tests.isolation_functions:identity"},
                name="fast",
            )
            await app.definitions.register(
                {"executor": "process", "command": ["true"]}, name="program"
            )
            await app.rules.create(
                {
                    "event_pattern": {"source": ["dockyard.job"]},
                    "targets": [{"id": "t", "kind": "submit-job", "definition": "program"}],
                },
                name="watch",  # events are written only while a rule is enabled (none routes)
            )
            fast = (await app.jobs.submit(SubmitRequest(definition="fast", payload={}))).job
            program = (await app.jobs.submit(SubmitRequest(definition="program"))).job
            start_worker(concurrency=2)
            deadline = time.monotonic() + WAIT
            while True:
                jobs = [await app.jobs.get(fast.id), await app.jobs.get(program.id)]
                if all(job.state is JobState.SUCCEEDED for job in jobs):
                    break
                assert time.monotonic() < deadline, f"the jobs did not finish: {jobs}"
                await asyncio.sleep(0.02)  # a poll with a deadline: the worker is a thread
            events = await app.events.recent(limit=100)
            return jobs[0], jobs[1], [stored.envelope for stored in reversed(events)]
        finally:
            await app.close()

    fast, program, envelopes = asyncio.run(scenario())
    assert changes(envelopes, fast.id) == [("RUNNABLE", "RUNNING"), ("RUNNING", "SUCCEEDED")]
    (attempt,) = fast.attempts
    assert attempt.started_at is not None and attempt.started_at == fast.started_at
    assert changes(envelopes, program.id) == [
        ("RUNNABLE", "STARTING"),
        ("STARTING", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
