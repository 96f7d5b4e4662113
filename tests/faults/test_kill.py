"""A worker killed or frozen mid-run: its bodies must stop before their leases run out.

Issue 25, fault 1: a SIGKILLed worker left its programs running (each in a session of its own)
while the rescue ran the same jobs again elsewhere; by the code, the same held for functions in
subprocess isolation and, until the next worker *started* on the host, for containers. Each
body here runs 30 s the first time (in the rescue, 0.3 s), so a body that outlives its worker
is surely caught beside its rescue. A frozen worker (SIGSTOP) cannot renew either: its programs
and containers too must be stopped before their leases run out (by its reaper, the watchdog),
and after SIGCONT it must not spoil the outcome of the rescue. Its inline threads cannot be
stopped (they resume with it): it must end its process as it wakes.
"""

from __future__ import annotations

import time
from typing import Any

from dockyard import Client
from dockyard.runtime.leases import EXIT_UNSTOPPABLE
from tests.conftest import wait_until
from tests.faults.conftest import LEADING, LEASE, Faults, frozen, register_bodies

FIRST = 30.0  # a first run: killed long before it could end
LATER = 0.3  # the rescue's run


def _lease(*extra: str) -> tuple[str, ...]:
    return ("--lease", str(LEASE), *extra)


def test_a_sigkilled_worker_takes_its_programs_and_their_children_with_it(
    client: Client, faults: Faults, spawn: Any
) -> None:
    register_bodies(client)
    first = spawn(*_lease("--concurrency", "4"))
    ids = faults.submit("program", 2, seconds=FIRST, later_seconds=LATER, grandchild=True)
    ids += faults.submit("isolated", 2, seconds=FIRST, later_seconds=LATER, grandchild=True)
    faults.wait_started(ids, parts=2)  # each program and its grandchild
    spawn(*_lease())  # the rescuer, already up when the first dies

    first.kill()
    leases = faults.leases(ids)
    faults.wait_ended()

    problems = faults.problems(2, outlived=faults.outlived(leases))
    assert not problems, "\n".join(problems)


def test_a_sigkilled_worker_s_containers_stop_within_the_lease(
    client: Client, with_containers: Faults, spawn: Any, busybox_image: str
) -> None:
    faults = with_containers
    assert faults.containers is not None
    register_bodies(client, busybox_image)
    first = spawn(*_lease("--concurrency", "2"))
    ids = faults.submit("container", 2)
    faults.containers.wait_for(
        lambda parts: len({p.job for p in parts if p.job in ids}) == 2,
        what="both containers to start",
    )
    # Already up when the first worker dies: its start-up sweep has passed (and found the
    # first worker alive), so only a sweep that keeps running, or a watchdog, can help.
    spawn(*_lease())
    faults.probe()  # taken by the second worker: the first has no free slot

    first.kill()
    leases = faults.leases(ids)
    faults.wait_ended()

    problems = faults.problems(2, outlived=faults.outlived(leases))
    assert not problems, "\n".join(problems)


def test_a_worker_frozen_past_its_lease_stops_its_programs_and_spoils_nothing(
    client: Client, faults: Faults, spawn: Any
) -> None:
    register_bodies(client)
    # The rescuer leads maintenance (a frozen leader would hold its lock and rescue nothing),
    # and is kept busy by a blocker until the other worker is frozen, so it takes no job.
    rescuer = spawn(*_lease("--concurrency", "1"))
    wait_until(
        lambda: LEADING in rescuer.output(), timeout=30, what="the rescuer to lead maintenance"
    )
    blocker = client.submit(
        "coroutine", payload={"record": str(faults.record), "key": "blocker", "seconds": 60}
    )
    faults.runs.wait_for(lambda parts: any(p.key == "blocker" for p in parts), what="the blocker")
    worker = spawn(*_lease("--concurrency", "2"))
    ids = faults.submit("program", 2, seconds=FIRST, later_seconds=LATER, grandchild=True)
    faults.wait_started(ids, parts=2)

    with frozen(worker):
        leases = faults.leases(ids)
        client.cancel(blocker.id)
        faults.wait_ended()  # rescued and run again by the other worker
        outlived = faults.outlived(leases)
    # Back, the frozen worker finds its leases gone: it must neither run its bodies on beside
    # the rescue nor record an outcome over it. A graceful stop waits for whatever it does.
    worker.terminate(timeout=60)

    problems = faults.problems(2, outlived=outlived)
    for job_id in ids:
        job = client.get(job_id)
        lost, rescued = job.attempts[0], job.attempts[-1]
        if lost.reason != "Lost" or rescued.exit_code != 0:
            problems.append(f"job {job_id}, after the frozen worker stopped: {job.attempts}")
    assert not problems, "\n".join(problems)


def test_a_worker_frozen_past_its_lease_removes_its_containers_and_spoils_nothing(
    client: Client, with_containers: Faults, spawn: Any, busybox_image: str
) -> None:
    faults = with_containers
    assert faults.containers is not None
    register_bodies(client, busybox_image)
    worker = spawn(*_lease("--concurrency", "1"))
    (job_id,) = faults.submit("container", 1)
    faults.containers.wait_for(
        lambda parts: any(p.job == job_id for p in parts), what="the container to start"
    )

    with frozen(worker):
        leases = faults.leases([job_id])
        faults.containers.wait_for(
            lambda parts: all(p.end is not None for p in parts if p.job == job_id),
            what="the container to stop while its worker is frozen",
        )
        outlived = faults.outlived(leases)
    # Back, the worker finds its lease lapsed: it hands the job back (or finds it rescued by
    # its own maintenance) and runs it again, one run after the other.
    faults.wait_ended()

    problems = faults.problems(2, outlived=outlived)
    assert not problems, "\n".join(problems)


def test_a_worker_frozen_past_an_inline_function_s_lease_ends_itself_as_it_wakes(
    client: Client, faults: Faults, spawn: Any
) -> None:
    # Nothing can stop a thread of a frozen worker: it resumes with SIGCONT, before the worker
    # can act (docs/guarantees.md). The worker must end its process the moment it wakes to find
    # the lease lapsed, rather than let the thread run on beside a rescue.
    register_bodies(client)
    worker = spawn(*_lease("--concurrency", "1"))
    (job_id,) = faults.submit("inline", 1, seconds=FIRST, later_seconds=LATER)
    faults.wait_started([job_id])

    with frozen(worker) as freeze:
        (lease,) = faults.leases([job_id]).values()
        time.sleep(max(lease - time.time(), 0.0) + 0.5)  # the fault's length: past the lease

    assert worker.proc.wait(timeout=30) == EXIT_UNSTOPPABLE, worker.output()[-2000:]
    took = time.monotonic() - freeze.woke
    assert took < 2.0, f"the worker ended {took:.3f} s after it woke"
    assert job_id in worker.output()
    assert not faults.all_runs()[job_id][0].ended  # the thread did not run on to its end
