"""Attempts in a work directory: the ``process`` and ``docker`` executors, wrapped so that an
attempt whose definition has ``inputs`` or ``outputs`` runs in a fresh folder of its own.

For such an attempt, :class:`StagedExecutor`:

1. makes a fresh, private work directory ``<root>/<job>-<attempt>-XXXX``
   (:func:`~dockyard.executors.staging.work_directory`; ``root`` is ``<home>/work``);
2. fetches the inputs into it while the job is still STARTING
   (:func:`~dockyard.executors.staging.fetch_inputs`: ``s3://`` of any bucket the worker's AWS
   credentials reach, ``http(s)://`` through the egress gate, ``file://`` only where the worker
   allows it). A failed fetch ends the attempt FAILED with the error's reason
   (``CannotFetchInput`` or ``InputRejected``), retried like any reason, the body never started;
3. tells the worker the body starts (:attr:`ExecutionContext.begin`: the job is written
   RUNNING) and runs the wrapped executor with :attr:`ExecutionContext.workdir` set: a process's
   cwd (its ``working_dir``, if any, a folder inside it), a container's working directory
   (``working_dir``, else ``/work``), bind-mounted read-write;
4. once the wrapped executor has returned (its body has ended), uploads the ``outputs`` whose
   ``when`` fits the outcome (:func:`~dockyard.executors.staging.upload_outputs`), writing each
   stored file (URI, size, SHA-256) to the attempt's log; a succeeded attempt whose outputs
   could not all be stored fails with ``OutputMissing`` or ``CannotStoreOutput``;
5. removes the folder.

Attempts of definitions without inputs or outputs run as before, in no work directory.

Who may read the folder: the worker makes it 0700 under a 0700 root. A process run as another
user (``DOCKYARD_RUN_AS``) gets the folder's tree chowned to that user; a container, whose user
is the image's or the definition's, gets the tree opened to everyone (``a+rwX``): the root's own
0700 still keeps the host's other users out, and a bind mount does not cross the root.

The records of the stored outputs go on the outcome (:attr:`Outcome.outputs`), and from there
on the attempt.
"""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import replace
from pathlib import Path

import httpx

from dockyard.domain.outcomes import Outcome, OutcomeKind
from dockyard.domain.staging import StagingError
from dockyard.executors.port import (
    Closes,
    ExecutionContext,
    Executor,
    LeavesThingsBehind,
    Leftover,
)
from dockyard.executors.staging import (
    ObjectStores,
    OutputsError,
    fetch_inputs,
    gated_client,
    upload_outputs,
    work_directory,
)
from dockyard.executors.templates import template_values
from dockyard.policy import WorkerPolicy

__all__ = ["StagedContainers", "StagedExecutor", "Staging"]


class Staging:
    """What one executor's staged attempts share: where work directories go, the object stores
    (one per bucket, kept across attempts) and one egress-gated HTTP client."""

    def __init__(
        self, root: Path | None, *, policy: WorkerPolicy, allow_files: bool = False
    ) -> None:
        self.root = root
        self.policy = policy
        self.allow_files = allow_files
        self.objects = ObjectStores()
        self._http: httpx.AsyncClient | None = None

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = gated_client(self.policy)
        return self._http

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        await self.objects.aclose()


class StagedExecutor:
    """``inner`` run in a work directory when the definition has inputs or outputs.

    ``owner``: the (uid, gid) the folder's tree is handed to before the body starts (a process
    run as another user); ``shared``: the tree is opened to every user (a container).
    """

    begins_itself = True

    def __init__(
        self,
        inner: Executor,
        staging: Staging,
        *,
        owner: tuple[int, int] | None = None,
        shared: bool = False,
    ) -> None:
        self.inner = inner
        self.staging = staging
        self._owner = owner
        self._shared = shared

    async def run(self, context: ExecutionContext) -> Outcome:
        spec = context.spec
        if not (spec.inputs or spec.outputs):
            context.begin()
            return await self.inner.run(context)
        root = self.staging.root
        if root is None:
            return Outcome.failed(
                reason="NoWorkDirectory",
                status_reason="This worker has no folder for work directories",
            )
        with work_directory(root, context.job.id, context.attempt) as workdir:
            stopped = await self._fetch(context, workdir)
            if stopped is not None:
                return stopped
            await asyncio.to_thread(self._hand_over, workdir)
            context.begin()
            outcome = await self.inner.run(replace(context, workdir=workdir))
            return await self._upload(context, workdir, outcome)

    async def _fetch(self, context: ExecutionContext, workdir: Path) -> Outcome | None:
        """Fetch the inputs; the outcome that ends the attempt before its body, or None."""
        inputs = context.spec.inputs
        if not inputs:
            return None
        staging = self.staging
        fetching = asyncio.ensure_future(
            fetch_inputs(
                inputs,
                workdir,
                values=template_values(context),
                objects=staging.objects,
                http=staging.http() if any(i.source.startswith("http") for i in inputs) else None,
                policy=staging.policy,
                allow_files=staging.allow_files,
            )
        )
        cancelled = asyncio.ensure_future(context.cancelled.wait())
        try:
            await asyncio.wait({fetching, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if not fetching.done():
            fetching.cancel()
            await asyncio.wait({fetching})
            return Outcome.cancelled()
        try:
            records = fetching.result()
        except StagingError as error:
            context.log.write(f"dockyard: {error}\n".encode())
            return Outcome.failed(reason=error.reason, status_reason=str(error))
        for record in records:
            line = f"dockyard: fetched {record.uri} ({record.size} bytes, sha256 {record.sha256})"
            context.log.write(f"{line}\n".encode())
        return None

    async def _upload(self, context: ExecutionContext, workdir: Path, outcome: Outcome) -> Outcome:
        """Upload the outputs whose ``when`` fits the outcome, once the body has ended; each
        stored file is written to the log. A succeeded attempt whose outputs could not all be
        stored fails with the reason (``OutputMissing``, ``CannotStoreOutput``); a failed one
        keeps its own. A cancelled (or handed back) attempt uploads nothing."""
        outputs = context.spec.outputs
        if not outputs or outcome.kind in (OutcomeKind.CANCELLED, OutcomeKind.LOST):
            return outcome
        succeeded = outcome.kind is OutcomeKind.SUCCEEDED
        values = template_values(context)
        objects = self.staging.objects
        try:
            records = await upload_outputs(
                outputs, workdir, succeeded, values=values, objects=objects
            )
        except OutputsError as error:
            records = error.uploaded
            context.log.write(f"dockyard: {error}\n".encode())
            if succeeded:
                outcome = Outcome.failed(
                    reason=error.reason, status_reason=str(error), exit_code=outcome.exit_code
                )
        for record in records:
            line = f"dockyard: stored {record.path} at {record.uri}"
            context.log.write(f"{line} ({record.size} bytes, sha256 {record.sha256})\n".encode())
        return replace(outcome, outputs=tuple(records))

    def _hand_over(self, workdir: Path) -> None:
        """Let the body's user into the tree (see the module docstring)."""
        if self._owner is None and not self._shared:
            return
        for folder, names, files in os.walk(workdir):
            for path in [folder, *(os.path.join(folder, name) for name in names + files)]:
                if self._owner is not None:
                    os.chown(path, *self._owner, follow_symlinks=False)
                else:
                    mode = os.lstat(path).st_mode
                    if not stat.S_ISLNK(mode):
                        wanted = 0o777 if stat.S_ISDIR(mode) or mode & 0o100 else 0o666
                        os.chmod(path, stat.S_IMODE(mode) | wanted)

    async def aclose(self) -> None:
        if isinstance(self.inner, Closes):
            await self.inner.aclose()
        await self.staging.aclose()


class StagedContainers(StagedExecutor):
    """A :class:`StagedExecutor` over an executor that leaves things behind (containers)."""

    def __init__(self, inner: Executor, staging: Staging) -> None:
        assert isinstance(inner, LeavesThingsBehind)
        super().__init__(inner, staging, shared=True)
        self._containers = inner

    def leftovers(self) -> list[Leftover]:
        return list(self._containers.leftovers())

    def remove(self, ids: list[str]) -> None:
        self._containers.remove(ids)
