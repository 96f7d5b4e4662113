"""Attempt logs: the head-and-tail cap, the order of stdout and stderr, and following a log live."""

from __future__ import annotations

import contextlib
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard import Client, JobState, ValidationError
from dockyard.app.logs import LOG_CHUNK_BYTES
from dockyard.logs.local import CappedLogWriter, LocalLogStore
from dockyard.settings import Settings
from tests.conftest import each_transport, register_process, wait_until

# A hung job or a follow that never returns must fail the test, not the whole run.
pytestmark = pytest.mark.timeout(60)

#: How long a test waits for a job before it gives up: generous, it only bounds a failure.
WAIT = 30.0
MiB = 1024 * 1024
MARKER = re.compile(rb"\n\[dockyard: (\d+) bytes dropped\]\n")


def memory_kib(pid: int, field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of ``pid`` from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


# -- the cap, end to end ------------------------------------------------------------------------

HEAD_LINE = b"DOCKYARD-TEST-HEAD-LINE\n"
TAIL_LINE = b"DOCKYARD-TEST-TAIL-LINE\n"
FILLER_BYTES = 200_000_000
CAP = 1048576


@pytest.mark.slow
def test_a_job_printing_200_mb_leaves_a_capped_log_and_the_worker_stays_small(
    client: Client, settings: Settings, spawn_worker: Any
) -> None:
    worker = spawn_worker("--concurrency", "1")
    try:
        check_capped_job(client, settings, worker)
    finally:
        # A graceful stop also closes the worker's output file (the fixture only SIGKILLs).
        worker.terminate(timeout=30)


def check_capped_job(client: Client, settings: Settings, worker: Any) -> None:
    wait_until(
        lambda: any(info.pid == worker.pid for info in client.workers()),
        what="the worker to start",
    )
    client.register(
        {
            "executor": "process",
            "command": (
                f"printf '{HEAD_LINE.decode().strip()}\\n'; "
                f"head -c {FILLER_BYTES} /dev/zero | tr '\\0' x; "
                f"printf '\\n{TAIL_LINE.decode().strip()}\\n'"
            ),
            "shell": True,
            "log_max_bytes": CAP,
        },
        name="loud",
    )
    # Measure the peak from here on: resetting VmHWM to the current RSS needs Linux ≥ 4.0;
    # without it the peak since start-up is kept, which only makes the check more lenient.
    with contextlib.suppress(OSError):
        Path(f"/proc/{worker.pid}/clear_refs").write_text("5")
    rss_before = memory_kib(worker.pid, "VmRSS")

    job = client.wait(client.submit("loud").id, timeout=WAIT)
    peak = memory_kib(worker.pid, "VmHWM")

    assert job.state is JobState.SUCCEEDED, worker.output()
    growth_mib = (peak - rss_before) / 1024
    assert growth_mib < 50, f"worker RSS grew by {growth_mib:.1f} MiB"

    data = (settings.log_dir / job.id / "1.log").read_bytes()
    assert len(data) <= CAP + 100
    assert data.startswith(HEAD_LINE)
    assert data.endswith(b"x\n" + TAIL_LINE)
    (marker,) = MARKER.findall(data)
    printed = len(HEAD_LINE) + FILLER_BYTES + 1 + len(TAIL_LINE)
    assert int(marker) == printed - CAP
    assert client.logs(job.id) == data.decode()


# -- the cap, unit ------------------------------------------------------------------------------


def write_all(path: Path, cap: int, chunks: list[bytes]) -> bytes:
    writer = CappedLogWriter(path, cap)
    for chunk in chunks:
        writer.write(chunk)
    writer.close()
    # A job that printed nothing leaves no file (the writer creates it on the first write).
    return path.read_bytes() if path.exists() else b""


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def capped(data: bytes, cap: int) -> bytes:
    """What a log of ``data`` capped at ``cap`` must hold: head, marker, tail."""
    head, tail = data[: cap // 2], data[len(data) - (cap - cap // 2) :]
    return head + f"\n[dockyard: {len(data) - cap} bytes dropped]\n".encode() + tail


@pytest.mark.parametrize("total", [0, 1, 1000, 2048], ids=lambda n: f"{n}-bytes")
@pytest.mark.parametrize("size", [1, 7, 100, 5000], ids=lambda n: f"writes-of-{n}")
def test_capped_writer_under_the_cap_keeps_everything(
    tmp_path: Path, total: int, size: int
) -> None:
    data = random.Random(total).randbytes(total)

    written = write_all(tmp_path / "1.log", 2048, split(data, size))

    assert written == data
    assert (tmp_path / "1.log").exists() == (total > 0)


@pytest.mark.parametrize("cap", [1024, 1025, 4099])
@pytest.mark.parametrize("size", [1, 7, 100, 1023, 5000], ids=lambda n: f"writes-of-{n}")
def test_capped_writer_over_the_cap_keeps_head_and_tail(
    tmp_path: Path, cap: int, size: int
) -> None:
    data = random.Random(cap * size).randbytes(cap * 3 + 17)

    written = write_all(tmp_path / "1.log", cap, split(data, size))

    assert written == capped(data, cap)
    assert written.startswith(data[: cap // 2])
    assert written.endswith(data[-(cap - cap // 2) :])


@pytest.mark.parametrize("cap", [1024, 1025])
def test_capped_writer_over_the_cap_in_one_huge_write(tmp_path: Path, cap: int) -> None:
    data = random.Random(cap).randbytes(1_000_003)

    written = write_all(tmp_path / "1.log", cap, [data])

    assert written == capped(data, cap)


def test_capped_writer_one_byte_over_the_cap(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4 + b"!"

    written = write_all(tmp_path / "1.log", 1024, split(data, 10))

    assert written == data[:512] + b"\n[dockyard: 1 bytes dropped]\n" + data[513:]


def test_capped_writer_appends_to_an_existing_log_and_closes_once(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    path.write_bytes(b"before\n")
    writer = CappedLogWriter(path, 1024)
    writer.write(b"after\n")
    writer.close()
    writer.close()

    assert path.read_bytes() == b"before\nafter\n"


# -- order and follow -----------------------------------------------------------------------------

INTERLEAVE = """
import sys
for i in range(20):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
"""


def test_stdout_and_stderr_are_interleaved_in_order(client: Client, start_worker: Any) -> None:
    start_worker()
    register_process(client, "chatty", sys.executable, "-c", INTERLEAVE)

    job = client.wait(client.submit("chatty").id, timeout=WAIT)

    assert job.state is JobState.SUCCEEDED
    assert client.logs(job.id) == "".join(f"out {i}\nerr {i}\n" for i in range(20))


def test_follow_yields_a_log_live_and_returns_when_the_job_ends(
    client: Client, start_worker: Any
) -> None:
    start_worker()
    register_process(client, "drip", "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done")
    job = client.submit("drip")

    chunks: list[bytes] = []
    states_seen: list[JobState] = []
    for chunk in client.follow(job.id):
        if not chunks:
            states_seen.append(client.get(job.id).state)
        chunks.append(chunk)

    # It returned because the job ended, and it saw the first line while the job still ran.
    assert client.get(job.id).state is JobState.SUCCEEDED
    # (The attempt begins while its STARTING → RUNNING write is in flight: either is "running".)
    assert len(states_seen) == 1 and states_seen[0] in (JobState.STARTING, JobState.RUNNING)
    followed = b"".join(chunks).decode()
    assert followed == "line 1\nline 2\nline 3\n"
    assert followed == client.logs(job.id)


# -- reading in pieces, from an offset ------------------------------------------------------------


@pytest.fixture(params=["direct", "http"])
def transport(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Client]:
    """A client on the store itself, or over a real HTTP server."""
    yield from each_transport(request, settings)


def test_a_log_reads_whole_across_pieces_and_resumes_at_a_byte_offset(
    transport: Client, client: Client, start_worker: Any
) -> None:
    start_worker()
    # "€" is 3 bytes and a piece 64 KiB: characters straddle the pieces' edges.
    register_process(client, "euros", sys.executable, "-c", "print('€' * 100_000, end='')")
    job = client.wait(client.submit("euros").id, timeout=WAIT)
    whole = ("€" * 100_000).encode()
    assert len(whole) > 4 * LOG_CHUNK_BYTES and LOG_CHUNK_BYTES % 3

    assert transport.logs(job.id) == whole.decode()
    for offset in (1, 2, 3, LOG_CHUNK_BYTES + 1, len(whole) - 1, len(whole), len(whole) + 9):
        # Bytes, not characters: one cut in two reads as U+FFFD.
        expected = whole[offset:].decode("utf-8", "replace")
        assert transport.logs(job.id, offset=offset) == expected, offset
    assert transport.logs(job.id, 1, offset=3) == "€" * 99_999
    with pytest.raises(ValidationError) as raised:
        transport.logs(job.id, offset=-1)
    assert raised.value.field == "offset"


def test_the_log_store_tells_a_logs_size(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path)
    assert store.size("job-1", 1) == 0
    writer = store.open("job-1", 1, 1024)
    writer.write(b"x" * 2000)
    assert store.size("job-1", 1) == 512  # the head is written at once, the tail at the end
    writer.close()
    marker = b"\n[dockyard: 976 bytes dropped]\n"
    assert store.size("job-1", 1) == len(store.read("job-1", 1, 0, None)) == 1024 + len(marker)
