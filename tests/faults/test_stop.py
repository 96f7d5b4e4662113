"""A graceful stop (SIGTERM): what it cannot stop it waits for; what it hands back ran no more.

Issue 25, fault 2: with a grace of 1 s, a worker marked six inline functions of ~5 s Released
at once and another worker ran them again while their threads went on. A thread cannot be
stopped, so the worker must keep its lease and record its outcome; coroutines and programs can
be stopped, and are handed back and run again elsewhere, one run after the other.

Issue 17: two workers drain many short functions and one is stopped a moment in; in 2 of 6
runs a job that had already run was handed back and ran again. A graceful stop never hands
back a job whose body ran, nor loses its end.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from dockyard import Client
from tests.faults.conftest import LEASE, Faults, register_bodies
from tests.faults.runs import Part


def test_a_graceful_stop_waits_for_threads_and_hands_back_what_it_stopped(
    client: Client, faults: Faults, spawn: Any
) -> None:
    register_bodies(client)
    stopping = spawn("--lease", str(LEASE), "--concurrency", "7", "--shutdown-grace", "1")
    threads = faults.submit("inline", 3, seconds=3, later_seconds=0.2)
    coroutines = faults.submit("coroutine", 2, seconds=30, later_seconds=0.2)
    programs = faults.submit("program", 2, seconds=30, later_seconds=0.3, grandchild=True)
    faults.wait_started(threads + coroutines)
    faults.wait_started(programs, parts=2)
    spawn("--lease", str(LEASE), "--concurrency", "7")  # takes what is handed back at once

    stopping.proc.send_signal(signal.SIGTERM)
    stopping.proc.wait(timeout=60)
    faults.wait_ended()

    runs = dict.fromkeys(threads, 1) | dict.fromkeys(coroutines + programs, 2)
    problems = faults.problems(runs)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_a_graceful_stop_while_two_workers_drain_runs_no_body_twice(
    client: Client, faults: Faults, spawn: Any
) -> None:
    register_bodies(client)
    workers = [spawn("--lease", str(LEASE), "--concurrency", "16") for _ in range(2)]
    total = 1000
    faults.submit("inline", total, seconds=0.05)

    def under_way(parts: list[Part]) -> bool:
        return sum(part.end is not None for part in parts) >= total // 10

    faults.runs.wait_for(under_way, what="a tenth of the jobs to run")
    workers[0].proc.send_signal(signal.SIGTERM)
    workers[0].proc.wait(timeout=60)
    faults.wait_ended(timeout=120)

    # Not even one run after the other: every body ran once.
    problems = faults.problems(1)
    assert not problems, "\n".join(problems)
