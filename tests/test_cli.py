"""The ``dockyard`` command as users run it: a real process, a real store, real workers."""

from __future__ import annotations

import importlib
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.settings import Settings
from tests.conftest import dockyard_environ
from tests.helpers.commands import run_dockyard

REPO = Path(__file__).resolve().parent.parent


def run(
    settings: Settings, *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run_dockyard(dockyard_environ(settings), *args, input=input, timeout=timeout)


def ok(settings: Settings, *args: str, input: str | None = None) -> str:
    result = run(settings, *args, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_register_from_flags_and_from_a_file(settings: Settings, tmp_path: Path) -> None:
    out = ok(
        settings, "definitions", "register", "nightly", "--executor", "process", "--env", "MODE=full",
        "--timeout", "60", "--attempts", "3", "--backoff-base", "0", "--queue", "batch",
        "--log-max-bytes", "200000", "--on-exit", "EXIT:exit_code=1", "--", "update-all", "--verbose",
    )  # fmt: skip
    assert out == "registered nightly:1\n"
    described = json.loads(ok(settings, "definitions", "describe", "nightly:1"))
    assert described["command"] == ["update-all", "--verbose"]
    assert described["environment"] == {"MODE": "full"}
    assert described["retry"]["attempts"] == 3
    assert described["retry"]["evaluate_on_exit"] == [{"action": "EXIT", "on_exit_code": "1"}]
    assert (described["queue"], described["log_max_bytes"], described["timeout"]) == (
        "batch",
        200000,
        60,
    )

    file = tmp_path / "nightly.yaml"
    file.write_text(
        "executor: process\ncommand: [update-all]\nresources: {vcpus: 2, memory_mib: 16384}\n"
    )
    assert (
        ok(settings, "definitions", "register", "nightly", "-f", str(file))
        == "registered nightly:2\n"
    )
    revisions = json.loads(ok(settings, "definitions", "describe", "nightly", "-o", "json"))
    assert [(r["revision"], r["status"]) for r in revisions] == [(1, "ACTIVE"), (2, "ACTIVE")]
    assert revisions[1]["resources"] == {"vcpus": 2, "memory_mib": 16384}
    assert "nightly  2" in ok(settings, "definitions", "list")
    assert ok(settings, "definitions", "deregister", "nightly:2") == "deregistered nightly:2\n"
    assert json.loads(ok(settings, "-o", "json", "definitions", "list"))[0]["status"] == "INACTIVE"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("definitions", "register", "x", "--executor", "process"),
            "command: must be a non-empty list",
        ),
        (
            ("definitions", "register", "x", "--", ""),
            "command: the program must not be an empty string",
        ),
        (("definitions", "register", "bad name!", "--", "true"), "name: must be 1-128 letters"),
        (
            ("definitions", "register", "x", "--attempts", "11", "--", "true"),
            "retry.attempts: must be an integer from 1 to 10",
        ),
        (
            ("definitions", "register", "x", "--timeout", "-5", "--", "true"),
            "timeout: must be greater than 0",
        ),
        (
            ("definitions", "register", "x", "--on-exit", "EXIT:exit_code=1*1", "--", "true"),
            "on_exit_code: must be a glob",
        ),
        (("definitions", "register", "x", "--on-exit", "whenever", "--", "true"), "on-exit:"),
        (
            ("definitions", "register", "x", "--env", "NOEQUALS", "--", "true"),
            "env: 'NOEQUALS' must look like NAME=VALUE",
        ),
        (("definitions", "register", "x", "-f", "/nonexistent.yaml"), "file: cannot read"),
        (("definitions", "describe", "ghost"), "definition not found: ghost"),
        (
            ("definitions", "describe", "ghost:0"),
            "revision in 'ghost:0' must be a positive integer",
        ),
        (("submit", "ghost"), "definition not found: ghost"),
        (("jobs", "describe", "123"), "job not found: 123"),
        (("jobs", "cancel", "123"), "job not found: 123"),
        (("--url", "mysql://x", "jobs", "list"), "url: unsupported store URL"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    settings: Settings, args: tuple[str, ...], message: str
) -> None:
    result = run(settings, *args)
    assert result.returncode == 2, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert json.loads(ok(settings, "-o", "json", "definitions", "list")) == []


def test_a_bad_file_and_a_bad_payload_write_nothing(settings: Settings, tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("executor: process\ncommand: [a\n")
    result = run(settings, "definitions", "register", "x", "-f", str(file))
    assert (result.returncode, "Traceback" in result.stderr) == (2, False)
    assert "is not valid YAML or JSON" in result.stderr
    ok(settings, "definitions", "register", "x", "--", "true")
    result = run(settings, "submit", "x", "--payload", "{oops")
    assert result.returncode == 2 and "payload: must be valid JSON" in result.stderr
    assert json.loads(ok(settings, "jobs", "list", "-o", "json")) == []


def test_submit_wait_exits_with_the_job_exit_code_and_jobs_commands(
    settings: Settings, spawn_worker
) -> None:
    ok(
        settings,
        "definitions",
        "register",
        "exit",
        "--",
        "sh",
        "-c",
        'echo "out $1"; exit "$1"',
        "sh",
        "0",
    )
    spawn_worker("--concurrency", "2")
    failed = run(
        settings,
        "submit",
        "exit",
        "--wait",
        "--",
        "sh",
        "-c",
        'echo "out $1"; exit "$1"',
        "sh",
        "7",
    )
    assert failed.returncode == 7
    assert "FAILED: Exited with code 7" in failed.stdout
    followed = run(settings, "submit", "exit", "--follow", "--payload", '{"k": 1}')
    assert (followed.returncode, followed.stdout, followed.stderr) == (0, "out 0\n", "")

    jobs = json.loads(ok(settings, "jobs", "list", "-o", "json"))
    assert [job["state"] for job in jobs] == ["SUCCEEDED", "FAILED"]
    newest = jobs[0]
    for field in ("id", "definition", "state", "status_reason", "queue", "group", "priority", "created_at",
                  "started_at", "stopped_at", "result", "attempts"):  # fmt: skip
        assert field in newest
    assert newest["definition"] == "exit:1"
    assert newest["payload"] == {"k": 1}
    attempt = newest["attempts"][0]
    assert (attempt["number"], attempt["exit_code"]) == (1, 0)
    for field in ("reason", "started_at", "stopped_at"):
        assert field in attempt
    failed_id = jobs[1]["id"]
    assert ok(settings, "jobs", "logs", failed_id) == "out 7\n"
    assert (
        json.loads(ok(settings, "jobs", "list", "--state", "FAILED", "-o", "json"))[0]["id"]
        == failed_id
    )
    assert failed_id in ok(settings, "jobs", "describe", failed_id)
    assert ok(settings, "jobs", "retry", failed_id) == f"{failed_id} RUNNABLE\n"
    result = run(settings, "jobs", "retry", jobs[0]["id"])
    assert result.returncode == 2 and "only FAILED or CANCELLED" in result.stderr
    followed = run(settings, "submit", "exit", "--follow", "--", "sh", "-c", "echo out; exit 3")
    assert (followed.returncode, followed.stdout) == (3, "out\n")
    assert re.fullmatch(r"dockyard: \S+ FAILED: Exited with code 3\n", followed.stderr)  # why


def test_db_upgrade_is_idempotent(settings: Settings, backend: str) -> None:
    migrator = importlib.import_module(f"dockyard.storage.{backend}.migrator")
    applied = ", ".join(name for _, name, _ in migrator.available_migrations())
    assert ok(settings, "db", "upgrade") == f"applied: {applied}\n"
    assert ok(settings, "db", "upgrade") == "the schema is up to date\n"


def test_up_serves_jobs_submitted_from_another_shell_and_stops_on_ctrl_c(
    settings: Settings,
) -> None:
    env = dockyard_environ(settings)
    command = [sys.executable, "-m", "dockyard", "up"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO) as up:
        try:
            assert up.stdout is not None
            assert up.stdout.readline().startswith("Dockyard is up")
            ok(settings, "definitions", "register", "hello", "--", "echo", "hello")
            result = run(settings, "submit", "hello", "--follow")
            assert (result.returncode, result.stdout) == (0, "hello\n")
        finally:
            up.send_signal(signal.SIGINT)
            assert up.wait(30) == 0


def test_http_and_lambda_definitions_register_from_flags(
    settings: Settings, tmp_path: Path
) -> None:
    """``--executor`` offers every kind; http and lambda have flags for their essential fields,
    the help says where the others come from, and a missing one is the usual one-line error."""
    help_text = ok(settings, "definitions", "register", "--help")
    assert "[process|python|docker|http|lambda]" in help_text
    for flag in ("--url", "--method", "--header", "--function", "--region", "-f FILE"):
        assert flag in help_text

    out = ok(
        settings, "definitions", "register", "hook", "--executor", "http",
        "--url", "https://hooks.example.com/${payload.id}", "--method", "put",
        "--header", "X-Team=ops", "--header", "X-Mode=full",
    )  # fmt: skip
    assert out == "registered hook:1\n"
    hook = json.loads(ok(settings, "definitions", "describe", "hook:1"))
    assert (hook["executor"], hook["url"], hook["method"]) == (
        "http",
        "https://hooks.example.com/${payload.id}",
        "PUT",
    )
    assert hook["headers"] == {"X-Team": "ops", "X-Mode": "full"}

    # The fields without a flag come from a file; the flags override and merge into it.
    file = tmp_path / "hook.yaml"
    file.write_text(
        'executor: http\nurl: https://old.example.com\nheaders: {A: "1"}\njson: {k: v}\n'
    )
    ok(
        settings, "definitions", "register", "hook", "-f", str(file),
        "--url", "https://new.example.com", "--header", "B=2",
    )  # fmt: skip
    hook = json.loads(ok(settings, "definitions", "describe", "hook:2"))
    assert (hook["url"], hook["headers"], hook["json"]) == (
        "https://new.example.com",
        {"A": "1", "B": "2"},
        {"k": "v"},
    )

    ok(
        settings, "definitions", "register", "resize", "--executor", "lambda",
        "--function", "resize-image", "--region", "eu-west-1",
    )  # fmt: skip
    resize = json.loads(ok(settings, "definitions", "describe", "resize:1"))
    assert (resize["executor"], resize["function"], resize["region"]) == (
        "lambda",
        "resize-image",
        "eu-west-1",
    )
    assert resize["signing"]["kind"] == "aws-sigv4"

    for args, message in (
        (("--executor", "http"), "url: must be an http:// or https:// URL"),
        (("--executor", "lambda", "--function", "f"), "region: must be lower-case letters"),
        (("--executor", "lambda", "--region", "eu-west-1"), "function: must be a Lambda function"),
    ):
        result = run(settings, "definitions", "register", "broken", *args)
        assert result.returncode == 2, result
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
