"""The executor registries: every kind the domain knows has an executor, and a new kind is one
registration in each table, after which it parses, is written back, appears in the API's schema
and the CLI's help, and runs.

The toy kind is registered in a fresh interpreter: the tables are process-wide, and the API
schema and the CLI read them when they are imported, so the toy must come first there, and must
not leak into the messages the other tests check ("must be one of process, …").
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from dockyard.domain.definitions import definition_document, parse_definition
from dockyard.domain.outcomes import Outcome, OutcomeKind
from dockyard.domain.records import DefinitionSpec, Job, JobId, Overrides, ProcessSpec
from dockyard.domain.specs.kind import ExecutorKind, FieldShape
from dockyard.domain.specs.process import PROCESS
from dockyard.domain.specs.registry import kind_names, register_kind
from dockyard.domain.states import JobState
from dockyard.errors import ValidationError
from dockyard.executors import HttpExecutor, LambdaExecutor
from dockyard.executors.port import ExecutionContext, Executor
from dockyard.executors.registry import (
    ExecutorOptions,
    build_executors,
    executor_factories,
    register_executor,
)

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class MemoryLog:
    """A log sink that keeps what an attempt wrote."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        pass


def context(spec: DefinitionSpec, log: MemoryLog) -> ExecutionContext:
    job = Job(
        id=JobId("job-1"),
        name="job",
        definition_name="d",
        definition_revision=1,
        state=JobState.RUNNING,
        status_reason=None,
        queue="default",
        group_key=None,
        priority=0,
        idempotency_key=None,
        payload=None,
        overrides=Overrides(),
        parameters={},
        max_attempts=1,
        attempt_count=1,
        attempts_used=1,
        created_at=NOW,
        not_before=NOW,
    )
    return ExecutionContext(job=job, attempt=1, spec=spec, log=log, cancelled=asyncio.Event())


def test_every_kind_the_domain_knows_has_an_executor_in_the_same_order() -> None:
    assert tuple(executor_factories()) == kind_names()
    assert kind_names() == ("process", "python", "docker", "http", "lambda")


def test_built_executors_take_the_options_and_lambda_shares_the_http_pool() -> None:
    options = ExecutorOptions(
        job_environment={"FROM_THE_WORKER": "yes"},
        store_id="store-1",
        http_allowed_hosts=("api.example.com",),
    )
    executors = build_executors(options)
    assert list(executors) == list(kind_names())
    http, call = executors["http"], executors["lambda"]
    assert isinstance(http, HttpExecutor) and isinstance(call, LambdaExecutor)
    assert http.allowed_hosts == ("api.example.com",)
    assert call._http is http  # one pool, which the worker closes once
    assert build_executors(options)["http"] is not http  # each worker gets its own

    log = MemoryLog()
    spec = DefinitionSpec(executor=ProcessSpec(command=('echo "$FROM_THE_WORKER"',), shell=True))
    outcome = asyncio.run(executors["process"].run(context(spec, log)))
    assert (outcome.kind, bytes(log.data)) == (OutcomeKind.SUCCEEDED, b"yes\n")


def test_a_kind_is_registered_once_in_each_table() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_kind(PROCESS)
    with pytest.raises(ValueError, match="already registered"):
        register_executor("process", lambda options, built: build_executors(options)["process"])
    assert kind_names() == tuple(executor_factories())


# -- a toy kind, end to end ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ToySpec:
    """Say ``greeting`` in the log: the record of a kind that lives outside the domain package."""

    kind: Literal["toy"] = "toy"
    greeting: str


def _parse_toy(doc: Mapping[str, Any]) -> ToySpec:
    greeting = doc.get("greeting")
    if not isinstance(greeting, str) or not greeting:
        raise ValidationError("greeting", "must be a non-empty string")
    return ToySpec(greeting=greeting)


def _toy_document(spec: ToySpec) -> dict[str, Any]:
    return {"greeting": spec.greeting}


TOY = ExecutorKind(
    name="toy",
    record=ToySpec,
    fields={"greeting": FieldShape(accepts=str)},
    parse=_parse_toy,
    document=_toy_document,
)


class ToyExecutor:
    def __init__(self, options: ExecutorOptions) -> None:
        self._store = options.store_id

    async def run(self, context: ExecutionContext) -> Outcome:
        spec = context.spec.executor
        assert isinstance(spec, ToySpec)
        context.log.write(f"{spec.greeting} from {self._store}\n".encode())
        return Outcome.succeeded(result=spec.greeting)


def _toy_factory(options: ExecutorOptions, built: Mapping[str, Executor]) -> Executor:
    return ToyExecutor(options)


def toy_kind_everywhere() -> None:
    """Register the toy kind, then use it through every layer. Run in a fresh interpreter."""
    register_kind(TOY)
    register_executor("toy", _toy_factory)

    spec = parse_definition({"executor": "toy", "greeting": "hello", "queue": "toys"})
    assert spec.executor == ToySpec(greeting="hello"), spec
    document = definition_document("greet", spec)
    assert document["greeting"] == "hello" and parse_definition(document) == spec, document
    for bad, expected in (
        ({"executor": "toy"}, ("greeting", "must be a non-empty string")),
        (
            {"executor": "toy", "greeting": "hi", "command": ["x"]},
            ("command", "is not a field of a toy definition"),
        ),
        (
            {"executor": "kubernetes"},
            ("executor", "must be one of process, python, docker, http, lambda, toy"),
        ),
    ):
        try:
            parse_definition(bad)
        except ValidationError as error:
            assert (error.field, error.rule) == expected, error
        else:
            raise AssertionError(f"{bad} parsed")

    from dockyard.api.schemas import DefinitionIn, DefinitionOut

    body = DefinitionIn.model_validate({"name": "greet", "executor": "toy", "greeting": "hello"})
    assert body.model_dump(exclude_none=True, by_alias=True) == {
        "name": "greet",
        "executor": "toy",
        "greeting": "hello",
    }
    assert "greeting" in DefinitionOut.model_json_schema()["properties"]

    from click.testing import CliRunner

    from dockyard.cli.definitions import definitions

    help_text = CliRunner().invoke(definitions, ["register", "--help"]).output
    assert "[process|python|docker|http|lambda|toy]" in help_text, help_text
    assert "  toy      greeting" in help_text, help_text

    log = MemoryLog()
    executors = build_executors(ExecutorOptions(store_id="store-1"))
    outcome = asyncio.run(executors["toy"].run(context(spec, log)))
    assert outcome == Outcome.succeeded(result="hello"), outcome
    assert bytes(log.data) == b"hello from store-1\n", log.data


def test_a_toy_kind_registered_once_in_each_table_works_everywhere() -> None:
    script = "from tests.test_executor_registry import toy_kind_everywhere; toy_kind_everywhere()"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
