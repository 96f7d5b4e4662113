"""What a process or python job can reach of its worker (issue 26): the attacks, as an operator
would send them, against real workers on SQLite.

- a job's environment holds the basics and its own variables, never the worker's secrets;
- ``run_as``: jobs run as another OS user, who cannot read the worker's home (its token);
- python jobs run only functions the worker's owner allowed, and a module planted in the
  worker's folder never stands in for an installed one.

The ``run_as`` tests need a worker started as root (as the tests run here); the worker's
``nobody`` is the host's own.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import dockyard
from dockyard import Client, Job, JobState, ValidationError
from dockyard.app import Dockyard, WorkerConfig
from dockyard.policy import WorkerPolicy
from dockyard.settings import Settings
from tests.conftest import WorkerThread, register_process

pytestmark = [pytest.mark.sqlite_only, pytest.mark.timeout(120)]

WAIT = 30.0
PRINT_ENVIRONMENT = "import json, os; print(json.dumps(dict(os.environ)))"
#: What a worker's environment holds that no job may see.
WORKER_SECRETS = {
    "PGPASSWORD": "pg-secret",
    "AWS_ACCESS_KEY_ID": "AKIAWORKER",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "DOCKYARD_TOKEN": "dy_admin_secret",
    "DOCKYARD_URL": "postgresql://dockyard:db-secret@db.internal/dockyard",
}
#: The DOCKYARD_* variables a job may see: its own.
JOB_VARIABLES = {
    "DOCKYARD_JOB_ID",
    "DOCKYARD_JOB_ATTEMPT",
    "DOCKYARD_JOB_NAME",
    "DOCKYARD_QUEUE",
    "DOCKYARD_PAYLOAD",
    "DOCKYARD_PAYLOAD_FILE",
    "DOCKYARD_RESULT_FILE",
    "DOCKYARD_REAPER",
}


@pytest.fixture
def worker_with(settings: Settings) -> Iterator[Callable[..., WorkerThread]]:
    """``worker_with(queues=…, **policy)`` → a started worker of the test's store whose policy
    sets ``policy`` (the rest as resolved)."""
    started: list[WorkerThread] = []

    def start(queues: tuple[str, ...] | None = None, **policy: Any) -> WorkerThread:
        configured = replace(settings, policy=replace(settings.policy, **policy))
        config = WorkerConfig(queues=queues, poll_seconds=0.05, check_seconds=0.1)
        thread = WorkerThread(configured, config).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


#: How a test starts a program as the user nobody (as run_as does).
AS_NOBODY: dict[str, Any] = {"user": "nobody", "group": "nogroup", "extra_groups": []}


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("run_as needs a worker started as root")


def finished(client: Client, job_id: str) -> Job:
    return client.wait(job_id, timeout=WAIT)


# -- a clean environment ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["process", "python-subprocess"])
def test_a_job_sees_the_basics_and_its_own_variables_but_none_of_the_workers_secrets(
    client: Client, worker_with: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("TZ", "Europe/Paris")
    monkeypatch.setenv("SHARED_CACHE", "/var/cache/shared")  # passed by name, below
    monkeypatch.setenv("OTHER_SETTING", "not passed")
    worker_with(job_pass_env=("SHARED_CACHE",))
    if kind == "process":
        document: dict[str, Any] = {
            "executor": "process",
            "command": [sys.executable, "-c", PRINT_ENVIRONMENT],
        }
    else:
        document = {
            "executor": "python",
            "function": "tests.isolation_functions:environment",
            "isolation": "subprocess",
        }
    client.register({**document, "environment": {"STAGE": "nightly"}}, name="env")

    job = finished(client, client.submit("env", environment={"RUN_LABEL": "r1"}).id)

    assert job.state is JobState.SUCCEEDED, job.status_reason
    env: Any = json.loads(client.logs(job.id)) if kind == "process" else job.result
    assert isinstance(env, dict)
    for basic in ("PATH", "HOME", "LANG", "LC_ALL", "TZ"):
        assert env[basic] == os.environ[basic], basic
    assert (env["STAGE"], env["RUN_LABEL"]) == ("nightly", "r1")
    assert env["SHARED_CACHE"] == "/var/cache/shared"
    assert env["DOCKYARD_JOB_ID"] == job.id
    assert json.loads(env["DOCKYARD_PAYLOAD"]) is None and env["DOCKYARD_PAYLOAD_FILE"]
    leaked = {name for name in env if name in WORKER_SECRETS or name == "OTHER_SETTING"}
    assert leaked == set()
    assert {name for name in env if name.startswith("DOCKYARD_")} <= JOB_VARIABLES
    assert not [name for name in env if name.startswith(("PG", "AWS_"))]


# -- run_as: another OS user ---------------------------------------------------------------------


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder any user may enter (pytest's own are root's alone), so that what keeps a job
    out of a home made in it is the home's own mode."""
    folder = Path(tempfile.mkdtemp(prefix="dockyard-isolation-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def first_start(settings: Settings) -> None:
    """What ``dockyard up`` does first: create the home, the store and ``<home>/token``."""

    async def start() -> None:
        app = await Dockyard.open(settings)
        try:
            await app.ensure_admin_token()
        finally:
            await app.close()

    asyncio.run(start())


def test_run_as_runs_process_jobs_as_that_user_who_cannot_read_the_workers_token(
    open_folder: Path,
) -> None:
    needs_root()
    nobody = pwd.getpwnam("nobody")
    settings = Settings.resolve(home=open_folder / "home", environ={})
    first_start(settings)
    assert settings.token_file.exists() and settings.home.stat().st_mode & 0o777 == 0o700
    confined = replace(settings, policy=WorkerPolicy(run_as="nobody"))
    plain = WorkerThread(settings, WorkerConfig(queues=("plain",), poll_seconds=0.05)).start()
    worker = WorkerThread(confined, WorkerConfig(queues=("confined",), poll_seconds=0.05))
    worker.start()
    try:
        with dockyard.DirectClient(settings) as client:
            client.register(
                {"executor": "process", "command": 'id -u; id -G; echo "$HOME"', "shell": True},
                name="who",
            )
            register_process(client, "steal", "cat", str(settings.token_file))

            whom = finished(client, client.submit("who", queue="confined").id)
            stolen = finished(client, client.submit("steal", queue="confined").id)
            own = finished(client, client.submit("who", queue="plain").id)
            read = finished(client, client.submit("steal", queue="plain").id)

            assert whom.state is JobState.SUCCEEDED
            assert client.logs(whom.id) == f"{nobody.pw_uid}\n{nobody.pw_gid}\n{nobody.pw_dir}\n"
            assert stolen.state is JobState.FAILED and stolen.exit_code == 1
            assert "Permission denied" in client.logs(stolen.id)
            # A worker without run_as is unchanged: its jobs are its own user.
            assert client.logs(own.id).splitlines()[0] == str(os.geteuid())
            assert read.state is JobState.SUCCEEDED
    finally:
        worker.stop()
        plain.stop()


@pytest.fixture
def interpreter_for_nobody(monkeypatch: pytest.MonkeyPatch) -> str:
    """A Python of the worker's version that ``nobody`` may run, as ``sys.executable`` (what
    the executor starts): the worker's own when it can, else the system's (here the worker's
    lives in root's home, 0700, which a server's Python never does)."""
    needs_root()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                **AS_NOBODY,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
            monkeypatch.setattr(sys, "executable", candidate)
            return candidate
    pytest.skip(f"no {version} that the user nobody may run")


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_run_as_runs_every_python_function_in_a_child_of_that_user(
    client: Client, worker_with: Any, interpreter_for_nobody: str, isolation: str
) -> None:
    nobody = pwd.getpwnam("nobody")
    worker_with(run_as="nobody")
    client.register(
        {
            "executor": "python",
            "function": "tests.isolation_functions:identity",
            "isolation": isolation,
        },
        name="who",
    )

    job = finished(client, client.submit("who").id)

    assert job.state is JobState.SUCCEEDED, client.logs(job.id)
    assert job.result == {
        "uid": nobody.pw_uid,
        "gid": nobody.pw_gid,
        "groups": [],  # its primary group, and no other
        "home": nobody.pw_dir,
    }
    if isolation == "inline":  # not in the worker, which runs as root: the log says so
        assert "run_as" in client.logs(job.id) and "child process" in client.logs(job.id)


def run_worker_cli(home: Path, run_as: str, **arguments: Any) -> subprocess.CompletedProcess[str]:
    """``dockyard worker --burst`` with ``DOCKYARD_RUN_AS=run_as``."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "DOCKYARD_HOME": str(home),
        "DOCKYARD_RUN_AS": run_as,
        # Dockyard and its packages, not the standard library: the interpreter brings its own.
        "PYTHONPATH": os.pathsep.join(
            entry for entry in sys.path if entry and not entry.startswith(sys.base_prefix)
        ),
    }
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "worker", "--burst"],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=60,
        **arguments,
    )


def test_a_worker_refuses_a_run_as_it_cannot_honour_in_one_line(
    open_folder: Path, interpreter_for_nobody: str
) -> None:
    unknown = run_worker_cli(open_folder / "root", "no-such-user")
    assert unknown.returncode != 0
    assert unknown.stderr.strip().splitlines() == [
        "error: run_as: there is no user 'no-such-user' on this host"
    ]

    # A worker that is not root cannot become another user.
    home = open_folder / "nobody"
    home.mkdir()
    os.chown(home, pwd.getpwnam("nobody").pw_uid, -1)
    not_root = run_worker_cli(home, "daemon", **AS_NOBODY)
    assert not_root.returncode != 0
    (line,) = not_root.stderr.strip().splitlines()
    assert line.startswith("error: run_as: running jobs as daemon needs a worker started as root")


# -- which python functions run ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "says"),
    [
        ("builtins:eval", "builtins:eval is a standard-library function"),
        ("os:system", "standard-library function"),
        ("subprocess:run", "standard-library function"),
        ("os.path:join", "standard-library function"),
        ("importlib:import_module", "standard-library function"),
        ("dockyard.executors.functions:load_function", "function of Dockyard itself"),
    ],
)
def test_a_standard_library_or_dockyard_function_is_refused_when_registered(
    client: Client, function: str, says: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        client.register({"executor": "python", "function": function}, name="evil")
    assert refused.value.field == "function"
    assert says in refused.value.rule
    assert "@dockyard.function" in refused.value.rule and "python_modules" in refused.value.rule


def test_a_definition_stored_before_the_rule_still_reads_back_and_its_job_is_refused_to_run(
    client: Client, settings: Settings, worker_with: Any
) -> None:
    # As a store written by an earlier version holds it: straight into storage, not registered.
    from dockyard.app.wiring import open_store
    from dockyard.domain.definitions import parse_definition

    async def store_old() -> None:
        storage = await open_store(settings)
        try:
            spec = parse_definition({"executor": "python", "function": "os:getcwd"})
            await storage.definitions.insert("legacy", spec, datetime.now(UTC))
        finally:
            await storage.close()

    asyncio.run(store_old())
    assert "legacy" in [definition.name for definition in client.definitions()]
    worker_with()
    job = finished(client, client.submit("legacy").id)
    assert job.state is JobState.FAILED
    assert "os:getcwd is a standard-library function" in (job.status_reason or "")


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """``packages({"mod.py": source, …})`` → the name of a new package outside the worker's
    project folder, importable as an installed one would be (on ``sys.path``)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    made: list[str] = []

    def make(files: dict[str, str]) -> str:
        name = f"outside_{uuid.uuid4().hex[:8]}"
        (site / name).mkdir()
        for file, source in {"__init__.py": "", **files}.items():
            (site / name / file).write_text(source)
        made.append(name)
        return name

    yield make
    for module in [m for m in sys.modules if m.split(".")[0] in made]:
        del sys.modules[module]


JOBS_SOURCE = """
import dockyard

def double(payload):
    return payload * 2

@dockyard.function
def triple(payload):
    return payload * 3
"""


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_a_function_outside_the_project_runs_only_when_its_module_is_listed_or_it_is_registered(
    client: Client, worker_with: Any, packages: Any, tmp_path: Path, isolation: str
) -> None:
    listed, other = packages({"jobs.py": JOBS_SOURCE}), packages({"jobs.py": JOBS_SOURCE})
    marker = tmp_path / "ran"
    untouched = packages(
        {
            "__init__.py": f"open({str(marker)!r}, 'w').close()\n",
            "jobs.py": "def run(payload):\n    return 1\n",
        }
    )
    importlib.import_module(f"{other}.jobs")  # the worker's process registers its functions
    worker_with(python_modules=(listed,))
    refs = {
        "listed": f"{listed}.jobs:double",  # listed package: its submodules too
        "registered": f"{other}.jobs:triple",
        "unregistered": f"{other}.jobs:double",
        "installed": "httpx:get",  # in .venv, inside the project folder, still not the project's
        "unimported": f"{untouched}.jobs:run",
    }
    for name, function in refs.items():
        document = {"executor": "python", "function": function, "isolation": isolation}
        client.register({**document, "retry": {"attempts": 3}}, name=name)

    jobs = {name: finished(client, client.submit(name, payload=7).id) for name in refs}

    assert jobs["listed"].result == 14
    assert jobs["registered"].result == 21
    for name in ("unregistered", "installed", "unimported"):
        job = jobs[name]
        assert job.state is JobState.FAILED, name
        assert job.attempt_count == 1, "retrying cannot help"
        (attempt,) = job.attempts
        assert attempt.reason == "FunctionNotAllowed"
        reason = job.status_reason or ""
        assert reason.startswith(f"{refs[name]} is not allowed on this worker"), reason
        assert "@dockyard.function" in reason and "python_modules" in reason
        assert reason in client.logs(job.id)
    assert not marker.exists(), "the check ran the refused package's code"


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_a_name_a_project_module_imported_is_judged_where_it_was_defined(
    client: Client, worker_with: Any, isolation: str
) -> None:
    worker_with()
    client.register(
        {
            "executor": "python",
            "function": "tests.isolation_functions:getoutput",  # subprocess.getoutput
            "isolation": isolation,
        },
        name="shell",
    )

    job = finished(client, client.submit("shell", payload="cat /etc/hostname").id)

    assert job.state is JobState.FAILED
    assert job.attempts[0].reason == "FunctionNotAllowed"
    assert job.status_reason == (
        "tests.isolation_functions:getoutput is a standard-library function (defined in"
        " subprocess); a python job runs functions of your own code (register them with"
        " @dockyard.function or list their module in python_modules)"
    )
    assert job.result is None


PLANTED = """
raise SystemExit("the planted tabnanny.py was imported")
"""
TASKS = """
import sys

def where(payload):
    import tabnanny
    return {"tabnanny": tabnanny.__file__, "path": sys.path}
"""


def test_a_module_planted_in_the_workers_folder_does_not_shadow_an_installed_one(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "tabnanny.py").write_text(PLANTED)
    (project / "tasks.py").write_text(TASKS)
    for isolation in ("inline", "subprocess"):
        document = {"executor": "python", "function": "tasks:where", "isolation": isolation}
        client.register(document, name=isolation)
    inline, isolated = client.submit("inline"), client.submit("subprocess")

    # The worker as a user starts it: the ``dockyard`` command, in the project folder.
    env = {**os.environ, "DOCKYARD_HOME": str(settings.home), "DOCKYARD_URL": settings.url}
    dockyard_cli = str(Path(sys.executable).parent / "dockyard")
    subprocess.run(
        [dockyard_cli, "worker", "--burst"], env=env, cwd=project, timeout=60, check=True
    )

    for job in (inline, isolated):
        ran = client.get(job.id)
        assert ran.state is JobState.SUCCEEDED, client.logs(job.id)
        result: Any = ran.result
        assert isinstance(result, dict)
        assert not result["tabnanny"].startswith(str(project)), result["tabnanny"]
        path: list[str] = result["path"]
        site_packages = next(i for i, entry in enumerate(path) if "site-packages" in entry)
        assert path.index(str(project)) > site_packages, path
