"""The Python SDK: ``dockyard.connect()`` returns a :class:`Client`.

The client is synchronous, for scripts and notebooks; it runs the asynchronous facade on a private
event loop in a background thread (an anyio blocking portal). Today its transport is direct: it
opens the store named by the URL. An HTTP transport with the same methods follows with the API.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from dockyard.app import Dockyard, Submitted, WorkerInfo
from dockyard.domain.clock import Clock
from dockyard.domain.jobs import SubmitRequest
from dockyard.domain.records import JSON, Definition, Job
from dockyard.settings import Settings

__all__ = ["Client", "connect"]

T = TypeVar("T")


def connect(url: str | None = None, *, home: str | Path | None = None) -> Client:
    """Connect to the Dockyard at ``url`` (default: ``DOCKYARD_URL`` or the embedded store in home)."""
    return Client(Settings.resolve(home=home, url=url))


class Client:
    """Every user operation, by the same names as the CLI. Close it, or use it in a ``with``."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self._closed = False
        self._stack = ExitStack()
        self._portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
        try:
            self._app = self._portal.call(lambda: Dockyard.open(settings, clock=clock))
        except BaseException:
            self._stack.close()
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._portal.call(self._app.close)
            finally:
                self._stack.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return self._portal.call(lambda: fn(*args, **kwargs))
        return self._portal.call(fn, *args)

    # -- definitions ----------------------------------------------------------------------------

    def register(self, document: Mapping[str, Any], *, name: str | None = None) -> Definition:
        """Register a definition document (the YAML/JSON format of ``definitions register -f``)."""
        result: Definition = self._call(self._app.register_definition, document, name)
        return result

    def definition(self, ref: str) -> Definition:
        result: Definition = self._call(self._app.get_definition, ref)
        return result

    def revisions(self, name: str) -> list[Definition]:
        result: list[Definition] = self._call(self._app.definition_revisions, name)
        return result

    def definitions(self) -> list[Definition]:
        result: list[Definition] = self._call(self._app.list_definitions)
        return result

    def deregister(self, ref: str) -> Definition:
        result: Definition = self._call(self._app.deregister_definition, ref)
        return result

    # -- jobs -----------------------------------------------------------------------------------

    def submit(
        self,
        definition: str,
        *,
        payload: JSON = None,
        queue: str | None = None,
        group: str | None = None,
        idempotency_key: str | None = None,
        priority: int = 0,
        command: Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
        timeout: float | None = None,
        attempts: int | None = None,
        parameters: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Job:
        """Submit one job; with an idempotency key seen before, the earlier job is returned."""
        request = SubmitRequest(
            definition=definition,
            name=name,
            queue=queue,
            group=group,
            idempotency_key=idempotency_key,
            priority=priority,
            payload=payload,
            command=None if command is None else tuple(command),
            environment=dict(environment or {}),
            timeout_seconds=timeout,
            attempts=attempts,
            parameters=dict(parameters or {}),
        )
        return self.submit_requests([request])[0].job

    def submit_requests(self, requests: Sequence[SubmitRequest]) -> list[Submitted]:
        """Submit many jobs in one transaction (all or none)."""
        result: list[Submitted] = self._call(self._app.submit_many, requests)
        return result

    def get(self, job_id: str) -> Job:
        result: Job = self._call(self._app.get_job, job_id)
        return result

    def list(
        self,
        *,
        states: Sequence[str] = (),
        queue: str | None = None,
        definition: str | None = None,
        group: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Jobs, newest first."""
        result: list[Job] = self._call(
            self._app.list_jobs,
            states=states,
            queue=queue,
            definition=definition,
            group=group,
            limit=limit,
        )
        return result

    def cancel(self, job_id: str, reason: str | None = None) -> Job:
        result: Job = self._call(self._app.cancel, job_id, reason)
        return result

    def retry(self, job_id: str) -> Job:
        result: Job = self._call(self._app.retry, job_id)
        return result

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is SUCCEEDED, FAILED or CANCELLED (TimeoutError after ``timeout``)."""
        result: Job = self._call(self._app.wait, job_id, timeout)
        return result

    def logs(self, job_id: str, attempt: int | None = None) -> str:
        """The log of one attempt, the latest by default."""
        data: bytes = self._call(self._app.read_log, job_id, attempt)
        return data.decode("utf-8", "replace")

    def follow(self, job_id: str, attempt: int | None = None) -> Iterator[bytes]:
        """Yield the log as the job prints it, until the job ends."""
        stream = self._app.follow_log(job_id, attempt)
        try:
            while True:
                try:
                    yield self._portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            self._portal.call(stream.aclose)

    def workers(self) -> builtins.list[WorkerInfo]:
        result: builtins.list[WorkerInfo] = self._call(self._app.list_workers)
        return result
