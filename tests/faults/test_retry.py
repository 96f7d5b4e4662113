"""A timeout or a cancel ends an attempt; a retry must not start a run beside the one still going.

Issue 25, fault 2 (its last lines): a timeout or a cancel of an inline function ended the
attempt while its thread still ran, so a retry could start beside it. The same holds wherever
a body outlives the end of its attempt: a program that takes a moment to stop on SIGTERM is
still running when a cancel has already made its job CANCELLED. A retry is refused (a
conflict) while the old run goes on, and works once it has ended.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from dockyard import Client, ConflictError, JobState
from tests.conftest import wait_until
from tests.faults.conftest import LEASE, Faults, register_bodies
from tests.faults.runs import Part


def _retry_while_running(faults: Faults, job_id: str, key: str) -> list[str]:
    """Ask for a retry on every change until the job's first run has ended; each must be
    refused while it runs; once it has ended, a retry must be accepted (at once, or as soon as
    the worker has written the end). Returns what went wrong."""
    client = faults.client

    def first_run(parts: list[Part]) -> list[Part]:
        mine = [p for p in parts if p.key == key]
        first = min(mine, key=lambda p: p.start).run
        return [p for p in mine if p.run == first]

    def first_ended(parts: list[Part]) -> bool:
        return all(p.end is not None or p.died is not None for p in first_run(parts))

    while not first_ended(faults.runs.parts()):
        try:
            client.retry(job_id)
        except ConflictError:
            faults.runs.wait_change(0.05)
            continue
        # Accepted. The test follows the record file a round behind the bodies, so the first
        # run may have ended just before: judge by when it ended, once the test knows it.
        accepted = time.time()
        try:
            parts = faults.runs.wait_for(first_ended, timeout=10, what="the first run to end")
        except AssertionError:
            return [f"the first run of job {job_id} still ran 10 s after its retry"]
        stopped = max(part.stopped(accepted) for part in first_run(parts))
        if stopped > accepted:
            return [
                f"a retry of job {job_id} was accepted at {accepted - faults.origin:+.3f}s"
                f" while its first run still ran (until {stopped - faults.origin:+.3f}s)"
            ]
        return []  # accepted once the run had ended: the retry runs the job again

    def retried() -> bool:
        # The body has returned; its worker records that a moment later (a refusal until then
        # is right, and nothing announces the write, so the retry itself is the probe).
        try:
            client.retry(job_id)
        except ConflictError:
            return False
        return True

    ended = client.wait(job_id, timeout=30)
    if ended.state not in (JobState.FAILED, JobState.CANCELLED):
        return [f"job {job_id} ended {ended.state} ({ended.status_reason})"]
    wait_until(retried, timeout=10, what=f"a retry of job {job_id} to be accepted")
    return []


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_a_timed_out_or_cancelled_thread_is_not_retried_while_it_runs(
    client: Client, faults: Faults, spawn: Any, how: str
) -> None:
    register_bodies(client)
    spawn("--lease", str(LEASE), "--concurrency", "2")
    definition = "inline-timeout" if how == "timeout" else "inline"
    (job_id,) = faults.submit(definition, 1, prefix="thread", seconds=3, later_seconds=0.2)
    faults.wait_started([job_id])
    if how == "cancel":
        client.cancel(job_id)

    problems = _retry_while_running(faults, job_id, "thread-0")
    faults.wait_ended()

    problems += faults.problems(2)
    first = client.get(job_id).attempts[0]
    if first.reason != ("Timeout" if how == "timeout" else "Cancelled"):
        problems.append(f"the first attempt ended as {first.reason}: {first}")
    assert not problems, "\n".join(problems)


def test_a_cancelled_program_that_takes_a_moment_to_stop_is_not_retried_beside_itself(
    client: Client, faults: Faults, spawn: Any
) -> None:
    register_bodies(client)
    for _ in range(2):  # a retried job may land on either
        spawn("--lease", str(LEASE), "--concurrency", "2")
    # On SIGTERM the program (and its grandchild) take 0.6 s to clean up, within the 1 s grace.
    (job_id,) = faults.submit(
        "program", 1, seconds=30, later_seconds=0.3, grandchild=True, stop_seconds=0.6
    )
    faults.wait_started([job_id], parts=2)
    client.cancel(job_id)

    problems = _retry_while_running(faults, job_id, "program-0")
    faults.wait_ended()

    problems += faults.problems(2)
    assert not problems, "\n".join(problems)
