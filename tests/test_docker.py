"""The docker executor on a real Docker engine, with an image built here from busybox-static.

Every job runs through a real worker; containers are checked on the engine itself.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dockyard import JobState, ValidationError
from dockyard.app import WorkerConfig
from dockyard.client import Client
from dockyard.domain.definitions import definition_document, parse_definition
from dockyard.domain.imports import definition_from_batch, definition_from_ecs
from dockyard.domain.records import DockerSpec
from dockyard.executors.docker import LABEL_JOB
from dockyard.executors.reaper import Reaper
from dockyard.settings import Settings
from tests.conftest import REGISTRY_AUTH, WorkerThread, busybox_tar, wait_until
from tests.test_cli import ok, run
from tests.test_reliability import reapers_of


def register_docker(client: Client, name: str, image: str, *command: str, **fields: Any) -> None:
    document: dict[str, Any] = {"executor": "docker", "image": image, **fields}
    if command:
        document["command"] = list(command)
    client.register(document, name=name)


def containers_of(docker_client: Any, job_id: str) -> list[Any]:
    # sparse: the list as the engine gave it, without inspecting each (one may go meanwhile)
    return list(
        docker_client.containers.list(
            all=True, sparse=True, filters={"label": f"{LABEL_JOB}={job_id}"}
        )
    )


@pytest.fixture
def docker_worker(start_worker: Any, docker_client: Any, busybox_image: str) -> Any:
    return start_worker(concurrency=4)


def test_a_container_runs_its_command_logs_its_output_and_is_removed(
    client: Client, docker_client: Any, busybox_image: str, docker_worker: Any
) -> None:
    register_docker(
        client,
        "hello",
        busybox_image,
        "sh",
        "-c",
        'echo "out $GREETING $DOCKYARD_PAYLOAD"; echo err >&2; exit 0',
        environment={"GREETING": "hello"},
    )
    job = client.wait(client.submit("hello", payload={"n": 1}).id, timeout=60)
    assert job.state is JobState.SUCCEEDED and job.exit_code == 0
    log = client.logs(job.id)
    assert 'out hello {"n": 1}' in log and "err" in log
    assert "dockyard: image local/busybox:1 (sha256:" in log  # what actually ran…
    image = job.attempts[-1].image  # …and on the attempt
    assert image is not None and image.startswith("local/busybox:1@sha256:")
    assert containers_of(docker_client, job.id) == []


def test_exit_codes_and_command_overrides(
    client: Client, busybox_image: str, docker_worker: Any
) -> None:
    register_docker(client, "exits", busybox_image, "sh", "-c", "exit 3")
    failed = client.wait(client.submit("exits").id, timeout=60)
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 3)
    assert failed.attempts[-1].reason == "NonZeroExit"
    fixed = client.wait(client.submit("exits", command=["true"]).id, timeout=60)
    assert fixed.state is JobState.SUCCEEDED


def test_the_memory_limit_is_enforced_and_reported_as_out_of_memory(
    client: Client, busybox_image: str, docker_worker: Any
) -> None:
    register_docker(
        client,
        "hungry",
        busybox_image,
        "sh",
        "-c",
        "x=xxxxxxxxxxxxxxxx; while true; do x=$x$x; done",
        resources={"memory_mib": 32},
    )
    job = client.wait(client.submit("hungry").id, timeout=120)
    assert job.state is JobState.FAILED
    assert job.attempts[-1].reason == "OutOfMemory"
    assert job.status_reason is not None and "memory" in job.status_reason.lower()


def test_timeout_and_cancel_stop_the_container(
    client: Client, docker_client: Any, busybox_image: str, docker_worker: Any
) -> None:
    register_docker(client, "slow", busybox_image, "sleep", "600", timeout=1, kill_grace=1)
    timed_out = client.wait(client.submit("slow").id, timeout=60)
    assert timed_out.state is JobState.FAILED
    assert timed_out.attempts[-1].reason == "Timeout"
    assert containers_of(docker_client, timed_out.id) == []

    register_docker(client, "long", busybox_image, "sleep", "600")
    job = client.submit("long")
    wait_until(
        lambda: [c for c in containers_of(docker_client, job.id) if c.status == "running"],
        what="the container to run",
    )
    client.cancel(job.id)
    cancelled = client.wait(job.id, timeout=60)
    assert cancelled.state is JobState.CANCELLED
    wait_until(lambda: not containers_of(docker_client, job.id), what="the container to go")


def test_output_reaches_the_log_while_the_container_runs(
    client: Client, busybox_image: str, docker_worker: Any
) -> None:
    register_docker(client, "talk", busybox_image, "sh", "-c", "echo first; sleep 600")
    job = client.submit("talk")
    wait_until(lambda: "first" in client.logs(job.id), what="the first line in the log")
    assert client.get(job.id).state is JobState.RUNNING
    client.cancel(job.id)
    assert client.wait(job.id, timeout=60).state is JobState.CANCELLED


def test_non_root_is_enforced_and_a_user_can_be_chosen(
    client: Client, busybox_image: str, docker_worker: Any
) -> None:
    register_docker(client, "rooted", busybox_image, "id", "-u", non_root=True)
    refused = client.wait(client.submit("rooted").id, timeout=60)
    assert refused.state is JobState.FAILED
    assert refused.attempts[-1].reason == "NonRootRequired"
    register_docker(client, "nobody", busybox_image, "id", "-u", non_root=True, user="1000")
    ran = client.wait(client.submit("nobody").id, timeout=60)
    assert ran.state is JobState.SUCCEEDED and client.logs(ran.id).endswith("1000\n")


def test_a_missing_image_with_pull_never_fails_clearly(
    client: Client, docker_client: Any, docker_worker: Any
) -> None:
    register_docker(client, "ghost", "local/not-there:1", "true", pull="never")
    job = client.wait(client.submit("ghost").id, timeout=60)
    assert job.state is JobState.FAILED
    assert job.attempts[-1].reason == "CannotPullImage"
    assert job.status_reason is not None and "local/not-there:1" in job.status_reason


def test_containers_left_by_a_killed_worker_and_its_stopped_reaper_are_removed_by_the_next(
    client: Client, docker_client: Any, busybox_image: str, spawn_worker: Any
) -> None:
    # The backstop for when the reaper cannot act (it died with its worker, or was frozen):
    # the next worker on the engine sweeps at its start what no live worker holds.
    register_docker(client, "stays", busybox_image, "sleep", "600")
    first = spawn_worker("--concurrency", "1")
    job = client.submit("stays")
    wait_until(
        lambda: [c for c in containers_of(docker_client, job.id) if c.status == "running"],
        what="the container to run",
    )
    (reaper,) = wait_until(lambda: reapers_of(first.pid), timeout=10, what="the reaper")
    os.kill(reaper, signal.SIGSTOP)  # it cannot act; stopped, not dead, so it is not replaced
    try:
        first.kill()  # SIGKILL: it cannot stop its container
        assert [c.status for c in containers_of(docker_client, job.id)] == ["running"]
        spawn_worker("--concurrency", "1")
        wait_until(lambda: not containers_of(docker_client, job.id), what="the leftover to go")
    finally:
        os.kill(reaper, signal.SIGKILL)


def test_the_reaper_alone_removes_a_sigkilled_workers_container_at_once(
    client: Client, docker_client: Any, busybox_image: str, spawn_worker: Any
) -> None:
    # No other worker, and a lease far longer than the test: only the reaper can remove it.
    register_docker(client, "stays", busybox_image, "sleep", "600")
    worker = spawn_worker("--concurrency", "1", "--lease", "600")
    job = client.submit("stays")
    wait_until(
        lambda: [c for c in containers_of(docker_client, job.id) if c.status == "running"],
        what="the container to run",
    )
    wait_until(lambda: client.get(job.id).state is JobState.RUNNING, what="the job to run")

    worker.kill()

    wait_until(lambda: not containers_of(docker_client, job.id), timeout=10, what="its removal")
    wait_until(lambda: "removed 1 container(s)" in worker.output(), timeout=10, what="its report")


def test_the_reaper_removes_a_container_whose_lease_runs_out_unrenewed(
    docker_client: Any, busybox_image: str
) -> None:
    # The watchdog, for a worker that is frozen: a lease renewed keeps the container, one left
    # to run out removes it, with no worker dying.
    reaper = Reaper()
    name = f"dockyard-test-{uuid.uuid4().hex[:8]}"
    lease = 3.0  # longer than starting a container takes on a loaded machine
    try:
        reaper.lease("job/1", lease)
        reaper.track_container(name, "unix:///var/run/docker.sock", "job/1")
        container = docker_client.containers.run(
            busybox_image, ["sleep", "600"], name=name, labels={LABEL_JOB: name}, detach=True
        )
        for _ in range(45):  # 4.5 s of renewals (past the first lease), every 0.1 s
            reaper.lease("job/1", lease)
            time.sleep(0.1)
        container.reload()
        assert container.status == "running"

        wait_until(
            lambda: not docker_client.containers.list(all=True, filters={"name": name}),
            timeout=15,
            what="the container to be removed",
        )
    finally:
        process = reaper._proc
        reaper._abandon()  # end of file: the reaper exits
        if process is not None:
            process.wait(15)
        for left in docker_client.containers.list(all=True, filters={"name": name}):
            left.remove(force=True)


def test_eight_long_containers_are_all_stopped_when_cancelled(
    client: Client, docker_client: Any, busybox_image: str, start_worker: Any
) -> None:
    # More running containers than the event loop's default thread pool has threads (6 on two
    # cores): waiting on them must not leave no thread for the cancel's ``docker stop``.
    register_docker(client, "many", busybox_image, "sleep", "600")
    start_worker(concurrency=8)
    ids = [client.submit("many").id for _ in range(8)]
    wait_until(
        lambda: (
            all(c.status == "running" for i in ids for c in containers_of(docker_client, i))
            and all(containers_of(docker_client, i) for i in ids)
        ),
        what="eight containers to run",
    )
    for job_id in ids:
        client.cancel(job_id)
    wait_until(
        lambda: not any(containers_of(docker_client, i) for i in ids),
        timeout=30,
        what="all eight containers to go",
    )
    assert {client.wait(i, timeout=30).state for i in ids} == {JobState.CANCELLED}


def test_a_worker_of_another_store_leaves_this_stores_containers_alone(
    client: Client, docker_client: Any, busybox_image: str, docker_worker: Any, tmp_path: Path
) -> None:
    register_docker(client, "mine", busybox_image, "sleep", "600")
    job = client.submit("mine")
    wait_until(
        lambda: [c for c in containers_of(docker_client, job.id) if c.status == "running"],
        what="the container to run",
    )
    other = Settings.resolve(home=tmp_path / "other", environ={})
    WorkerThread(other, WorkerConfig(concurrency=1, poll_seconds=0.05)).start().stop()
    assert [c.status for c in containers_of(docker_client, job.id)] == ["running"]
    assert client.get(job.id).state is JobState.RUNNING
    client.cancel(job.id)
    assert client.wait(job.id, timeout=60).state is JobState.CANCELLED


def test_story_1_an_ecs_image_from_the_registry_followed_then_rolled_back(
    settings: Settings,
    client: Client,
    docker_client: Any,
    registry: str,
    docker_worker: Any,
    tmp_path: Path,
) -> None:
    """DESIGN.md story 1: one image with several commands, pushed as :sha1; a definition from
    the ECS task definition naming it; ``submit --follow -- update-cards`` streams its log; a
    revision with :sha2; a rollback, and the next job runs :sha1 again."""
    repository = f"{registry}/jobs/tools"
    for tag in ("sha1", "sha2"):
        scripts = {
            f"bin/{command}": f"#!/bin/sh\necho {command} from {tag}\n"
            for command in ("update-cards", "update-prices")
        }
        docker_client.api.import_image_from_data(
            busybox_tar(scripts), repository=repository, tag=tag
        )
        for line in docker_client.images.push(repository, tag=tag, stream=True, decode=True):
            assert "error" not in line, line
        docker_client.images.remove(f"{repository}:{tag}")  # the worker must pull it
    task = {
        "family": "update-jobs",
        "containerDefinitions": [
            {"name": "tools", "image": f"{repository}:sha1", "command": ["update-prices"]}
        ],
    }
    (tmp_path / "task.json").write_text(json.dumps(task))
    ok(settings, "definitions", "register", "--from-ecs", str(tmp_path / "task.json"))

    followed = run(settings, "submit", "update-jobs", "--follow", "--", "update-cards")
    assert followed.returncode == 0, followed.stderr
    assert "update-cards from sha1" in followed.stdout

    first = client.definition("update-jobs")
    document = definition_document("update-jobs", first.spec)
    client.register({**document, "image": f"{repository}:sha2"}, name="update-jobs")
    second = client.wait(client.submit("update-jobs").id, timeout=120)
    assert client.logs(second.id).endswith("update-prices from sha2\n")

    assert ok(settings, "definitions", "rollback", "update-jobs").startswith(
        "registered update-jobs:3"
    )
    third = client.wait(client.submit("update-jobs").id, timeout=120)
    assert client.logs(third.id).endswith("update-prices from sha1\n")
    # The attempts name the digest the registry gave each tag.
    digests = {
        tag: docker_client.images.get_registry_data(f"{repository}:{tag}").id
        for tag in ("sha1", "sha2")
    }
    assert second.attempts[-1].image == f"{repository}:sha2@{digests['sha2']}"
    assert client.get(third.id).attempts[-1].image == f"{repository}:sha1@{digests['sha1']}"


def test_read_only_root_tmpfs_and_cpu_limit_reach_the_engine(
    client: Client, docker_client: Any, busybox_image: str, docker_worker: Any
) -> None:
    register_docker(
        client,
        "locked",
        busybox_image,
        "sh",
        "-c",
        "touch /tmp/ok && echo tmp-ok; touch /nope 2>/dev/null || echo root-read-only; sleep 600",
        read_only=True,
        tmpfs={"/tmp": "size=8m"},
        resources={"vcpus": 0.5, "memory_mib": 64},
        network_mode="none",
    )
    job = client.submit("locked")
    (container,) = wait_until(
        lambda: [c for c in containers_of(docker_client, job.id) if c.status == "running"],
        what="the container to run",
    )
    container.reload()  # the full inspection
    host = container.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 64 * 2**20
    assert host["NetworkMode"] == "none"
    assert container.labels["dockyard.job-id"] == job.id
    wait_until(lambda: "root-read-only" in client.logs(job.id), what="the checks to print")
    assert client.logs(job.id).splitlines()[1:] == ["tmp-ok", "root-read-only"]
    client.cancel(job.id)
    assert client.wait(job.id, timeout=60).state is JobState.CANCELLED


def test_images_are_pulled_from_a_private_registry_with_credentials(
    settings: Settings,
    client: Client,
    docker_client: Any,
    private_registry: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, password = REGISTRY_AUTH
    image = f"{private_registry}/team/secret:1"
    repository, tag = image.rsplit(":", 1)
    docker_client.api.import_image_from_data(
        busybox_tar({"bin/hello": "#!/bin/sh\necho hello from the private registry\n"}),
        repository=repository,
        tag=tag,
    )
    auth = {"username": user, "password": password}
    for line in docker_client.images.push(
        repository, tag=tag, stream=True, decode=True, auth_config=auth
    ):
        assert "error" not in line, line
    docker_client.images.remove(image)  # only the registry has it now

    # The worker's owner lists the variables definitions may name as credentials.
    monkeypatch.setenv("TEST_REGISTRY_WRONG", "wrong")
    monkeypatch.setenv("TEST_REGISTRY_PASSWORD", password)
    for name, variable in (("wrong", "TEST_REGISTRY_WRONG"), ("right", "TEST_REGISTRY_PASSWORD")):
        register_docker(
            client,
            name,
            image,
            "hello",
            pull="always",
            registry_username=user,
            registry_password_env=variable,
        )
    with worker_under(settings, credential_env=("TEST_REGISTRY_*",)):
        refused = client.wait(client.submit("wrong").id, timeout=60)
        pulled = client.wait(client.submit("right").id, timeout=60)
    assert refused.state is JobState.FAILED
    assert refused.attempts[-1].reason == "CannotPullImage"
    assert pulled.state is JobState.SUCCEEDED
    assert client.logs(pulled.id).endswith("hello from the private registry\n")


# -- hardening: capabilities, no-new-privileges, user, host network, registries, credentials -----


@contextmanager
def worker_under(settings: Settings, **policy: Any) -> Iterator[WorkerThread]:
    """A worker of this store whose policy has ``policy``'s fields (as its owner set them)."""
    changed = replace(settings, policy=replace(settings.policy, **policy))
    worker = WorkerThread(changed, WorkerConfig(concurrency=2, poll_seconds=0.05)).start()
    try:
        yield worker
    finally:
        worker.stop()


def status_fields(log: str) -> dict[str, str]:
    """``Name: value`` lines of ``/proc/self/status`` as a container printed them."""
    fields = (line.split(":", 1) for line in log.splitlines() if ":" in line)
    return {name.strip(): value.strip() for name, value in fields}


def test_a_container_has_no_capability_and_no_new_privileges_by_default(
    client: Client, busybox_image: str, docker_worker: Any
) -> None:
    # Docker's default set (CapEff a80425fb) includes NET_RAW, SETUID, DAC_OVERRIDE…: all gone.
    register_docker(client, "bare", busybox_image, "cat", "/proc/self/status")
    job = client.wait(client.submit("bare").id, timeout=60)
    assert job.state is JobState.SUCCEEDED, job.status_reason
    status = status_fields(client.logs(job.id))
    assert status["Uid"].split()[0] == "0"  # the image's root…
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"  # …which no setuid program can widen


def test_cap_add_keeps_just_that_capability_and_user_runs_as_that_uid(
    client: Client, busybox_image: str, docker_worker: Any
) -> None:
    register_docker(
        client, "raw", busybox_image, "cat", "/proc/self/status", cap_add=["CAP_NET_RAW"]
    )
    register_docker(client, "nobody", busybox_image, "cat", "/proc/self/status", user="65534")
    raw = client.wait(client.submit("raw").id, timeout=60)
    nobody = client.wait(client.submit("nobody").id, timeout=60)
    assert (raw.state, nobody.state) == (JobState.SUCCEEDED, JobState.SUCCEEDED)
    executor = client.definition("raw").spec.executor
    assert isinstance(executor, DockerSpec) and executor.cap_add == ("NET_RAW",)
    assert int(status_fields(client.logs(raw.id))["CapEff"], 16) == 1 << 13  # CAP_NET_RAW
    status = status_fields(client.logs(nobody.id))
    assert status["Uid"].split() == ["65534"] * 4
    assert status["CapEff"] == "0000000000000000" and status["NoNewPrivs"] == "1"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"cap_add": ["ALL"]}, "cap_add[0]: ALL is refused"),
        ({"cap_add": ["SYS_ADMIN"]}, "cap_add[0]: SYS_ADMIN cannot be added"),
        ({"cap_add": ["NET_RAW", "SNIFF"]}, "cap_add[1]: 'SNIFF' is not a Linux capability"),
        ({"cap_add": "NET_RAW"}, "cap_add: must be a list"),
        ({"user": "root; rm -rf /"}, "user: must be a user name or uid"),
        ({"user": "1000:"}, "user: must be a user name or uid"),
    ],
)
def test_bad_capabilities_and_users_are_refused_at_register_time(
    client: Client, fields: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        register_docker(client, "bad", "busybox", "true", **fields)
    assert str(refused.value).startswith(error)


def test_host_network_is_refused_unless_the_workers_policy_allows_it(
    settings: Settings, client: Client, busybox_image: str
) -> None:
    # Accepted at register time: whether it runs is the worker owner's decision.
    register_docker(
        client,
        "on-host",
        busybox_image,
        "ls",
        "-l",
        "/proc/self/ns/net",
        network_mode="host",
        retry={"attempts": 3, "backoff_base": 0},
    )
    with worker_under(settings):
        refused = client.wait(client.submit("on-host").id, timeout=60)
    assert refused.state is JobState.FAILED and len(refused.attempts) == 1  # not retried
    assert refused.attempts[-1].reason == "HostNetworkDenied"
    assert "DOCKYARD_DOCKER_HOST_NETWORK" in (refused.status_reason or "")

    with worker_under(settings, docker_host_network=True):
        ran = client.wait(client.submit("on-host").id, timeout=60)
    assert ran.state is JobState.SUCCEEDED, ran.status_reason
    # The container's network namespace is the host's own.
    assert client.logs(ran.id).rstrip().endswith(os.readlink("/proc/self/ns/net"))


def test_an_image_from_a_registry_off_the_allow_list_is_refused_before_any_pull(
    settings: Settings, client: Client, docker_client: Any, busybox_image: str
) -> None:
    elsewhere = "127.0.0.1:5999/team/tool:1"  # nothing listens there: a pull would say so
    register_docker(client, "elsewhere", elsewhere, "true", pull="always")
    register_docker(client, "hub", busybox_image, "echo", "from the hub")  # docker.io/local/…
    with worker_under(settings, docker_registries=("Docker.io",)):
        refused = client.wait(client.submit("elsewhere").id, timeout=60)
        allowed = client.wait(client.submit("hub").id, timeout=60)
    assert refused.state is JobState.FAILED and refused.attempts[-1].reason == "RegistryDenied"
    assert refused.status_reason == (
        f"image {elsewhere} comes from registry 127.0.0.1:5999, which this worker's"
        " DOCKYARD_DOCKER_REGISTRIES does not list (docker.io)"
    )
    assert "cannot get image" not in client.logs(refused.id)  # no pull was tried
    assert allowed.state is JobState.SUCCEEDED and client.logs(allowed.id).endswith(
        "from the hub\n"
    )


def test_a_registry_password_comes_only_from_the_workers_credential_allow_list(
    settings: Settings, client: Client, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker has the variable, but its owner never listed it as a credential (the default
    # lists none; the AWS_* three serve SigV4 signing only): a definition must not send it to a
    # registry of its choosing.
    monkeypatch.setenv("PRIVATE_DEPLOY_KEY", "do-not-send")
    register_docker(
        client,
        "exfiltrate",
        busybox_image,
        "true",
        registry_username="me",
        registry_password_env="PRIVATE_DEPLOY_KEY",
    )
    with worker_under(settings):
        refused = client.wait(client.submit("exfiltrate").id, timeout=60)
    assert refused.state is JobState.FAILED
    assert refused.attempts[-1].reason == "CredentialDenied"
    assert refused.status_reason == (
        "registry_password_env names PRIVATE_DEPLOY_KEY, which is not a credential this worker"
        " allows (credential_env, DOCKYARD_CREDENTIAL_ENV)"
    )


def test_ecs_capabilities_and_user_are_imported_and_privileged_is_refused() -> None:
    container = {
        "name": "app",
        "image": "registry.local:5000/jobs/tools:1",
        "user": "1000:1000",
        "linuxParameters": {
            "capabilities": {"add": ["NET_RAW", "CHOWN"], "drop": ["ALL", "CHOWN"]},
            "initProcessEnabled": True,
        },
    }
    task = {"family": "tools", "containerDefinitions": [container]}
    document, ignored = definition_from_ecs(task)
    spec = parse_definition(document).executor
    assert isinstance(spec, DockerSpec)
    assert (spec.user, spec.cap_add) == ("1000:1000", ("NET_RAW",))
    assert ignored == ["containerDefinitions[0].linuxParameters.initProcessEnabled"]

    with pytest.raises(ValidationError) as refused:
        definition_from_ecs({**task, "containerDefinitions": [{**container, "privileged": True}]})
    assert str(refused.value).startswith("containerDefinitions[0].privileged: is refused")
    batch = {
        "jobDefinitionName": "tools",
        "containerProperties": {
            "image": "busybox",
            "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}},
        },
    }
    with pytest.raises(ValidationError, match=r"^cap_add\[0\]: SYS_ADMIN cannot be added"):
        parse_definition(definition_from_batch(batch)[0])


@pytest.mark.sqlite_only
def test_a_container_gets_its_inputs_in_its_workdir_bind_mounted(
    client: Client,
    settings: Settings,
    docker_client: Any,
    busybox_image: str,
    docker_worker: Any,
    s3_bucket: str,
) -> None:
    """The work directory, its S3 input fetched in, is the container's working directory
    (``/work`` when the definition names none), writable by a user other than the worker's; it
    is removed after the attempt. S3 is moto's emulator (see tests/conftest.py)."""
    import io
    import zipfile

    import boto3

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("src/hello.txt", "hello from s3\n")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="in/p1.zip", Body=archive.getvalue())
    s3.close()
    register_docker(
        client,
        "graded",
        busybox_image,
        "sh",
        "-c",
        "cat src/hello.txt && pwd && id -u && echo made > src/made.txt && cat src/made.txt",
        user="1000:1000",
        inputs=[{"from": f"s3://{s3_bucket}/in/${{payload.id}}.zip"}],
    )
    job = client.wait(client.submit("graded", payload={"id": "p1"}).id, timeout=60)
    log = client.logs(job.id)
    assert job.state is JobState.SUCCEEDED, (job.status_reason, log)
    assert "hello from s3\n/work\n1000\nmade\n" in log
    work = settings.home / "work"
    assert work.is_dir() and list(work.iterdir()) == []  # removed after the attempt
    assert containers_of(docker_client, job.id) == []
