"""A scheduler in its own process on a clock the test moves (for tests/test_scheduler_failover.py).

``python -m tests.scheduler_process CLOCK_FILE`` with ``DOCKYARD_URL`` and ``DOCKYARD_HOME`` set:
the time is what the file says (ISO 8601), so a test can move several processes' clocks at once
and kill one of them, without waiting for real minutes.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path

from dockyard.app import Dockyard
from dockyard.runtime import SchedulerConfig
from dockyard.settings import Settings


class FileClock:
    def __init__(self, path: Path) -> None:
        self._path = path

    def now(self) -> datetime:
        return datetime.fromisoformat(self._path.read_text())


def set_file_clock(path: Path, moment: datetime) -> None:
    """Move every FileClock reading ``path`` to ``moment`` at once (an atomic rename)."""
    scratch = path.with_suffix(".new")
    scratch.write_text(moment.isoformat())
    scratch.replace(path)


async def main(clock_file: Path) -> None:
    app = await Dockyard.open(Settings.resolve(), clock=FileClock(clock_file))
    try:
        await app.scheduler(SchedulerConfig(poll_seconds=0.02)).run()
    finally:
        await app.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(Path(sys.argv[1])))
