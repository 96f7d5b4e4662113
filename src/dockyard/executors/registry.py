"""The table of executors: for each executor kind, the factory that builds the executor running it.

The domain knows every kind a definition may name (``dockyard.domain.specs.registry``); this
table knows how a worker runs each. A factory builds its executor from one small frozen
:class:`ExecutorOptions`, the only things executors take from the process around them, so that
the composition root resolves them once and nothing here reads ``os.environ`` or the working
directory. Adding a kind is its executor module and one line in ``_BUILT_IN``.

Factories run in table order and see the executors built before them: ``lambda`` shares the
``http`` executor's connection pool and egress rules rather than opening its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.executors.docker import DockerExecutor
from dockyard.executors.http import HttpExecutor, LambdaExecutor
from dockyard.executors.port import Executor
from dockyard.executors.process import ProcessExecutor, resolve_run_as
from dockyard.executors.python import PythonExecutor
from dockyard.executors.workdirs import StagedContainers, StagedExecutor, Staging
from dockyard.policy import WorkerPolicy

__all__ = [
    "ExecutorFactory",
    "ExecutorOptions",
    "build_executors",
    "executor_factories",
    "register_executor",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorOptions:
    """What executors take from the process that runs them, resolved once by the caller."""

    #: What every attempt's environment starts from, under its own variables
    #: (:func:`dockyard.executors.environment.job_environment`): never the worker's secrets.
    job_environment: Mapping[str, str] = field(default_factory=dict)
    #: Worker variables a definition may name as credentials (already filtered by the policy).
    credentials: Mapping[str, str] = field(default_factory=dict)
    #: ``DOCKER_*`` variables locating the Docker engine.
    engine_environment: Mapping[str, str] = field(default_factory=dict)
    #: Folders searched for ``python`` functions after the installed packages (the worker's
    #: working directory, usually).
    search_path: tuple[str, ...] = ()
    #: The store whose jobs these are; containers are labelled with it.
    store_id: str = ""
    #: Host patterns ``http`` and ``lambda`` calls may reach; None: any host.
    http_allowed_hosts: tuple[str, ...] | None = None
    #: What jobs may reach beyond that (private addresses, host network, registries, the user
    #: programs run as…).
    policy: WorkerPolicy = field(default_factory=WorkerPolicy)
    #: Where attempts with inputs or outputs get their work directories (``<home>/work``);
    #: None: such attempts fail (``NoWorkDirectory``).
    work_root: Path | None = None
    #: Whether ``file://`` inputs may read the worker host's files.
    input_allow_files: bool = False

    def staging(self) -> Staging:
        return Staging(self.work_root, policy=self.policy, allow_files=self.input_allow_files)


#: Builds one kind's executor from the options and the executors built before it.
ExecutorFactory = Callable[[ExecutorOptions, Mapping[str, Executor]], Executor]


def _process(options: ExecutorOptions, built: Mapping[str, Executor]) -> Executor:
    run_as = resolve_run_as(options.policy.run_as)
    inner = ProcessExecutor(options.job_environment, run_as=run_as)
    owner = None if run_as is None else (run_as.uid, run_as.gid)
    return StagedExecutor(inner, options.staging(), owner=owner)


def _python(options: ExecutorOptions, built: Mapping[str, Executor]) -> Executor:
    return PythonExecutor(
        options.job_environment,
        search_path=options.search_path,
        modules=options.policy.python_modules,
        run_as=resolve_run_as(options.policy.run_as),
    )


def _docker(options: ExecutorOptions, built: Mapping[str, Executor]) -> Executor:
    inner = DockerExecutor(
        options.engine_environment,
        store=options.store_id,
        credentials=options.credentials,
        policy=options.policy,
    )
    return StagedContainers(inner, options.staging())


def _http(options: ExecutorOptions, built: Mapping[str, Executor]) -> Executor:
    return HttpExecutor(
        options.http_allowed_hosts, policy=options.policy, credentials=options.credentials
    )


def _lambda(options: ExecutorOptions, built: Mapping[str, Executor]) -> Executor:
    http = built["http"]
    # One pool, closed once by the worker: LambdaExecutor has no aclose of its own.
    assert isinstance(http, HttpExecutor), "lambda is built after http"
    return LambdaExecutor(http)


_BUILT_IN: tuple[tuple[str, ExecutorFactory], ...] = (
    ("process", _process),
    ("python", _python),
    ("docker", _docker),
    ("http", _http),
    ("lambda", _lambda),
)

_FACTORIES: dict[str, ExecutorFactory] = {}


def register_executor(kind: str, factory: ExecutorFactory) -> None:
    """Run ``kind`` with what ``factory`` builds; a kind is registered once."""
    if kind in _FACTORIES:
        raise ValueError(f"an executor for {kind!r} is already registered")
    _FACTORIES[kind] = factory


def executor_factories() -> Mapping[str, ExecutorFactory]:
    """Every registered kind and its factory, in registration order."""
    return dict(_FACTORIES)


def build_executors(options: ExecutorOptions) -> dict[str, Executor]:
    """A fresh executor for every registered kind: what one worker runs its attempts with."""
    built: dict[str, Executor] = {}
    for kind, factory in _FACTORIES.items():
        built[kind] = factory(options, built)
    return built


for _kind, _factory in _BUILT_IN:
    register_executor(_kind, _factory)
