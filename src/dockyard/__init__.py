"""Dockyard: durable jobs — programs, Python functions, containers, HTTP calls and Lambda functions —
on demand, on a schedule or when an event arrives, on SQLite or PostgreSQL.

The public API is what ``__all__`` lists::

    import dockyard

    with dockyard.connect() as client:          # the embedded store in ~/.dockyard
        client.register({"executor": "process", "command": ["echo", "hi"]}, name="hello")
        job = client.submit("hello")
        print(client.wait(job.id).state)

    dockyard.next_fire_times("cron(0 2 * * ? *)", timezone="Europe/Paris", count=3)
    dockyard.test_event_pattern({"source": ["ci"]}, {"source": "ci", "detail": {}})  # True

    @dockyard.function                           # python jobs may run it: "tasks:resize"
    def resize(payload): ...
"""

from __future__ import annotations

from dockyard.client import Client, DirectClient, HttpClient, connect
from dockyard.domain.fire_times import next_fire_times
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.patterns import matches as test_event_pattern
from dockyard.domain.records import Attempt, Definition, Job
from dockyard.domain.states import DefinitionStatus, JobState
from dockyard.errors import (
    AuthenticationError,
    ConflictError,
    DockyardError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    ValidationError,
)
from dockyard.executors.functions import function

__all__ = [
    "Attempt",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "Definition",
    "DefinitionStatus",
    "DirectClient",
    "DockyardError",
    "HttpClient",
    "Job",
    "JobState",
    "NotFoundError",
    "PermissionDeniedError",
    "StorageError",
    "SubmitRequest",
    "ValidationError",
    "connect",
    "function",
    "next_fire_times",
    "test_event_pattern",
]
