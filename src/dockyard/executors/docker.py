"""The ``docker`` executor: run a job's container on the worker's Docker engine (the Docker SDK).

One container per attempt, labelled with the job, the attempt and the worker, removed when the
attempt ends. Its output goes to the job's log as it is printed; a timeout or a cancel stops it
(SIGTERM, the grace, SIGKILL, as ``docker stop``); an engine-enforced memory limit that kills it
ends the attempt as ``OutOfMemory``. The Docker SDK is synchronous: its calls run on threads, so
the worker's loop never waits on the engine. Short calls (start, stop, inspect, remove) use the
loop's default thread pool; each running container has one thread of its own that follows its
output and then waits for its exit, so that many long containers cannot take every pooled thread
and leave none for the ``stop`` of a cancel.

A container never outlives its worker, nor its lease (docs/guarantees.md): it is named by the
worker, and from just before its creation until its removal that name is registered with the
worker's reaper (:mod:`dockyard.executors.reaper`) under the attempt's lease; the reaper removes
it through the engine when the worker dies, however it died, or when the lease runs out without
a renewal (a frozen worker). What the reaper could not remove (it died too, or the engine was away) is swept
by live workers: containers are listed by :meth:`DockerExecutor.leftovers` and removed by
:meth:`DockerExecutor.remove`; the worker decides which are orphans (executors never touch
storage). Containers are labelled with the store they belong to, so that workers of other
stores on the same engine are never taken for dead. Listing and removing ask the engine's Unix
socket directly with httpx, which is already loaded, rather than the Docker SDK: every worker
sweeps, and loading the SDK for that costs ~0.1 s and ~9 MB on a host where no docker job may
ever run.

Every container runs with no Linux capability but those its definition's ``cap_add`` names
(``--cap-drop ALL``), with ``no-new-privileges`` (setuid programs cannot gain any), and as its
definition's ``user`` when one is given. What the worker's policy refuses (host networking, a
registry off the allow-list, a credential the worker does not allow) fails the attempt before
anything reaches the engine (:mod:`dockyard.executors.docker_admission`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import DockerSpec
from dockyard.executors.docker_admission import Refused, admit
from dockyard.executors.payload import CONTAINER_PAYLOAD_PATH, payload_file, payload_variables
from dockyard.executors.port import ExecutionContext, Leftover
from dockyard.executors.reaper import ReaperUnavailable, shared_reaper
from dockyard.policy import WorkerPolicy

__all__ = ["DockerExecutor"]

#: Where a container's work directory is mounted when the definition names no ``working_dir``.
CONTAINER_WORKDIR = "/work"

log = logging.getLogger("dockyard.docker")

LABEL_JOB = "dockyard.job-id"
LABEL_ATTEMPT = "dockyard.attempt"
LABEL_WORKER = "dockyard.worker"
LABEL_HOST = "dockyard.host"
LABEL_STORE = "dockyard.store"
DEFAULT_SOCKET = "/var/run/docker.sock"
#: Exit code of a container killed for its memory limit (SIGKILL).
OOM_EXIT_CODE = 137


class DockerUnavailable(Exception):
    """No Docker engine answers (or the Docker SDK is missing)."""


class DockerExecutor:
    """Run :class:`DockerSpec` jobs on the engine ``base_environment`` (``DOCKER_*``) locates;
    ``store`` names the store whose jobs these are (a label); ``credentials`` are the worker
    variables a definition may name as its registry password, and ``policy`` bounds what a
    definition may ask for."""

    def __init__(
        self,
        base_environment: Mapping[str, str] | None = None,
        *,
        store: str = "",
        credentials: Mapping[str, str] | None = None,
        policy: WorkerPolicy | None = None,
    ) -> None:
        self._base = dict(base_environment or {})
        self._store = store
        self._credentials = dict(credentials or {})
        self._policy = policy or WorkerPolicy()
        self._client: Any = None
        self._lock = threading.Lock()

    # -- the engine ---------------------------------------------------------------------------

    def _docker(self) -> Any:
        """The engine's client, made once (``DOCKER_HOST`` or the local socket)."""
        with self._lock:
            if self._client is None:
                try:
                    import docker
                except ImportError as error:  # pragma: no cover - a dependency
                    raise DockerUnavailable(f"the Docker SDK is not installed: {error}") from None
                try:
                    client = docker.from_env(environment=self._base or None)
                    client.ping()
                except Exception as error:
                    raise DockerUnavailable(f"no Docker engine answers: {error}") from None
                self._client = client
            return self._client

    # -- one attempt --------------------------------------------------------------------------

    async def run(self, context: ExecutionContext) -> Outcome:
        spec = context.spec.executor
        assert isinstance(spec, DockerSpec)
        try:
            auth = admit(spec, self._policy, self._credentials)
        except Refused as refused:
            context.log.write(f"dockyard: {refused.text}\n".encode())
            return refused.outcome()
        try:
            client = await asyncio.to_thread(self._docker)
            image = await asyncio.to_thread(self._image, client, spec, auth)
        except DockerUnavailable as error:
            context.log.write(f"dockyard: {error}\n".encode())
            return Outcome.failed(reason="CannotStart", status_reason=str(error))
        except _ImageError as error:
            context.log.write(f"dockyard: {error}\n".encode())
            return Outcome.failed(reason="CannotPullImage", status_reason=str(error))
        refusal = _root_refusal(spec, image)
        if refusal is not None:
            context.log.write(f"dockyard: {refusal}\n".encode())
            return Outcome.failed(reason="NonRootRequired", status_reason=refusal)
        digest = _digest(image)
        context.log.write(f"dockyard: image {spec.image} ({digest})\n".encode())
        with payload_file(context) as payload:
            reaper = shared_reaper()
            # Named by us and told to the reaper before the engine creates it: a worker killed
            # while the creation is in flight leaves nothing the reaper does not know.
            name = f"dockyard-{context.job.id}-{context.attempt}-{secrets.token_hex(4)}"
            try:
                reaper.track_container(name, self._engine, context.lease)
            except ReaperUnavailable as error:
                context.log.write(f"dockyard: {error}; not starting the container\n".encode())
                return Outcome.failed(reason="CannotStart", status_reason=f"No reaper: {error}")
            try:
                try:
                    container = await asyncio.to_thread(
                        self._create, client, spec, context, payload, name
                    )
                except Exception as error:
                    context.log.write(f"dockyard: cannot create the container: {error}\n".encode())
                    return Outcome.failed(
                        reason="CannotStart", status_reason=f"Cannot create: {error}"
                    )
                try:
                    outcome = await self._supervise(container, context)
                finally:
                    await asyncio.to_thread(_remove_quietly, container)
            finally:
                with suppress(ReaperUnavailable):
                    reaper.forget_container(name)
        return replace(outcome, image=f"{spec.image.split('@')[0]}@{digest}")

    def _image(self, client: Any, spec: DockerSpec, auth: Mapping[str, str] | None) -> Any:
        import docker.errors

        try:
            if spec.pull == "always":
                return client.images.pull(spec.image, auth_config=auth)
            try:
                return client.images.get(spec.image)
            except docker.errors.ImageNotFound:
                if spec.pull == "never":
                    raise _ImageError(
                        f"image {spec.image} is not on this host and pull is never"
                    ) from None
                return client.images.pull(spec.image, auth_config=auth)
        except docker.errors.APIError as error:
            raise _ImageError(
                f"cannot get image {spec.image}: {error.explanation or error}"
            ) from None

    def _create(
        self, client: Any, spec: DockerSpec, context: ExecutionContext, payload: Path, name: str
    ) -> Any:
        resources = context.spec.resources
        options: dict[str, Any] = {
            "name": name,
            "command": None if spec.command is None else list(spec.command),
            "entrypoint": None if spec.entrypoint is None else list(spec.entrypoint),
            "environment": {
                **context.environment(),
                **payload_variables(context, CONTAINER_PAYLOAD_PATH),
            },
            "volumes": {
                str(payload): {"bind": CONTAINER_PAYLOAD_PATH, "mode": "ro"},
                **self._workdir_volume(spec, context),
            },
            "working_dir": _working_dir(spec, context),
            "user": spec.user,
            # Nothing but what the definition names; setuid programs gain nothing.
            "cap_drop": ["ALL"],
            "cap_add": list(spec.cap_add) or None,
            "security_opt": ["no-new-privileges"],
            "network_mode": spec.network_mode,
            "read_only": spec.read_only,
            "tmpfs": dict(spec.tmpfs) or None,
            "labels": {
                LABEL_JOB: context.job.id,
                LABEL_ATTEMPT: str(context.attempt),
                LABEL_WORKER: context.worker_id,
                LABEL_HOST: socket.gethostname(),
                LABEL_STORE: self._store,
            },
            "detach": True,
        }
        if resources.memory_mib is not None:
            options["mem_limit"] = f"{resources.memory_mib}m"
            options["memswap_limit"] = f"{resources.memory_mib}m"  # no swap beyond the limit
        if resources.vcpus is not None:
            options["nano_cpus"] = int(resources.vcpus * 1e9)
        return client.containers.create(
            spec.image, **{k: v for k, v in options.items() if v is not None}
        )

    @staticmethod
    def _workdir_volume(spec: DockerSpec, context: ExecutionContext) -> dict[str, Any]:
        """The attempt's work directory (inputs, outputs), read-write at the working directory."""
        if context.workdir is None:
            return {}
        return {str(context.workdir): {"bind": _working_dir(spec, context), "mode": "rw"}}

    async def _supervise(self, container: Any, context: ExecutionContext) -> Outcome:
        await asyncio.to_thread(container.start)
        exited = _follow(container, context)
        cancelled: asyncio.Future[Any] = asyncio.ensure_future(context.cancelled.wait())
        timeout = context.spec.timeout_seconds
        try:
            done, _ = await asyncio.wait(
                [exited, cancelled], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if exited not in done:
                grace = (
                    context.cancel_grace if cancelled in done else context.spec.kill_grace_seconds
                )
                await asyncio.to_thread(container.stop, timeout=max(round(grace), 0))
            status = await exited
        finally:
            cancelled.cancel()
        code = int(status.get("StatusCode", -1))
        if cancelled in done:
            return Outcome.cancelled(exit_code=code)
        if exited not in done:
            return Outcome.timed_out(timeout or 0.0, exit_code=code)
        state = await asyncio.to_thread(_state, container)
        if state.get("OOMKilled"):
            limit = context.spec.resources.memory_mib
            context.log.write(f"dockyard: killed for exceeding its memory ({limit} MiB)\n".encode())
            return Outcome.failed(
                reason="OutOfMemory",
                status_reason=f"OutOfMemoryError: Container killed due to memory usage ({limit} MiB)",
                exit_code=code,
            )
        return Outcome.exited(code)

    # -- leftovers ----------------------------------------------------------------------------

    @property
    def _engine(self) -> str:
        """The engine's address (``DOCKER_HOST``, or the local socket)."""
        return self._base.get("DOCKER_HOST", f"unix://{DEFAULT_SOCKET}")

    def _socket(self) -> str | None:
        """The engine's Unix socket, when it is reached through one."""
        host = self._engine
        return host.removeprefix("unix://") if host.startswith("unix://") else None

    def leftovers(self) -> list[Leftover]:
        """This store's containers on this engine, running or not (blocking: call in a thread)."""
        labels = [LABEL_JOB, f"{LABEL_STORE}={self._store}"]
        path = self._socket()
        if path is not None:
            if not os.path.exists(path):
                return []  # no engine here: nothing was left on it
            listed = _list_over_socket(path, labels)
        else:
            client = self._docker()
            listed = [
                {"Id": c.id, "Labels": c.labels}
                for c in client.containers.list(all=True, sparse=True, filters={"label": labels})
            ]
        return [
            Leftover(
                item["Id"], item["Labels"].get(LABEL_JOB, ""), item["Labels"].get(LABEL_WORKER, "")
            )
            for item in listed
        ]

    def remove(self, ids: list[str]) -> None:
        """Kill and remove these containers (blocking: call in a thread)."""
        path = self._socket()
        if path is not None:
            _remove_over_socket(path, ids)
            return
        client = self._docker()
        for container_id in ids:
            try:
                _remove_quietly(client.containers.get(container_id))
            except Exception as error:
                log.warning("cannot remove container %s: %s", container_id[:12], error)


class _ImageError(Exception):
    pass


def _follow(container: Any, context: ExecutionContext) -> asyncio.Future[dict[str, Any]]:
    """Follow the container on a thread of its own; the future gets its exit status."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[dict[str, Any]] = loop.create_future()

    def settle(status: dict[str, Any] | None, error: BaseException | None) -> None:
        if exited.done():
            return
        if error is not None:
            exited.set_exception(error)
        else:
            exited.set_result(status or {})

    def follow() -> None:
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                context.log.write(chunk)
        except Exception as lost:  # the output is lost; the exit status still counts
            log.warning("following container %s: %s", container.id[:12], lost)
        status: dict[str, Any] | None = None
        failure: BaseException | None = None
        try:
            status = dict(container.wait())
        except BaseException as error:
            failure = error
        with suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, status, failure)

    threading.Thread(target=follow, name=f"docker-{container.id[:12]}", daemon=True).start()
    return exited


def _list_over_socket(path: str, labels: list[str]) -> list[dict[str, Any]]:
    """``GET /containers/json`` filtered by labels, over the engine's Unix socket."""
    transport = httpx.HTTPTransport(uds=path)
    with httpx.Client(transport=transport, base_url="http://docker", timeout=10.0) as http:
        response = http.get(
            "/containers/json", params={"all": "1", "filters": json.dumps({"label": labels})}
        )
        response.raise_for_status()
        return [{"Id": item["Id"], "Labels": item.get("Labels") or {}} for item in response.json()]


def _remove_over_socket(path: str, ids: list[str]) -> None:
    """``DELETE /containers/ID?force=1`` for each id, over the engine's Unix socket."""
    transport = httpx.HTTPTransport(uds=path)
    with httpx.Client(transport=transport, base_url="http://docker", timeout=10.0) as http:
        for container_id in ids:
            try:
                response = http.delete(f"/containers/{container_id}", params={"force": "1"})
                if response.status_code not in (204, 404):
                    log.warning("cannot remove container %s: %s", container_id[:12], response.text)
            except httpx.HTTPError as error:
                log.warning("cannot remove container %s: %s", container_id[:12], error)


def _state(container: Any) -> dict[str, Any]:
    container.reload()
    return dict(container.attrs.get("State", {}))


def _remove_quietly(container: Any) -> None:
    try:
        container.remove(force=True)
    except Exception as error:  # gone already, or the engine went away
        log.debug("removing container %s: %s", getattr(container, "id", "?")[:12], error)


def _digest(image: Any) -> str:
    digests = image.attrs.get("RepoDigests") or []
    return str(digests[0].rsplit("@", 1)[-1]) if digests else str(image.id)


def _root_refusal(spec: DockerSpec, image: Any) -> str | None:
    """Why the container may not start under ``non_root`` (None when it may)."""
    if not spec.non_root:
        return None
    user = spec.user if spec.user is not None else image.attrs.get("Config", {}).get("User", "")
    name = (user or "").split(":", 1)[0]
    if name in ("", "root", "0"):
        shown = user or "the image's default, root"
        return f"The definition requires a non-root user; the container would run as {shown}"
    return None


def _working_dir(spec: DockerSpec, context: ExecutionContext) -> str | None:
    """``working_dir``; with a work directory and none given, :data:`CONTAINER_WORKDIR`."""
    if context.workdir is None:
        return spec.working_dir
    return spec.working_dir or CONTAINER_WORKDIR
