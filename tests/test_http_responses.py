"""Responses are read as they stream in: reading stops at ``max_response_bytes`` and the whole
exchange ends within the attempt's deadline (issue 26: a 400 MB response took a worker to
1.13 GB, and an endless body never timed out).

The server is a real one on 127.0.0.1 that sends a body with no end, at a steady pace, and
counts what it managed to send before the worker hung up. Sent at a pace the worker keeps up
with, nothing piles up in socket buffers, so what was sent is what the worker read, give or
take a chunk in flight.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dockyard import JobState
from dockyard.client import Client

#: What httpcore reads from a socket at once: the most the worker may hold past the cap.
ONE_READ = 64 * 1024


@dataclass
class Endless:
    """A server whose answers never end: ``chunk`` bytes every ``pause`` seconds."""

    url: str
    chunk: int = 1024
    pause: float = 0.002
    #: Bytes of body sent on each connection, once the worker hung up.
    sent: list[int] = field(default_factory=list)
    hung_up: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def endless() -> Iterator[Endless]:
    servers: list[Endless] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection does: never

        def do_GET(self) -> None:
            server = servers[0]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            sent = 0
            deadline = time.monotonic() + 30  # a bound for the test run, should all else fail
            try:
                while time.monotonic() < deadline:
                    self.wfile.write(b"x" * server.chunk)
                    self.wfile.flush()
                    sent += server.chunk
                    time.sleep(server.pause)  # the pace of the trickle: what is tested
            except OSError:
                pass
            server.sent.append(sent)
            server.hung_up.set()

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    servers.append(Endless(url=f"http://127.0.0.1:{httpd.server_address[1]}"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield servers[0]
    httpd.shutdown()
    httpd.server_close()


def test_reading_stops_at_the_cap_of_an_endless_body(
    client: Client, endless: Endless, start_worker: Any
) -> None:
    cap = 16 * 1024
    client.register(
        {
            "executor": "http",
            "method": "GET",
            "url": endless.url + "/stream",
            "max_response_bytes": cap,
            "timeout": 20,
        },
        name="firehose",
    )
    start_worker(concurrency=2)
    began = time.monotonic()
    job = client.wait(client.submit("firehose").id, timeout=30)
    took = time.monotonic() - began
    assert job.state is JobState.SUCCEEDED, job.status_reason
    assert isinstance(job.result, dict) and job.result["truncated"] is True
    assert job.result["body"] == "x" * cap
    assert took < 10  # well before the 20 s deadline: it stopped at the cap, not at the end
    assert endless.hung_up.wait(10)
    (sent,) = endless.sent
    assert sent <= cap + ONE_READ + 4 * endless.chunk  # the cap, one read, what was in flight
    assert f"[dockyard: body cut at {cap} bytes]" in client.logs(job.id)


def test_a_trickling_body_ends_at_the_deadline(
    client: Client, endless: Endless, start_worker: Any
) -> None:
    # One byte every 50 ms: every read gets something long before any read timeout, so only a
    # deadline for the whole exchange ends it.
    endless.chunk, endless.pause = 1, 0.05
    client.register(
        {"executor": "http", "method": "GET", "url": endless.url + "/drip", "timeout": 1},
        name="drip",
    )
    start_worker(concurrency=2)
    job = client.wait(client.submit("drip").id, timeout=30)
    assert job.state is JobState.FAILED
    (attempt,) = job.attempts
    assert attempt.reason == "Timeout"
    assert attempt.started_at is not None and attempt.stopped_at is not None
    assert (attempt.stopped_at - attempt.started_at).total_seconds() < 3
    assert endless.hung_up.wait(10)
    assert endless.sent[0] < 64  # about 20 bytes in one second: the worker held nothing more


def test_a_webhook_reads_no_body_and_is_delivered(endless: Endless, settings: Any) -> None:
    from tests.test_egress import deliver

    target = {"id": "t", "kind": "webhook", "url": endless.url + "/hook", "timeout": 5}
    began = time.monotonic()
    invocation = deliver(settings, target)
    assert invocation.result == "HTTP 200"
    assert time.monotonic() - began < 5
