"""DESIGN.md story 2 end to end, with real components: a Docker Distribution registry (Debian's
``docker-registry``) configured to notify Dockyard, ``docker push`` to it from the local engine,
and ``dockyard up`` (the API, a worker, the scheduler and the rules engine in one process)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from dockyard import Definition, HttpClient, JobState
from dockyard.domain.definitions import definition_document
from dockyard.executors.http import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from dockyard.settings import Settings
from tests.conftest import HttpServer, ServerProcess, busybox_tar, wait_until


def push(docker_client: Any, repository: str, tag: str, says: str) -> str:
    """Build an image whose ``app`` command prints ``says``, push it, forget it; its digest."""
    scripts = {"bin/app": f"#!/bin/sh\necho {says}\n"}
    docker_client.api.import_image_from_data(busybox_tar(scripts), repository=repository, tag=tag)
    digest = None
    for line in docker_client.images.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in line, line
        digest = line.get("aux", {}).get("Digest", digest)
    docker_client.images.remove(f"{repository}:{tag}")  # the worker must pull it
    assert digest is not None
    return str(digest)


def test_story_2_a_push_makes_a_revision_and_a_failed_job_raises_the_alarm(
    settings: Settings,
    tmp_path: Path,
    docker_client: Any,
    notifying_registry: Any,
    http_server: HttpServer,
) -> None:
    dockyard = ServerProcess(
        settings,
        tmp_path / "up.log",
        command=("up", "--concurrency", "2"),
        # The owner lets rules name ALARM_SECRET as a webhook's signing secret.
        environ={"ALARM_SECRET": "alarm-secret", "DOCKYARD_CREDENTIAL_ENV": "ALARM_SECRET"},
    )
    try:
        with HttpClient(dockyard.url, token=dockyard.admin_token) as client:
            registry = notifying_registry(
                f"{dockyard.url}/v1/webhooks/registry", dockyard.admin_token
            )
            # Every push is on the bus while some rule is enabled: watch them with one.
            client.create_rule(
                {"event_pattern": {"source": ["dockyard.registry"]}}, name="watch-pushes"
            )

            def pushed(repository: str, tag: str) -> list[dict[str, Any]]:
                return [
                    event
                    for event in client.events(source="dockyard.registry")
                    if (event["detail"]["repository"], event["detail"]["tag"]) == (repository, tag)
                ]

            push(docker_client, f"{registry}/team/app", "v1", "app v1")
            push(docker_client, f"{registry}/team/other", "v1", "other v1")
            wait_until(lambda: pushed("team/app", "v1") and pushed("team/other", "v1"))

            app_v1 = client.register(
                {
                    "executor": "docker",
                    "image": f"{registry}/team/app:v1",
                    "command": ["app"],
                    "environment": {"MODE": "batch"},
                    "resources": {"memory_mib": 64},
                    "timeout": 60,
                    "retry": {"attempts": 1},
                    "description": "the app",
                },
                name="app",
            )
            client.register(
                {"executor": "docker", "image": f"{registry}/team/other:v1"}, name="other"
            )
            client.create_rule(
                {
                    "description": "a new image of team/app: a new revision of app",
                    "event_pattern": {
                        "source": ["dockyard.registry"],
                        "detail-type": ["Image Pushed"],
                        "detail": {"repository": ["team/app"]},
                    },
                    "targets": [{"id": "bump", "kind": "register-revision", "definition": "app"}],
                },
                name="deploy-app",
            )
            client.create_rule(
                {
                    "event_pattern": {
                        "source": ["dockyard.job"],
                        "detail": {"status": ["FAILED"], "jobDefinition": [{"prefix": "app:"}]},
                    },
                    "targets": [
                        {
                            "id": "page",
                            "kind": "webhook",
                            "url": f"{http_server.url}/alarm",
                            "secret_env": "ALARM_SECRET",
                        }
                    ],
                },
                name="app-alarm",
            )

            # A push to another repository changes nothing (its event is routed first).
            push(docker_client, f"{registry}/team/other", "v2", "other v2")
            wait_until(lambda: pushed("team/other", "v2"), what="the other push on the bus")
            pushed_at = time.monotonic()
            digest = push(docker_client, f"{registry}/team/app", "v2", "app v2")

            def revision_2() -> Definition | None:
                definition = client.definition("app")
                return definition if definition.revision == 2 else None

            latest = wait_until(revision_2, timeout=5, what="revision 2 of app within 5 s")
            assert latest is not None
            print(f"push started to revision: {time.monotonic() - pushed_at:.2f} s")
            assert definition_document("app", latest.spec) == {
                **definition_document("app", app_v1.spec),
                "image": f"{registry}/team/app:v2@{digest}",
            }
            assert [d.revision for d in client.revisions("other")] == [1]
            (bump,) = client.rule_history("deploy-app")
            assert bump.state.value == "DELIVERED" and bump.result == "definition app:2"

            # The next job runs the new image.
            job = client.wait(client.submit("app").id, timeout=120)
            assert job.state is JobState.SUCCEEDED, client.logs(job.id)
            assert "app v2" in client.logs(job.id)
            assert job.attempts[-1].image == f"{registry}/team/app:v2@{digest}"

            # A failed job of app raises the alarm: the webhook gets the signed event.
            failed = client.submit("app", command=["sh", "-c", "exit 3"])
            assert client.wait(failed.id, timeout=120).state is JobState.FAILED
            wait_until(lambda: http_server.received, what="the alarm")
            (alarm,) = http_server.received
            assert verify_signature(
                b"alarm-secret",
                alarm.headers[TIMESTAMP_HEADER],
                alarm.body,
                alarm.headers[SIGNATURE_HEADER],
            )
            event = json.loads(alarm.body)
            assert (event["source"], event["detail-type"]) == ("dockyard.job", "Job State Change")
            assert event["detail"]["jobId"] == failed.id
            assert (event["detail"]["status"], event["detail"]["exitCode"]) == ("FAILED", 3)
    finally:
        dockyard.close()
