"""The process and python executors, end to end: a real worker, real processes, real SQLite.

Every test registers a definition, submits a job through the SDK, lets a worker run it and checks
what a user would check: the job's state, exit code, attempts, result and log.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard import Client, JobState
from dockyard.errors import ConflictError
from tests.conftest import register_process, wait_until

# A hung job must fail the test, not the whole run.
pytestmark = pytest.mark.timeout(60)

#: How long a test waits for a job before it gives up: generous, it only bounds a failure.
WAIT = 30.0

PRINT_ENVIRONMENT = "import json, os; print(json.dumps(dict(os.environ)))"


def is_dead(pid: int) -> bool:
    """True when ``pid`` is gone, or is a zombie that nobody reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    for line in status.splitlines():
        if line.startswith("State:"):
            return line.split()[1] in ("Z", "X")
    return False


def read_pid(path: Path) -> int | None:
    """The pid a job wrote to ``path``, or None while it has not written it yet."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def log_environment(client: Client, job_id: str) -> dict[str, str]:
    """The environment a job printed as JSON (see :data:`PRINT_ENVIRONMENT`)."""
    environment: dict[str, str] = json.loads(client.logs(job_id))
    return environment


# -- process: exit codes ----------------------------------------------------------------------


def test_exit_zero_succeeds_with_one_closed_attempt(client: Client, start_worker: Any) -> None:
    start_worker()
    register_process(client, "ok", "true")

    job = client.wait(client.submit("ok").id, timeout=WAIT)

    assert job.state is JobState.SUCCEEDED
    assert job.exit_code == 0
    assert job.attempt_count == 1
    (attempt,) = job.attempts
    assert attempt.number == 1
    assert attempt.exit_code == 0
    assert attempt.reason is None
    assert attempt.started_at is not None
    assert attempt.stopped_at is not None
    assert attempt.started_at <= attempt.stopped_at
    assert job.started_at is not None and job.stopped_at is not None


def test_non_zero_exit_ends_failed_with_the_code(client: Client, start_worker: Any) -> None:
    start_worker()
    register_process(client, "three", "sh", "-c", "echo failing; exit 3")

    job = client.wait(client.submit("three").id, timeout=WAIT)

    assert job.state is JobState.FAILED
    assert job.exit_code == 3
    assert job.status_reason == "Exited with code 3"
    (attempt,) = job.attempts
    assert attempt.reason == "NonZeroExit"
    assert attempt.exit_code == 3
    assert attempt.stopped_at is not None
    assert client.logs(job.id) == "failing\n"


# -- process: environment, command, shell, parameters --------------------------------------------


def test_process_sees_dockyard_variables_and_merged_environment(
    client: Client, start_worker: Any
) -> None:
    start_worker()
    register_process(
        client,
        "env",
        sys.executable,
        "-c",
        PRINT_ENVIRONMENT,
        environment={"DY_TEST_GREETING": "hello", "DY_TEST_COLOR": "blue"},
    )
    payload: dict[str, Any] = {"n": 1, "words": ["a b", "c"], "nested": {"ok": True}}

    job = client.submit(
        "env",
        payload=payload,
        queue="reports",
        name="nightly-env",
        environment={"DY_TEST_COLOR": "red", "DY_TEST_EXTRA": "1"},
    )
    plain = client.submit("env", queue="reports")
    assert client.wait(job.id, timeout=WAIT).state is JobState.SUCCEEDED
    assert client.wait(plain.id, timeout=WAIT).state is JobState.SUCCEEDED

    env = log_environment(client, job.id)
    assert env["DOCKYARD_JOB_ID"] == job.id
    assert env["DOCKYARD_JOB_ATTEMPT"] == "1"
    assert env["DOCKYARD_JOB_NAME"] == "nightly-env"
    assert env["DOCKYARD_QUEUE"] == "reports"
    assert json.loads(env["DOCKYARD_PAYLOAD"]) == payload
    # Merged by name: the override wins, the definition's other variables stay.
    assert env["DY_TEST_GREETING"] == "hello"
    assert env["DY_TEST_COLOR"] == "red"
    assert env["DY_TEST_EXTRA"] == "1"

    # Another job of the same definition is not touched by the first one's overrides.
    env = log_environment(client, plain.id)
    assert env["DOCKYARD_JOB_ID"] == plain.id
    assert env["DOCKYARD_JOB_NAME"] == "env"
    assert json.loads(env["DOCKYARD_PAYLOAD"]) is None
    assert env["DY_TEST_COLOR"] == "blue"
    assert "DY_TEST_EXTRA" not in env


def test_command_override_replaces_the_definitions_command(
    client: Client, start_worker: Any
) -> None:
    start_worker()
    register_process(client, "say", "echo", "from", "definition")

    default = client.submit("say")
    override = client.submit("say", command=["echo", "from", "submit"])

    assert client.wait(default.id, timeout=WAIT).state is JobState.SUCCEEDED
    assert client.wait(override.id, timeout=WAIT).state is JobState.SUCCEEDED
    assert client.logs(default.id) == "from definition\n"
    assert client.logs(override.id) == "from submit\n"


def test_shell_true_runs_a_shell_line(client: Client, start_worker: Any) -> None:
    start_worker()
    client.register(
        {
            "executor": "process",
            "command": 'echo one && echo two | tr a-z A-Z; echo "$DY_TEST_WHO" >&2',
            "shell": True,
            "environment": {"DY_TEST_WHO": "shell sees env"},
        },
        name="shell",
    )

    job = client.wait(client.submit("shell").id, timeout=WAIT)

    assert job.state is JobState.SUCCEEDED
    assert client.logs(job.id) == "one\nTWO\nshell sees env\n"


def test_ref_parameters_come_from_defaults_and_submit_wins(
    client: Client, start_worker: Any
) -> None:
    start_worker()
    register_process(
        client,
        "greet",
        "echo",
        "Ref::greeting",
        "Ref::who",
        "Ref::undefined",
        parameters={"greeting": "hello", "who": "world"},
    )

    defaults = client.submit("greet")
    overridden = client.submit("greet", parameters={"who": "dockyard"})

    assert client.wait(defaults.id, timeout=WAIT).state is JobState.SUCCEEDED
    assert client.wait(overridden.id, timeout=WAIT).state is JobState.SUCCEEDED
    assert client.logs(defaults.id) == "hello world Ref::undefined\n"
    assert client.logs(overridden.id) == "hello dockyard Ref::undefined\n"


# -- process: timeouts, cancels, programs that cannot start ------------------------------------

# The job's main process starts a child that ignores SIGTERM (and writes its pid), then waits.
STUBBORN_CHILD = (
    'sh -c \'trap "" TERM; echo $$ > "$PID_FILE"; exec sleep 60\' & '
    "wait; echo main process still here"
)


def test_a_timeout_kills_a_process_tree_whose_child_ignores_sigterm(
    client: Client, start_worker: Any, tmp_path: Path
) -> None:
    start_worker()
    pid_file = tmp_path / "child.pid"
    register_process(
        client,
        "stubborn",
        "sh",
        "-c",
        STUBBORN_CHILD,
        environment={"PID_FILE": str(pid_file)},
        timeout=1,
        kill_grace=0.5,
        retry={"attempts": 3, "backoff_base": 0},
    )

    # The job would run for 60 s without its timeout: that it ends within WAIT is the timeout.
    job = client.wait(client.submit("stubborn").id, timeout=WAIT)

    assert job.state is JobState.FAILED
    assert job.status_reason is not None and "timeout" in job.status_reason.lower()
    assert job.attempt_count == 1, "a timeout must not be retried"
    (attempt,) = job.attempts
    assert attempt.reason == "Timeout"
    assert attempt.stopped_at is not None
    child = read_pid(pid_file)
    assert child is not None, "the child never started"
    alive = not is_dead(child)
    if alive:
        os.kill(child, signal.SIGKILL)  # do not leave it behind for 60 s
    assert not alive, f"child {child} that ignores SIGTERM outlived the timeout"


def test_a_program_that_exits_leaves_nothing_running(
    client: Client, start_worker: Any, tmp_path: Path
) -> None:
    """As when a container stops: the job ends with its program, and so does what it started."""
    start_worker()
    pid_file = tmp_path / "orphan.pid"
    register_process(
        client,
        "leaves-a-child",
        "sh",
        "-c",
        # The background child keeps the job's stdout open; the program waits for its pid, exits.
        "sh -c 'echo $$ > \"$PID_FILE\"; exec sleep 60' & "
        'while [ ! -s "$PID_FILE" ]; do sleep 0.01; done; echo started',
        environment={"PID_FILE": str(pid_file)},
    )

    submitted = client.submit("leaves-a-child")
    try:
        job = client.wait(submitted.id, timeout=10)
    except TimeoutError:
        pytest.fail("the job was still running 10 s after its program exited")
    finally:
        child = read_pid(pid_file)
        alive = child is not None and not is_dead(child)
        if child is not None and alive:
            os.kill(child, signal.SIGKILL)  # let the worker finish the job and stop

    assert job.state is JobState.SUCCEEDED
    assert job.exit_code == 0
    assert client.logs(job.id) == "started\n"
    assert child is not None and not alive, f"child {child} outlived the job"


def test_cancelling_a_running_job_kills_it_within_2_s(
    client: Client, start_worker: Any, tmp_path: Path
) -> None:
    start_worker()
    pid_file = tmp_path / "sleep.pid"
    register_process(
        client,
        "sleeper",
        "sh",
        "-c",
        'echo $$ > "$PID_FILE"; exec sleep 60',
        environment={"PID_FILE": str(pid_file)},
    )
    job = client.submit("sleeper")
    wait_until(lambda: client.get(job.id).state is JobState.RUNNING, what="the job to run")
    pid = wait_until(lambda: read_pid(pid_file), what="the job to write its pid")
    assert pid is not None
    assert not is_dead(pid)

    started = time.monotonic()
    client.cancel(job.id)
    wait_until(lambda: is_dead(pid), what=f"process {pid} to die")
    wait_until(lambda: client.get(job.id).state is JobState.CANCELLED, what="CANCELLED")
    elapsed = time.monotonic() - started

    assert elapsed < 2, f"the cancel took {elapsed:.2f} s"
    job = client.wait(job.id, timeout=WAIT)
    assert job.state is JobState.CANCELLED
    (attempt,) = job.attempts
    assert attempt.stopped_at is not None
    assert attempt.reason == "Cancelled"


def test_a_program_that_does_not_exist_fails_with_cannot_start(
    client: Client, start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    start_worker()
    register_process(client, "missing", "dockyard-test-no-such-program", "--flag")

    job = client.wait(client.submit("missing").id, timeout=WAIT)

    assert job.state is JobState.FAILED
    (attempt,) = job.attempts
    assert attempt.reason == "CannotStart"
    assert job.status_reason is not None
    assert "dockyard-test-no-such-program" in job.status_reason
    assert "cannot start dockyard-test-no-such-program" in client.logs(job.id)
    # A user's typo is the user's problem, not a worker crash: nothing logged, no traceback.
    assert [record.getMessage() for record in caplog.records] == []
    assert "Traceback" not in caplog.text


# -- python executor, inline ----------------------------------------------------------------------


def register_function(client: Client, name: str, function: str, **fields: Any) -> None:
    client.register(
        {"executor": "python", "function": f"tests.jobfunctions:{function}", **fields}, name=name
    )


def test_inline_function_returns_its_result_and_prints_to_the_log(
    client: Client, start_worker: Any
) -> None:
    start_worker()
    register_function(client, "echo", "echo")
    payload: dict[str, Any] = {"n": 21, "tags": ["a", "b"], "nested": {"x": None}}

    job = client.wait(client.submit("echo", payload=payload).id, timeout=WAIT)

    assert job.state is JobState.SUCCEEDED
    assert job.result == {"received": payload, "ok": True}
    assert f"echo got {payload!r}\n" in client.logs(job.id)


def test_inline_async_function_works(client: Client, start_worker: Any) -> None:
    start_worker()
    register_function(client, "async-echo", "async_echo")

    job = client.wait(client.submit("async-echo", payload=[1, 2, 3]).id, timeout=WAIT)

    assert job.state is JobState.SUCCEEDED
    assert job.result == {"received": [1, 2, 3], "async": True}
    assert "async echo got [1, 2, 3]\n" in client.logs(job.id)


def test_inline_function_that_raises_fails_with_the_exception(
    client: Client, start_worker: Any
) -> None:
    start_worker()
    register_function(client, "boom", "boom")

    job = client.wait(client.submit("boom").id, timeout=WAIT)

    assert job.state is JobState.FAILED
    assert job.status_reason is not None and "boom" in job.status_reason
    (attempt,) = job.attempts
    assert attempt.reason == "ValueError"
    log = client.logs(job.id)
    assert log.startswith("about to fail\n")
    assert "Traceback (most recent call last)" in log
    assert "ValueError: boom" in log


@pytest.mark.parametrize(
    "function",
    ["tests.jobfunctions:no_such_function", "tests.no_such_module:echo"],
    ids=["missing-function", "missing-module"],
)
def test_inline_function_that_cannot_be_imported_fails(
    client: Client, start_worker: Any, function: str
) -> None:
    start_worker()
    client.register({"executor": "python", "function": function}, name="unimportable")

    job = client.wait(client.submit("unimportable").id, timeout=WAIT)

    assert job.state is JobState.FAILED
    assert f"cannot load {function}" in client.logs(job.id)


# -- python executor, isolated in a child process ------------------------------------------------


def test_isolated_function_returns_its_result(client: Client, start_worker: Any) -> None:
    start_worker()
    register_function(client, "iso-echo", "echo", isolation="subprocess")

    job = client.wait(client.submit("iso-echo", payload={"k": "v"}).id, timeout=WAIT)

    assert job.state is JobState.SUCCEEDED
    assert job.result == {"received": {"k": "v"}, "ok": True}
    assert "echo got {'k': 'v'}\n" in client.logs(job.id)


def test_isolated_function_that_raises_fails_with_the_exception_type(
    client: Client, start_worker: Any
) -> None:
    start_worker()
    register_function(client, "iso-boom", "boom", isolation="subprocess")

    job = client.wait(client.submit("iso-boom").id, timeout=WAIT)

    assert job.state is JobState.FAILED
    assert job.status_reason is not None and "boom" in job.status_reason
    (attempt,) = job.attempts
    assert attempt.reason == "ValueError"
    assert "ValueError: boom" in client.logs(job.id)


def test_isolated_function_past_its_timeout_is_killed(client: Client, start_worker: Any) -> None:
    start_worker()
    register_function(client, "iso-sleep", "sleep_long", isolation="subprocess", timeout=1)

    # The function would sleep 60 s: that the job ends within WAIT is the timeout.
    job = client.wait(client.submit("iso-sleep").id, timeout=WAIT)

    assert job.state is JobState.FAILED
    (attempt,) = job.attempts
    assert attempt.reason == "Timeout"


# -- an inline function keeps its lease until it returns (issue 25) ------------------------------


def register_hold(client: Client, name: str, **fields: Any) -> None:
    client.register(
        {"executor": "python", "function": "tests.test_worker_leases:hold", **fields}, name=name
    )


def bodies(trace: Path) -> list[str]:
    return [line.split()[0] for line in trace.read_text().splitlines()] if trace.exists() else []


def test_an_inline_function_past_its_timeout_fails_the_job_but_keeps_the_lease_until_it_returns(
    client: Client, start_worker: Any, tmp_path: Path
) -> None:
    worker = start_worker(concurrency=1, lease_seconds=3)
    register_hold(client, "hold", timeout=1)
    trace, release = tmp_path / "trace", tmp_path / "release"
    job = client.submit("hold", payload={"trace": str(trace), "release": str(release)})

    failed = client.wait(job.id, timeout=WAIT)  # at its timeout, not when the function returns

    assert failed.state is JobState.FAILED
    (attempt,) = failed.attempts
    assert attempt.reason == "Timeout"
    assert bodies(trace) == ["start"]  # the thread runs on...
    # ...so the job keeps its worker's lease and slot: no retry, no other job starts beside it.
    assert failed.worker_id == worker.worker.id
    with pytest.raises(ConflictError, match=f"still stopping on worker {worker.worker.id}"):
        client.retry(job.id)
    other = client.submit("hold", payload={"trace": str(tmp_path / "other"), "release": "/"})
    renewed = wait_until(
        lambda: (lease := client.get(job.id).lease_expires_at) != failed.lease_expires_at and lease,
        timeout=WAIT,
        what="the kept lease to be renewed",
    )
    assert renewed and client.get(other.id).state is JobState.RUNNABLE

    release.touch()
    wait_until(lambda: client.get(job.id).worker_id is None, timeout=WAIT, what="the lease to go")
    assert bodies(trace) == ["start", "end"]
    assert client.get(job.id).state is JobState.FAILED  # the function's own end changes nothing
    assert client.wait(other.id, timeout=WAIT).state is JobState.SUCCEEDED
    assert client.retry(job.id).state is JobState.RUNNABLE


def test_a_cancelled_inline_function_keeps_the_lease_until_it_returns(
    client: Client, start_worker: Any, tmp_path: Path
) -> None:
    worker = start_worker(concurrency=1, lease_seconds=3)
    register_hold(client, "hold")
    trace, release = tmp_path / "trace", tmp_path / "release"
    job = client.submit("hold", payload={"trace": str(trace), "release": str(release)})
    wait_until(lambda: bodies(trace), timeout=WAIT, what="the function to start")

    cancelled = client.cancel(job.id)

    assert cancelled.state is JobState.CANCELLED
    assert cancelled.attempts[0].reason == "Cancelled"
    # The cancel leaves the lease to the worker, which cannot stop the thread.
    assert client.get(job.id).worker_id == worker.worker.id
    with pytest.raises(ConflictError, match="still stopping"):
        client.retry(job.id)
    release.touch()
    wait_until(lambda: client.get(job.id).worker_id is None, timeout=WAIT, what="the lease to go")
    assert bodies(trace) == ["start", "end"]
    done = client.get(job.id)
    assert done.state is JobState.CANCELLED and len(done.attempts) == 1
    assert client.retry(job.id).state is JobState.RUNNABLE


def test_a_cancelled_process_lets_its_lease_go_once_it_is_stopped(
    client: Client, start_worker: Any, tmp_path: Path
) -> None:
    start_worker()
    pid_file = tmp_path / "pid"
    register_process(client, "long", "sh", "-c", f"echo $$ > {pid_file}; exec sleep 60")
    job = client.submit("long")
    pid = wait_until(lambda: read_pid(pid_file), timeout=WAIT, what="the program to start") or 0

    client.cancel(job.id)

    wait_until(lambda: client.get(job.id).worker_id is None, timeout=WAIT, what="the lease to go")
    assert is_dead(pid)
    assert client.retry(job.id).state is JobState.RUNNABLE
