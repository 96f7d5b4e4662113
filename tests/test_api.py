"""The HTTP API on a real server (``python -m dockyard server``) and a real SQLite store.

Tokens and roles route by route, errors as ``application/problem+json``, schemathesis over the
OpenAPI document, live log following, batches and pagination.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from tests.conftest import ServerProcess

PROBLEM = "application/problem+json"
ROLES = ("viewer", "publisher", "operator", "admin")
#: The roles that a route needing each least role admits: a viewer only reads and a publisher only
#: puts events (neither may do what the other may); an operator may do both, and an admin all.
ADMITTED = {
    "viewer": {"viewer", "operator", "admin"},
    "publisher": {"publisher", "operator", "admin"},
    "operator": {"operator", "admin"},
    "admin": {"admin"},
}

#: The least role each ``/v1`` route needs (DESIGN.md §6 and the README): a viewer only reads; a
#: publisher only puts events (``/v1/events``, ``/v1/webhooks/registry``); an operator also
#: registers and deregisters definitions, submits, cancels, retries, pauses or resumes queues, and
#: creates, changes, pauses, resumes and deletes schedules; only an admin touches ``/v1/tokens``
#: and ``/v1/audit`` (even to read). A route added to the API without an entry here fails
#: ``test_every_route_allows_exactly_the_roles_the_design_gives``.
LEAST_ROLE: dict[tuple[str, str], str] = {
    ("GET", "/v1/definitions"): "viewer",
    ("POST", "/v1/definitions"): "operator",
    ("GET", "/v1/definitions/{name}"): "viewer",
    ("GET", "/v1/definitions/{name}/active"): "viewer",
    ("GET", "/v1/definitions/{name}/{revision}"): "viewer",
    ("DELETE", "/v1/definitions/{name}/{revision}"): "operator",
    ("POST", "/v1/definitions/{name}/rollback"): "operator",
    ("POST", "/v1/jobs"): "operator",
    ("GET", "/v1/jobs"): "viewer",
    ("POST", "/v1/jobs/batch"): "operator",
    ("GET", "/v1/jobs/{job_id}"): "viewer",
    ("GET", "/v1/jobs/{job_id}/attempts"): "viewer",
    ("POST", "/v1/jobs/{job_id}/cancel"): "operator",
    ("POST", "/v1/jobs/{job_id}/retry"): "operator",
    ("GET", "/v1/jobs/{job_id}/logs"): "viewer",
    ("GET", "/v1/jobs/{job_id}/outputs"): "viewer",
    ("GET", "/v1/schedules"): "viewer",
    ("POST", "/v1/schedules"): "operator",
    ("GET", "/v1/schedules/{name}"): "viewer",
    ("PATCH", "/v1/schedules/{name}"): "operator",
    ("DELETE", "/v1/schedules/{name}"): "operator",
    ("POST", "/v1/schedules/{name}/pause"): "operator",
    ("POST", "/v1/schedules/{name}/resume"): "operator",
    ("POST", "/v1/events"): "publisher",
    ("GET", "/v1/events"): "viewer",
    ("POST", "/v1/webhooks/registry"): "publisher",
    ("GET", "/v1/rules"): "viewer",
    ("POST", "/v1/rules"): "operator",
    ("POST", "/v1/rules/test-pattern"): "viewer",
    ("GET", "/v1/rules/{name}"): "viewer",
    ("PATCH", "/v1/rules/{name}"): "operator",
    ("DELETE", "/v1/rules/{name}"): "operator",
    ("POST", "/v1/rules/{name}/enable"): "operator",
    ("POST", "/v1/rules/{name}/disable"): "operator",
    ("GET", "/v1/rules/{name}/history"): "viewer",
    ("POST", "/v1/rules/{name}/retry"): "operator",
    ("GET", "/v1/queues"): "viewer",
    ("POST", "/v1/queues/{name}/pause"): "operator",
    ("POST", "/v1/queues/{name}/resume"): "operator",
    ("GET", "/v1/workers"): "viewer",
    ("GET", "/v1/tokens"): "admin",
    ("POST", "/v1/tokens"): "admin",
    ("DELETE", "/v1/tokens/{token_id}"): "admin",
    ("GET", "/v1/audit"): "admin",
}
#: Path parameters for the matrix: objects that do not exist, so no request changes anything that
#: a later one depends on (an admin's DELETE of a token answers 404 instead of revoking one).
MATRIX_PATH_VALUES = {"name": "absent", "revision": "1", "job_id": "absent", "token_id": "absent"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    request = response.request
    assert response.status_code == status, f"{request.method} {request.url}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def all_jobs(http: httpx.Client, limit: int = 1000) -> list[dict[str, Any]]:
    """Every job, newest first, following ``next_cursor``."""
    jobs: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = http.get("/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        jobs.extend(page["jobs"])
        if page["next_cursor"] is None:
            return jobs
        params["cursor"] = page["next_cursor"]


def register(http: httpx.Client, name: str, *command: str, **fields: Any) -> dict[str, Any]:
    response = http.post("/v1/definitions", json={"name": name, "command": list(command), **fields})
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def submit(http: httpx.Client, definition: str, **fields: Any) -> str:
    response = http.post("/v1/jobs", json={"definition": definition, **fields})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def wait_for_end(http: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job once it has ended, held by the server (``?wait=``), not polled."""
    response = http.get(f"/v1/jobs/{job_id}", params={"wait": 30})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"), job
    return job


def create_token(http: httpx.Client, role: str, name: str | None = None) -> tuple[str, str]:
    """A new token of ``role`` → (id, secret)."""
    response = http.post("/v1/tokens", json={"name": name or f"test-{role}", "role": role})
    assert response.status_code == 201, response.text
    token = response.json()
    assert token["role"] == role and token["revoked_at"] is None
    return token["id"], token["secret"]


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client of the server holding the admin token its first start wrote."""
    with httpx.Client(base_url=server.url, headers=bearer(server.admin_token), timeout=60) as http:
        yield http


# -- 1. tokens and roles ------------------------------------------------------------------------


def spec_routes(http: httpx.Client) -> set[tuple[str, str]]:
    spec = http.get("/openapi.json").json()
    return {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }


def test_every_route_allows_exactly_the_roles_the_design_gives(
    server: ServerProcess, api: httpx.Client
) -> None:
    routes = spec_routes(api)
    assert set(LEAST_ROLE) == routes, (
        f"routes without an entry in LEAST_ROLE: {sorted(routes - set(LEAST_ROLE))}; "
        f"entries for no route: {sorted(set(LEAST_ROLE) - routes)}"
    )
    secrets = {"admin": server.admin_token}
    for role in ("operator", "publisher", "viewer"):
        secrets[role] = create_token(api, role)[1]

    expected: dict[tuple[str, str, str], str] = {}
    actual: dict[tuple[str, str, str], str] = {}
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        for (method, template), least in sorted(LEAST_ROLE.items()):
            path = re.sub(r"\{(\w+)\}", lambda m: MATRIX_PATH_VALUES[m.group(1)], template)
            body: dict[str, Any] | None = {} if method == "POST" else None
            for headers in ({}, {"Authorization": "Basic YTpi"}):
                response = anonymous.request(method, path, json=body, headers=headers)
                problem_of(response, 401)
                assert response.headers["www-authenticate"] == "Bearer", response.request
            for role in ROLES:
                key = (method, template, role)
                expected[key] = "allowed" if role in ADMITTED[least] else "403"
                response = anonymous.request(method, path, json=body, headers=bearer(secrets[role]))
                if response.status_code in (401, 403):
                    problem_of(response, response.status_code)
                    actual[key] = str(response.status_code)
                else:
                    actual[key] = "allowed"
    assert actual == expected, {key: actual[key] for key in actual if actual[key] != expected[key]}


def test_a_malformed_or_unknown_authorization_is_401(server: ServerProcess) -> None:
    headers_401 = [
        {},
        {"Authorization": f"Basic {server.admin_token}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer dy_not-a-token-of-this-server"},
        {"Authorization": server.admin_token},  # no scheme at all
    ]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for headers in headers_401:
            response = http.get("/v1/jobs", headers=headers)
            problem_of(response, 401)
            assert response.headers["www-authenticate"] == "Bearer", headers
        # The scheme is case-insensitive (RFC 9110 §11.1).
        response = http.get("/v1/jobs", headers={"Authorization": f"bearer {server.admin_token}"})
        assert response.status_code == 200


def test_a_revoked_token_is_401_from_then_on(server: ServerProcess, api: httpx.Client) -> None:
    token_id, secret = create_token(api, "operator", "soon-revoked")
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as operator:
        assert operator.get("/v1/jobs").status_code == 200

        revoked = api.delete(f"/v1/tokens/{token_id}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"] is not None

        for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/queues"), ("POST", "/v1/jobs")):
            response = operator.request(method, path, json={"definition": "x"})
            problem_of(response, 401)
            assert response.headers["www-authenticate"] == "Bearer"
        problem_of(operator.get("/v1/jobs"), 401)  # and again: revocation does not wear off

    (listed,) = [t for t in api.get("/v1/tokens").json() if t["id"] == token_id]
    assert listed["revoked_at"] is not None
    assert all("secret" not in token for token in api.get("/v1/tokens").json())


def test_health_checks_and_api_docs_need_no_token(server: ServerProcess) -> None:
    """Health checks are open by design. The OpenAPI document and the interactive docs are open
    too, as FastAPI serves them by default: they describe the API and reveal no data."""
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").json() == {"status": "ready"}

        spec = anonymous.get("/openapi.json")
        assert spec.status_code == 200
        assert "/v1/jobs" in spec.json()["paths"]
        for page in ("/docs", "/redoc"):
            response = anonymous.get(page)
            assert response.status_code == 200, page
            assert response.headers["content-type"].startswith("text/html")
            assert "/openapi.json" in response.text


# -- 2. errors are problems ---------------------------------------------------------------------


def test_rejected_requests_are_problems_and_write_nothing(
    server: ServerProcess, api: httpx.Client
) -> None:
    # Malformed JSON: 400, on every route that takes a body.
    for path in ("/v1/definitions", "/v1/jobs", "/v1/jobs/batch", "/v1/schedules", "/v1/tokens"):
        response = api.post(
            path, content=b'{"name": "half', headers={"Content-Type": "application/json"}
        )
        problem_of(response, 400)

    # A rule of the domain: the field at fault, dotted.
    too_many = {"name": "nightly", "command": ["true"], "retry": {"attempts": 11}}
    problem = problem_of(api.post("/v1/definitions", json=too_many), 422)
    assert problem["field"] == "retry.attempts"
    assert "rule" in problem

    # Unknown fields are refused by name, never ignored.
    for path, body, field in (
        ("/v1/definitions", {"name": "nightly", "command": ["true"], "colour": "red"}, "colour"),
        ("/v1/jobs", {"definition": "nightly", "colour": "red"}, "colour"),
        ("/v1/jobs/batch", {"jobs": [{"definition": "nightly", "colour": 1}]}, "jobs.0.colour"),
        ("/v1/tokens", {"name": "ci", "role": "viewer", "colour": "red"}, "colour"),
    ):
        problem = problem_of(api.post(path, json=body), 422)
        assert problem["field"] == field, (path, problem)
        assert field.rsplit(".", 1)[-1] in problem["detail"]

    # Refused by role: nothing written either.
    _, viewer = create_token(api, "viewer")
    with httpx.Client(base_url=server.url, headers=bearer(viewer), timeout=30) as http:
        problem_of(http.post("/v1/definitions", json={"name": "nightly", "command": ["true"]}), 403)

    assert api.get("/v1/definitions").json() == []
    assert all_jobs(api) == []
    assert [token["role"] for token in api.get("/v1/tokens").json()] == ["admin", "viewer"]


def test_unknown_objects_are_404_and_finished_jobs_409(api: httpx.Client, start_worker) -> None:
    for method, path in (
        ("GET", "/v1/jobs/absent"),
        ("GET", "/v1/jobs/absent/attempts"),
        ("GET", "/v1/jobs/absent/logs"),
        ("GET", "/v1/jobs/absent/logs?follow=true"),
        ("POST", "/v1/jobs/absent/cancel"),
        ("POST", "/v1/jobs/absent/retry"),
        ("GET", "/v1/definitions/absent"),
        ("GET", "/v1/definitions/absent/active"),
        ("GET", "/v1/definitions/absent/1"),
        ("DELETE", "/v1/definitions/absent/1"),
        ("DELETE", "/v1/tokens/absent"),
        ("GET", "/v1/schedules/absent"),
        ("POST", "/v1/schedules/absent/pause"),
        ("POST", "/v1/schedules/absent/resume"),
        ("DELETE", "/v1/schedules/absent"),
    ):
        problem_of(api.request(method, path), 404)
    problem_of(api.post("/v1/jobs", json={"definition": "absent"}), 404)

    register(api, "quick", "true")
    start_worker(concurrency=1)
    done = submit(api, "quick")
    assert wait_for_end(api, done)["state"] == "SUCCEEDED"
    assert "SUCCEEDED" in problem_of(api.post(f"/v1/jobs/{done}/cancel"), 409)["detail"]
    problem_of(api.post(f"/v1/jobs/{done}/retry"), 409)

    # Cancelled is finished too: a second cancel conflicts, and the first one's reason stays.
    api.post("/v1/queues/parked/pause").raise_for_status()
    parked = submit(api, "quick", queue="parked")
    first = api.post(f"/v1/jobs/{parked}/cancel", json={"reason": "not today"})
    assert first.status_code == 200 and first.json()["state"] == "CANCELLED", first.text
    problem_of(api.post(f"/v1/jobs/{parked}/cancel", json={"reason": "again"}), 409)
    assert api.get(f"/v1/jobs/{parked}").json()["status_reason"] == first.json()["status_reason"]


def test_out_of_range_revisions_are_client_errors(api: httpx.Client) -> None:
    """Revision numbers SQLite cannot hold, and digits ``int()`` cannot read, are the client's
    mistake (404 or 422), not a server error. Found by a random run of the schemathesis test
    below; kept here so that it is checked on every run."""
    register(api, "demo", "true")
    huge = "9" * 25
    for method in ("GET", "DELETE"):
        response = api.request(method, f"/v1/definitions/demo/{huge}")
        assert response.status_code in (404, 422), (method, response.text)
        problem_of(response, response.status_code)
    for ref in (f"demo:{huge}", "demo:²"):
        assert api.post("/v1/jobs", json={"definition": ref}).status_code in (404, 422), ref
        batch = api.post("/v1/jobs/batch", json={"jobs": [{"definition": ref}]})
        assert batch.status_code in (404, 422), ref
        listed = api.get("/v1/jobs", params={"definition": ref})
        assert listed.status_code in (200, 404, 422), ref


# -- 3. the OpenAPI document holds: schemathesis ------------------------------------------------

#: What each response is checked for: no 5xx, a documented status code and media type, and a body
#: that matches the schema documented for that status.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def seed(api: httpx.Client, start_worker) -> dict[str, dict[str, Any]]:
    """Objects for generated requests to find, so that 2xx bodies are checked too, not only
    problems: per operation, path parameters (and a valid body) naming something that exists.

    Job ``done`` has ended with an attempt and a log (so ``?wait=`` and ``?follow=true`` answer at
    once); ``cycling`` goes back and forth between CANCELLED and RUNNABLE under cancel and retry.
    No worker runs while requests are generated, so no generated definition ever executes.
    """
    register(api, "demo", "echo", "hello")
    register(api, "keep", "true")
    worker = start_worker(concurrency=1)
    done = submit(api, "demo")
    assert wait_for_end(api, done)["state"] == "SUCCEEDED"
    worker.stop()
    cycling = submit(api, "keep")
    victim, _ = create_token(api, "viewer", "fuzz-victim")
    # Fire times decades away: nothing fires while requests are generated.
    for name in ("yearly", "fuzz-victim"):
        schedule = {
            "name": name,
            "expression": "cron(0 2 1 1 ? 2099)",
            "target": {"definition": "keep"},
        }
        api.post("/v1/schedules", json=schedule).raise_for_status()
    # Enabled, so that the bus keeps the events put while requests are generated.
    for name in ("seeded", "fuzz-victim-rule"):
        rule = {
            "name": name,
            "event_pattern": {"source": ["fuzz"]},
            "targets": [{"kind": "submit-job", "definition": "keep"}],
        }
        api.post("/v1/rules", json=rule).raise_for_status()
    event = {"Source": "fuzz", "DetailType": "Fuzzed", "Detail": '{"n": 1}'}
    api.post("/v1/events", json={"entries": [event]}).raise_for_status()

    digest = "sha256:" + "ab" * 32
    registry_push = {  # a registry's notification of one tagged manifest push
        "events": [
            {
                "id": "b4a0a0c4-3a4e-4b4b-9c53-ba2e3b9e4f3a",
                "timestamp": "2026-06-01T12:00:00Z",
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "digest": digest,
                    "repository": "team/app",
                    "tag": "v1",
                    "url": f"http://127.0.0.1:5000/v2/team/app/manifests/{digest}",
                },
                "request": {"host": "127.0.0.1:5000", "method": "PUT"},
                "actor": {"name": "ci"},
            }
        ]
    }

    def path(**values: Any) -> dict[str, Any]:
        return {"path_parameters": values}

    return {
        "GET /v1/definitions/{name}": path(name="demo"),
        "GET /v1/definitions/{name}/active": path(name="demo"),
        "GET /v1/definitions/{name}/{revision}": path(name="demo", revision=1),
        "DELETE /v1/definitions/{name}/{revision}": path(name="demo", revision=1),
        "POST /v1/definitions/{name}/rollback": path(name="demo"),
        "POST /v1/definitions": {"body": {"name": "fuzzed", "command": ["true"], "timeout": 5}},
        "POST /v1/jobs": {"body": {"definition": "keep", "payload": {"n": 1}}},
        "POST /v1/jobs/batch": {
            "body": {"jobs": [{"definition": "keep"}, {"definition": "keep:1"}]}
        },
        "GET /v1/jobs/{job_id}": path(job_id=done),
        "GET /v1/jobs/{job_id}/attempts": path(job_id=done),
        "GET /v1/jobs/{job_id}/logs": path(job_id=done),
        "POST /v1/jobs/{job_id}/cancel": path(job_id=cycling),
        "POST /v1/jobs/{job_id}/retry": path(job_id=cycling),
        "POST /v1/queues/{name}/pause": path(name="default"),
        "POST /v1/queues/{name}/resume": path(name="default"),
        "POST /v1/tokens": {"body": {"name": "fuzzed", "role": "viewer"}},
        "DELETE /v1/tokens/{token_id}": path(token_id=victim),
        "POST /v1/schedules": {
            "body": {
                "name": "fuzzed",
                "expression": "rate(5 minutes)",
                "start": "2099-01-01T00:00:00Z",
                "target": {"definition": "keep", "payload": {"n": 1}},
            }
        },
        "GET /v1/schedules/{name}": path(name="yearly"),
        "PATCH /v1/schedules/{name}": {
            **path(name="yearly"),
            "body": {"description": "fuzzed", "target": {"queue": "side", "payload": None}},
        },
        "POST /v1/schedules/{name}/pause": path(name="yearly"),
        "POST /v1/schedules/{name}/resume": path(name="yearly"),
        "DELETE /v1/schedules/{name}": path(name="fuzz-victim"),
        "POST /v1/events": {"body": {"entries": [event]}},
        "POST /v1/webhooks/registry": {
            "body": registry_push,
            "media_type": "application/vnd.docker.distribution.events.v2+json",
        },
        "POST /v1/rules": {
            "body": {
                "name": "fuzzed-rule",
                "event_pattern": {"source": ["fuzz"], "detail": {"n": [{"numeric": [">", 0]}]}},
                "targets": [{"kind": "webhook", "url": "http://127.0.0.1:9/hook"}],
            }
        },
        "GET /v1/rules/{name}": path(name="seeded"),
        "PATCH /v1/rules/{name}": {**path(name="seeded"), "body": {"description": "fuzzed"}},
        "DELETE /v1/rules/{name}": path(name="fuzz-victim-rule"),
        "POST /v1/rules/{name}/enable": path(name="seeded"),
        "POST /v1/rules/{name}/disable": path(name="seeded"),
        "GET /v1/rules/{name}/history": path(name="seeded"),
        "POST /v1/rules/{name}/retry": path(name="seeded"),
        "POST /v1/rules/test-pattern": {
            "body": {"pattern": {"source": ["fuzz"]}, "event": {"source": "fuzz", "detail": {}}}
        },
    }


def can_be_invalid(operation: dict[str, Any]) -> bool:
    """Whether schemathesis can make an invalid request for ``operation``: not when it has no
    body and no parameter but free-form strings in the path (any string is a valid name)."""
    return "requestBody" in operation or any(
        parameter["in"] != "path" or parameter["schema"].get("type") != "string"
        for parameter in operation.get("parameters", [])
    )


@pytest.mark.slow
def test_every_operation_conforms_to_the_openapi_document(
    server: ServerProcess, api: httpx.Client, start_worker
) -> None:
    """Every operation, valid and invalid inputs, with the admin token (nothing excluded).

    ``?follow=true`` needs no exclusion: on an unknown job it is 404 at once, and the only job
    whose log requests name (``done``) has ended, so its stream ends too.
    """
    known = seed(api, start_worker)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [
        (schema[path][method], document)
        for path, methods in schema.raw_schema["paths"].items()
        for method, document in methods.items()
    ]
    assert not set(known) - {operation.label for operation, _ in operations}, "stale seed entries"
    assert len(operations) == len(LEAST_ROLE) + 2  # every /v1 route, /healthz and /readyz

    failures: list[str] = []
    for operation, document in operations:
        for mode in GenerationMode:
            if mode is GenerationMode.NEGATIVE and not can_be_invalid(document):
                continue
            strategy = operation.as_strategy(mode)
            if mode is GenerationMode.POSITIVE and operation.label in known:
                strategy = st.one_of(
                    strategy, operation.as_strategy(mode, **known[operation.label])
                )

            @hypothesis.given(case=strategy)
            @hypothesis.settings(
                max_examples=25,
                deadline=None,
                database=None,
                derandomize=True,  # the same requests on every run: a failure is reproducible
                suppress_health_check=[hypothesis.HealthCheck.too_slow],
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            def call(case):
                case.call_and_validate(
                    headers=bearer(server.admin_token), checks=CHECKS, timeout=30
                )

            try:
                call()
            except (Exception, BaseExceptionGroup) as error:
                failures.append(f"{operation.label} ({mode.value} data):\n{error}")
    assert not failures, "\n\n".join(failures)


# -- 4. following a log over HTTP ---------------------------------------------------------------


def test_follow_streams_lines_while_the_job_runs_and_ends_with_it(
    server: ServerProcess, api: httpx.Client, start_worker, tmp_path: Path
) -> None:
    proceed = tmp_path / "proceed"
    wait_for_file = f"while [ ! -e {shlex.quote(str(proceed))} ]; do sleep 0.02; done"
    script = f'echo "line 1"; {wait_for_file}; echo "line 2"'
    register(api, "two-lines", "sh", "-c", script)
    start_worker(concurrency=1)
    job_id = submit(api, "two-lines")

    seen: list[str] = []
    with httpx.stream(
        "GET",
        f"{server.url}/v1/jobs/{job_id}/logs",
        params={"follow": "true"},
        headers=bearer(server.admin_token),
        timeout=httpx.Timeout(30),  # a stream that stalls fails the test instead of hanging it
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        lines = response.iter_lines()
        seen.append(next(lines))
        assert seen == ["line 1"]
        # The job cannot go on before the file exists: it is running, and the stream is open.
        assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "RUNNING"

        proceed.touch()
        seen.append(next(lines))
        assert seen == ["line 1", "line 2"]
        seen.extend(lines)  # returns only when the server ends the stream
    assert seen == ["line 1", "line 2"]
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "SUCCEEDED"


# -- 5. batches ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_batch_holds_up_to_1000_jobs_and_is_all_or_nothing(api: httpx.Client) -> None:
    register(api, "bulk", "true")

    response = api.post("/v1/jobs/batch", json={"jobs": [{"definition": "bulk"}] * 1000})
    assert response.status_code == 201, response.text
    submitted = response.json()["jobs"]
    assert len(submitted) == 1000
    assert all(job["created"] is True for job in submitted)
    ids = [job["id"] for job in submitted]
    assert len(set(ids)) == 1000
    assert [job["id"] for job in all_jobs(api)] == ids[::-1]

    too_many = {"jobs": [{"definition": "bulk"}] * 1001}
    assert problem_of(api.post("/v1/jobs/batch", json=too_many), 422)["field"] == "jobs"

    # One bad job anywhere refuses the batch whole: a rule of the domain (last of 1,000), a field
    # pydantic refuses, a definition that does not exist.
    valid = {"definition": "bulk"}
    for jobs, status, field in (
        ([*[valid] * 999, {**valid, "priority": 5000}], 422, r"jobs(\[999\]|\.999)\.priority"),
        ([valid, {**valid, "colour": 1}], 422, r"jobs\.1\.colour"),
        ([valid, {"definition": "absent"}], 404, None),
    ):
        problem = problem_of(api.post("/v1/jobs/batch", json={"jobs": jobs}), status)
        assert field is None or re.fullmatch(field, problem["field"]), problem

    assert len(all_jobs(api)) == 1000


# -- 6. pagination ------------------------------------------------------------------------------


def test_pages_follow_next_cursor_newest_first_each_job_once(api: httpx.Client) -> None:
    register(api, "paged", "true")
    submitted = [submit(api, "paged", name=f"job-{n}") for n in range(25)]

    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": 10}
    while True:
        response = api.get("/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([job["id"] for job in page["jobs"]])
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == pages[-1][-1]
        params["cursor"] = page["next_cursor"]
        assert len(pages) <= 3, "more pages than 25 jobs fill"

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [job_id for page in pages for job_id in page] == submitted[::-1]


def test_definition_inputs_and_outputs_register_and_read_back_over_http(api: httpx.Client) -> None:
    """A definition's ``inputs``/``outputs`` go in over HTTP and come back from GET; kinds
    without a work directory refuse them by name; a payload missing a placeholder's field is
    refused at submit, naming the input."""
    inputs = [{"from": "s3://subs/${payload.id}.zip", "to": "src", "unpack": "zip"}]
    outputs = [{"path": "report/*.json", "to": "s3://results/${job.id}/", "when": "always"}]
    registered = register(api, "grade", "sh", "run.sh", inputs=inputs, outputs=outputs)
    assert registered["inputs"] == inputs and registered["outputs"] == outputs
    shown = api.get("/v1/definitions/grade/active").json()
    assert shown["inputs"] == inputs and shown["outputs"] == outputs
    assert api.get("/v1/definitions").json()[0]["inputs"] == inputs

    # A definition without them shows empty lists, not missing fields.
    assert register(api, "plain", "true")["inputs"] == []

    # http jobs have no work directory: refused, naming the field.
    http_job = {"name": "hook", "executor": "http", "url": "https://example.com/", "inputs": inputs}
    problem = problem_of(api.post("/v1/definitions", json=http_job), 422)
    assert problem["field"] == "inputs" and "process and docker" in problem["detail"]
    # A bad input is refused by its own field.
    bad = {"name": "bad", "command": ["true"], "inputs": [{"from": "ftp://x/y"}]}
    assert problem_of(api.post("/v1/definitions", json=bad), 422)["field"] == "inputs[0].from"

    # Submit: the payload must hold what the placeholders name.
    problem = problem_of(api.post("/v1/jobs", json={"definition": "grade", "payload": {}}), 422)
    assert problem["field"] == "inputs[0].from" and "payload.id" in problem["detail"]
    submit(api, "grade", payload={"id": "alice"})
