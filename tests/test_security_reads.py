"""Issue 26, reads that cost the server: each test sends the attack of its finding to a real
server (``dockyard server`` on 127.0.0.1).

- A viewer's 600 KB pattern sent to ``/v1/rules/test-pattern`` blocked the whole server for
  seconds, and each distinct pattern stayed in the compiled-pattern cache. A pattern is now
  refused past EventBridge's 4,096 characters, whether tested or given to a rule; a test compiles
  for itself only, and runs off the event loop, so that other requests are answered meanwhile.
- ``log_max_bytes`` had no maximum (100 GB was accepted), and each reader of a log had the whole
  log read into the server's memory. The setting stops at 1 GiB, and a log is sent in pieces with
  its length, from an offset when asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard import Client, DirectClient, HttpClient, JobState, ValidationError
from dockyard.domain.definitions import MAX_LOG_MAX_BYTES
from dockyard.domain.patterns import MAX_PATTERN_CHARACTERS, InvalidEventPattern
from tests.conftest import ServerProcess, register_process

pytestmark = pytest.mark.timeout(120)

PROBLEM = "application/problem+json"
MiB = 1024 * 1024


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def viewer(server: ServerProcess) -> str:
    """The secret of a *viewer* token: the attacker of these tests can only read."""
    with HttpClient(server.url, token=server.admin_token) as admin:
        _, secret = admin.create_token("watcher", "viewer")
    return secret


def refusal(response: httpx.Response, field: str) -> str:
    """The rule of a 422 problem that names ``field``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["field"] == field, problem
    return str(problem["rule"])


def padded_pattern(size: int) -> dict[str, Any]:
    """A valid pattern whose compact JSON is exactly ``size`` characters."""
    bare = len(json.dumps({"source": [""]}, separators=(",", ":")))
    return {"source": ["x" * (size - bare)]}


# -- patterns -----------------------------------------------------------------------------------


def test_a_pattern_past_4096_characters_is_refused_for_a_test_and_for_a_rule(
    server: ServerProcess, viewer: str
) -> None:
    url = f"{server.url}/v1"
    event = {"source": "ci"}
    huge = padded_pattern(600_000)  # the finding's 600 KB
    with httpx.Client(headers=bearer(viewer), timeout=30) as http:
        for pattern in (huge, json.dumps(huge)):
            answer = http.post(
                f"{url}/rules/test-pattern", json={"pattern": pattern, "event": event}
            )
            rule = refusal(answer, "pattern")
            assert f"less than or equal to {MAX_PATTERN_CHARACTERS} characters" in rule, rule
        # One more character than allowed is refused; the limit itself is a pattern like others.
        over = padded_pattern(MAX_PATTERN_CHARACTERS + 1)
        answer = http.post(f"{url}/rules/test-pattern", json={"pattern": over, "event": event})
        refusal(answer, "pattern")
        limit = padded_pattern(MAX_PATTERN_CHARACTERS)
        answer = http.post(f"{url}/rules/test-pattern", json={"pattern": limit, "event": event})
        assert answer.status_code == 200 and answer.json() == {"result": False}, answer.text
        # Text is measured as written, spaces included, as AWS measures it.
        spaced = " " * MAX_PATTERN_CHARACTERS + '{"source": ["ci"]}'
        answer = http.post(f"{url}/rules/test-pattern", json={"pattern": spaced, "event": event})
        refusal(answer, "pattern")

    with httpx.Client(headers=bearer(server.admin_token), timeout=30) as http:
        rule_document = {"name": "wide", "event_pattern": over, "targets": []}
        refusal(http.post(f"{url}/rules", json=rule_document), "event_pattern")
        assert http.get(f"{url}/rules/wide").status_code == 404
        created = http.post(f"{url}/rules", json={**rule_document, "event_pattern": limit})
        assert created.status_code == 201, created.text
        changed = http.patch(f"{url}/rules/wide", json={"event_pattern": json.dumps(over)})
        refusal(changed, "event_pattern")
        # A rule that keeps its pattern changes as before.
        described = http.patch(f"{url}/rules/wide", json={"description": "kept"})
        assert described.status_code == 200 and described.json()["event_pattern"] == limit


def test_the_sdk_refuses_a_pattern_past_the_limit_on_both_transports(
    server: ServerProcess, client: Client
) -> None:
    over = padded_pattern(MAX_PATTERN_CHARACTERS + 1)
    with HttpClient(server.url, token=server.admin_token) as http:
        for each in (http, client):
            assert isinstance(each, HttpClient | DirectClient)
            with pytest.raises(InvalidEventPattern) as raised:
                each.test_event_pattern(over, {"source": "ci"})
            assert raised.value.field == "pattern" and "4096" in raised.value.message
            with pytest.raises(ValidationError) as refused:
                each.create_rule({"event_pattern": over}, name="wide")
            assert refused.value.field == "event_pattern"


def costly_test() -> dict[str, Any]:
    """A ``test-pattern`` body within every limit that still takes a second or more to answer:
    three ``$or`` of ten make 1,000 alternatives, each trying its wildcard on 3,500 values."""

    def either(prefix: str, test: dict[str, str]) -> dict[str, Any]:
        return {"$or": [{f"{prefix}{index}": [test]} for index in range(10)]}

    pattern = {
        **either("a", {"wildcard": "*needle*x*"}),
        "b": either("b", {"wildcard": "*pin*y*"}),
        "c": either("c", {"prefix": "never-" * 50}),  # long, to bring it near the limit
    }
    hay = [f"hay-{index}" for index in range(3500)]
    event: dict[str, Any] = {f"a{index}": hay for index in range(10)}
    event["b"] = {f"b{index}": hay for index in range(10)}
    assert 3500 < len(json.dumps(pattern, separators=(",", ":"))) <= MAX_PATTERN_CHARACTERS
    return {"pattern": pattern, "event": event}


@pytest.mark.sqlite_only
def test_a_costly_pattern_test_does_not_hold_up_the_server(
    server: ServerProcess, viewer: str
) -> None:
    body = json.dumps(costly_test())
    answers: list[httpx.Response] = []
    took: list[float] = []

    def send() -> None:
        began = time.monotonic()
        answers.append(
            httpx.post(
                f"{server.url}/v1/rules/test-pattern",
                content=body,
                headers={**bearer(viewer), "Content-Type": "application/json"},
                timeout=120,
            )
        )
        took.append(time.monotonic() - began)

    tester = threading.Thread(target=send)
    tester.start()
    delays: list[float] = []
    with httpx.Client(timeout=30) as probe:
        while tester.is_alive():
            began = time.monotonic()
            assert probe.get(f"{server.url}/healthz").status_code == 200
            delays.append(time.monotonic() - began)
            time.sleep(0.05)
    tester.join()

    assert answers[0].status_code == 200 and answers[0].json() == {"result": False}
    # The test was long enough to show something, and /healthz was answered all along.
    assert took[0] >= 1.0, f"the test took {took[0]:.2f} s: too little to show anything"
    assert max(delays) < 0.5, f"/healthz waited {max(delays):.2f} s behind the pattern test"
    assert len(delays) >= 5


# -- logs ---------------------------------------------------------------------------------------


def test_log_max_bytes_stops_at_1_gib(server: ServerProcess, client: Client) -> None:
    with HttpClient(server.url, token=server.admin_token) as http:
        for each in (client, http):
            with pytest.raises(ValidationError) as refused:
                register_process(each, "loud", "true", log_max_bytes=100 * 1000**3)  # 100 GB
            assert refused.value.field == "log_max_bytes"
            assert "1073741824" in refused.value.rule
            with pytest.raises(ValidationError):
                register_process(each, "loud", "true", log_max_bytes=MAX_LOG_MAX_BYTES + 1)
        assert register_process(http, "loud", "true", log_max_bytes=MAX_LOG_MAX_BYTES).spec
    assert client.definition("loud").spec.log_max_bytes == MAX_LOG_MAX_BYTES


def memory_kib(pid: int, field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of ``pid`` from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


#: ``seq 1 LINES`` prints 38.9 MB: tens of MB, as the finding's readers asked for.
LINES = 5_000_000


@pytest.fixture
def long_log(client: Client, start_worker: Any) -> Iterator[tuple[str, bytes]]:
    """A finished job whose log is ``seq 1 5000000`` (38.9 MB), and that log."""
    start_worker()
    register_process(client, "counter", "seq", "1", str(LINES), log_max_bytes=64 * MiB)
    job = client.wait(client.submit("counter").id, timeout=60)
    assert job.state is JobState.SUCCEEDED
    yield job.id, "".join(f"{n}\n" for n in range(1, LINES + 1)).encode()


@pytest.mark.sqlite_only
def test_three_readers_of_a_39_mb_log_leave_the_server_small(
    server: ServerProcess, viewer: str, long_log: tuple[str, bytes]
) -> None:
    job_id, expected = long_log
    url = f"{server.url}/v1/jobs/{job_id}/logs"
    pid = server.proc.pid
    with httpx.Client(headers=bearer(viewer), timeout=60) as http:
        assert http.get(url, params={"offset": len(expected) - 8}).content == expected[-8:]
    # Measure the peak from here on (resetting VmHWM needs Linux 4.0; else the check is laxer).
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = memory_kib(pid, "VmRSS")

    digests: list[tuple[int, str, str]] = []
    ready = threading.Barrier(3)

    def read() -> None:
        digest = hashlib.sha256()
        with httpx.Client(headers=bearer(viewer), timeout=60) as http:
            ready.wait()
            with http.stream("GET", url) as response:
                length = response.headers["content-length"]
                for chunk in response.iter_bytes():
                    digest.update(chunk)
        digests.append((response.status_code, length, digest.hexdigest()))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    peak = memory_kib(pid, "VmHWM")

    whole = hashlib.sha256(expected).hexdigest()
    assert digests == [(200, str(len(expected)), whole)] * 3
    growth_mib = (peak - before) / 1024
    assert growth_mib < 10, f"the server grew by {growth_mib:.1f} MiB for a 39 MB log"


def test_a_read_resumes_at_an_offset_with_its_length(
    server: ServerProcess, viewer: str, client: Client, start_worker: Any
) -> None:
    start_worker()
    register_process(client, "greek", "printf", "alpha α\\nbeta β\\n")
    job = client.wait(client.submit("greek").id, timeout=60)
    whole = "alpha α\nbeta β\n".encode()
    url = f"{server.url}/v1/jobs/{job.id}/logs"
    with httpx.Client(headers=bearer(viewer), timeout=30) as http:
        for offset in (0, 1, 7, len(whole) - 1, len(whole), len(whole) + 100):
            answer = http.get(url, params={"offset": offset})
            assert answer.status_code == 200, answer.text
            assert answer.content == whole[offset:]
            assert answer.headers["content-length"] == str(len(whole[offset:]))
        refusal(http.get(url, params={"offset": -1}), "offset")
        refusal(http.get(url, params={"offset": 3, "follow": "true"}), "offset")
        assert http.get(f"{server.url}/v1/jobs/nope/logs", params={"offset": 3}).status_code == 404
