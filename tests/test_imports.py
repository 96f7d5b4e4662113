"""ECS task definitions and AWS Batch job definitions registered as they are; rollback.

The documents are in the shape ``aws ecs describe-task-definition`` and ``aws batch
describe-job-definitions`` print (fields from the AWS API references).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockyard import ConflictError, ValidationError
from dockyard.client import Client
from dockyard.domain.definitions import parse_definition
from dockyard.domain.imports import definition_from_batch, definition_from_ecs
from dockyard.domain.records import DockerSpec
from dockyard.settings import Settings
from tests.test_cli import ok, run

ECS_IMAGE = "registry.local:5000/jobs/tools:sha1"
ECS_TASK: dict[str, Any] = {
    "taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/update-jobs:7",
        "family": "update-jobs",
        "revision": 7,
        "networkMode": "awsvpc",
        "cpu": "1 vCPU",
        "memory": "2 GB",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [
            {
                "name": "app",
                "image": ECS_IMAGE,
                "essential": True,
                "entryPoint": ["/bin/run"],
                "command": ["update-cards"],
                "environment": [{"name": "STAGE", "value": "prod"}],
                "workingDirectory": "/srv",
                "portMappings": [{"containerPort": 8080}],
                "logConfiguration": {"logDriver": "awslogs"},
            },
            {"name": "sidecar", "image": "envoy:1", "essential": False},
        ],
    }
}

BATCH_JOB = {
    "jobDefinitions": [
        {
            "jobDefinitionName": "render",
            "jobDefinitionArn": "arn:aws:batch:eu-west-1:123456789012:job-definition/render:3",
            "revision": 3,
            "status": "ACTIVE",
            "type": "container",
            "parameters": {"size": "small"},
            "retryStrategy": {
                "attempts": 3,
                "evaluateOnExit": [
                    {"onStatusReason": "Host EC2*", "action": "RETRY"},
                    {"onExitCode": "1", "action": "exit"},
                ],
            },
            "timeout": {"attemptDurationSeconds": 600},
            "propagateTags": True,
            "containerProperties": {
                "image": "registry.local:5000/render:2",
                "command": ["render", "--size", "Ref::size"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "2"},
                    {"type": "MEMORY", "value": "16384"},
                ],
                "environment": [{"name": "MODE", "value": "fast"}],
                "readonlyRootFilesystem": True,
                "jobRoleArn": "arn:aws:iam::123456789012:role/render",
            },
        }
    ]
}


def test_an_ecs_task_definition_becomes_a_docker_definition() -> None:
    document, left_out = definition_from_ecs(ECS_TASK)
    spec = parse_definition(document)
    assert document["name"] == "update-jobs"
    assert isinstance(spec.executor, DockerSpec)
    assert spec.executor.image == "registry.local:5000/jobs/tools:sha1"
    assert spec.executor.entrypoint == ("/bin/run",)
    assert spec.executor.command == ("update-cards",)
    assert spec.executor.working_dir == "/srv"
    assert dict(spec.environment) == {"STAGE": "prod"}
    assert (spec.resources.vcpus, spec.resources.memory_mib) == (1.0, 2048)  # task level
    assert "containerDefinitions[0].portMappings" in left_out
    assert "containerDefinitions[0].logConfiguration" in left_out
    assert "containerDefinitions[1] (sidecar)" in left_out
    assert "requiresCompatibilities" in left_out
    assert any(item.startswith("networkMode (awsvpc") for item in left_out)


def test_container_cpu_units_and_memory_win_over_the_task_level() -> None:
    task = json.loads(json.dumps(ECS_TASK))
    container = task["taskDefinition"]["containerDefinitions"][0]
    container.update(cpu=512, memory=300)
    document, _ = definition_from_ecs(task)
    assert document["resources"] == {"vcpus": 0.5, "memory_mib": 300}


def test_a_batch_job_definition_keeps_retries_timeout_and_parameters() -> None:
    document, left_out = definition_from_batch(BATCH_JOB)
    spec = parse_definition(document)
    assert document["name"] == "render"
    assert isinstance(spec.executor, DockerSpec)
    assert spec.executor.command == ("render", "--size", "Ref::size")
    assert spec.executor.read_only
    assert (spec.resources.vcpus, spec.resources.memory_mib) == (2.0, 16384)
    assert spec.timeout_seconds == 600
    assert dict(spec.parameters) == {"size": "small"}
    assert spec.retry.attempts == 3
    rules = [
        (r.action.value, r.on_status_reason, r.on_exit_code) for r in spec.retry.evaluate_on_exit
    ]
    assert rules == [("RETRY", "Host EC2*", None), ("EXIT", None, "1")]
    assert left_out == ["containerProperties.jobRoleArn", "propagateTags"]


@pytest.mark.parametrize(
    ("convert", "document", "field"),
    [
        (definition_from_ecs, [], "file"),
        (definition_from_ecs, {"family": "x"}, "containerDefinitions"),
        (definition_from_ecs, {"containerDefinitions": [{"image": "a"}]}, "family"),
        (
            definition_from_ecs,
            {"family": "x", "containerDefinitions": [{}]},
            "containerDefinitions[0].image",
        ),
        (definition_from_batch, {"jobDefinitionName": "x"}, "containerProperties"),
        (definition_from_batch, {"jobDefinitionName": "x", "type": "multinode"}, "type"),
        (definition_from_batch, {"jobDefinitions": [{}, {}]}, "jobDefinitions"),
        (
            definition_from_batch,
            {"jobDefinitionName": "x", "containerProperties": {"image": "a", "command": "ls"}},
            "containerProperties.command",
        ),
    ],
)
def test_files_that_are_not_such_definitions_are_refused(
    convert: Any, document: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        convert(document)
    assert caught.value.field == field


def test_register_from_files_warns_about_what_it_left_out(
    settings: Settings, tmp_path: Path
) -> None:
    ecs = tmp_path / "taskdef.json"
    ecs.write_text(json.dumps(ECS_TASK))
    result = run(settings, "definitions", "register", "--from-ecs", str(ecs))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "registered update-jobs:1"
    assert result.stderr.startswith("warning: not imported (Dockyard does not support them):")
    assert "containerDefinitions[0].portMappings" in result.stderr
    described = json.loads(ok(settings, "-o", "json", "definitions", "describe", "update-jobs:1"))
    assert (described["executor"], described["image"]) == ("docker", ECS_IMAGE)

    batch = tmp_path / "jobdef.json"
    batch.write_text(json.dumps(BATCH_JOB))
    assert ok(settings, "definitions", "register", "--from-batch", str(batch)).strip() == (
        "registered render:1"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"family": "x"}))
    refused = run(settings, "definitions", "register", "--from-ecs", str(bad))
    assert refused.returncode != 0 and "containerDefinitions" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_rollback_registers_the_previous_revision_again(client: Client) -> None:
    image = "registry.local:5000/jobs/tools"
    client.register({"executor": "docker", "image": f"{image}:sha1"}, name="tools")
    with pytest.raises(ConflictError):
        client.rollback("tools")  # nothing before revision 1
    client.register({"executor": "docker", "image": f"{image}:sha2"}, name="tools")
    rolled = client.rollback("tools")
    assert rolled.revision == 3
    assert isinstance(rolled.spec.executor, DockerSpec)
    assert rolled.spec.executor.image == f"{image}:sha1"
    latest = client.definition("tools")
    assert latest.revision == 3 and latest.spec == client.definition("tools:1").spec
