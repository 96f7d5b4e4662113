"""Schedulers in separate processes on PostgreSQL: kill the leader, and no fire is doubled or lost.

The processes read the time from a file the test moves (tests/scheduler_process.py), so thirty
minutes of fires take a few seconds; the kills are real SIGKILLs, and the leadership really moves
through PostgreSQL's advisory lock.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import psycopg

from dockyard.app import Dockyard
from dockyard.settings import Settings
from tests.conftest import REPO, dockyard_environ, suite_settings, wait_until
from tests.scheduler_process import FileClock, set_file_clock

SCHEDULES = 5
MINUTES = 30
START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


class SchedulerProcess:
    def __init__(self, settings: Settings, clock_file: Path, log: Path) -> None:
        self.log = log
        env = dockyard_environ(settings)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.scheduler_process", str(clock_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )

    def leads(self) -> bool:
        text = self.log.read_text(errors="replace")
        return text.rfind("took the scheduler") > text.rfind("lost the scheduler")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def test_killing_the_leader_neither_doubles_nor_skips_a_fire(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = suite_settings(tmp_path / "home", postgres_url)
    clock_file = tmp_path / "clock"
    set_file_clock(clock_file, START)

    async def setup() -> None:
        app = await Dockyard.open(settings, clock=FileClock(clock_file))
        try:
            await app.definitions.register(
                {"executor": "python", "function": "tests.jobfunctions:echo"}, name="tick"
            )
            for index in range(SCHEDULES):
                await app.schedules.create(
                    {"expression": "cron(* * * * ? *)", "target": {"definition": "tick"}},
                    name=f"every-minute-{index}",
                )
        finally:
            await app.close()

    asyncio.run(setup())
    processes = [
        SchedulerProcess(settings, clock_file, tmp_path / f"scheduler-{n}.log") for n in range(2)
    ]
    kills = 0

    def fired(minute: int) -> int:
        suffix = (START.replace(second=0) + timedelta(minutes=minute)).strftime("%H:%M:00Z")
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM jobs WHERE idempotency_key LIKE %s", (f"%T{suffix}",)
            ).fetchone()
        return int(row[0]) if row else 0

    def all_fired(minute: int) -> bool:
        return fired(minute) >= SCHEDULES

    try:
        wait_until(lambda: any(p.leads() for p in processes), what="a scheduler to lead")
        for minute in range(1, MINUTES + 1):
            moment = START.replace(second=0) + timedelta(minutes=minute, milliseconds=300)
            set_file_clock(clock_file, moment)
            if minute % 7 == 0:
                # The leader dies as its clock moves: before, during or after it fires.
                (leader,) = [p for p in processes if p.proc.poll() is None and p.leads()]
                leader.kill()
                kills += 1
                processes.append(
                    SchedulerProcess(settings, clock_file, tmp_path / f"scheduler-{kills + 1}.log")
                )
            wait_until(partial(all_fired, minute), what=f"the fires of minute {minute}")
    finally:
        for process in processes:
            process.stop()

    with psycopg.connect(postgres_url) as conn:
        keys = [key for (key,) in conn.execute("SELECT idempotency_key FROM jobs").fetchall()]
        fires: dict[str, int] = dict(conn.execute("SELECT name, fires FROM schedules").fetchall())
    assert kills == MINUTES // 7
    assert len(keys) == len(set(keys)) == SCHEDULES * MINUTES
    assert fires == {f"every-minute-{index}": MINUTES for index in range(SCHEDULES)}
    assert sum(p.leads() or "took the scheduler" in p.log.read_text() for p in processes) > kills
