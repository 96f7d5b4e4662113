"""Staging an attempt (dockyard.executors.staging, dockyard.domain.staging): inputs fetched from
moto's S3 server — an S3 emulator over real HTTP, started by scripts/services — and from real
HTTP servers on 127.0.0.1, unpacked into a real work directory; outputs uploaded to the
emulator and read back with boto3; definition errors checked through ``client.register``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any, Literal

import pytest

from dockyard.client import Client
from dockyard.domain.staging import (
    CANNOT_FETCH_INPUT,
    INPUT_REJECTED,
    OUTPUT_MISSING,
    StagingError,
    check_placeholders,
    parse_inputs,
    parse_outputs,
)
from dockyard.errors import ValidationError
from dockyard.executors.staging import (
    ObjectStores,
    OutputsError,
    fetch_inputs,
    upload_outputs,
    work_directory,
)
from dockyard.policy import WorkerPolicy

from .conftest import free_port

VALUES = {"payload": {"submission": "alice"}, "job.id": "job-1", "job.name": None, "job.attempt": 1}
LOCAL = WorkerPolicy(http_allow_private=True)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(entries: dict[str, bytes], mode: Literal["w", "w:gz", "w:bz2", "w:xz"]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in entries.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def s3(s3_bucket: str) -> Any:
    import boto3

    client = boto3.client("s3")
    yield client
    client.close()


@pytest.fixture
def web() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on 127.0.0.1 serving the bytes of a dict by path (404 otherwise)."""
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()
    httpd.server_close()


def fetch(
    documents: list[dict[str, Any]],
    workdir: Path,
    *,
    policy: WorkerPolicy = LOCAL,
    allow_files: bool = False,
) -> Any:
    async def go() -> Any:
        stores = ObjectStores()
        try:
            return await fetch_inputs(
                parse_inputs(documents),
                workdir,
                values=VALUES,
                objects=stores,
                policy=policy,
                allow_files=allow_files,
            )
        finally:
            await stores.aclose()

    return asyncio.run(go())


def upload(documents: list[dict[str, Any]], workdir: Path, succeeded: bool) -> Any:
    async def go() -> Any:
        stores = ObjectStores()
        try:
            return await upload_outputs(
                parse_outputs(documents), workdir, succeeded, values=VALUES, objects=stores
            )
        finally:
            await stores.aclose()

    return asyncio.run(go())


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# -- the work directory -----------------------------------------------------------------------


def test_each_attempt_gets_a_fresh_private_folder_removed_after(tmp_path: Path) -> None:
    with work_directory(tmp_path / "work", "job-1", 1) as first:
        assert first.is_dir() and tree(first) == []
        assert first.stat().st_mode & 0o777 == 0o700
        (first / "locked").mkdir()
        (first / "locked/file").write_text("x")
        (first / "locked").chmod(0o500)  # a job may leave read-only folders
        with work_directory(tmp_path / "work", "job-1", 2) as second:
            assert second != first and tree(second) == []
    assert not first.exists() and not second.exists()


# -- inputs -----------------------------------------------------------------------------------


def test_zip_from_s3_is_fetched_and_unpacked(s3: Any, s3_bucket: str, tmp_path: Path) -> None:
    archive = zip_bytes({"run-tests.sh": b"echo ok\n", "lib/a.py": b"x = 1\n"})
    s3.put_object(Bucket=s3_bucket, Key="subs/alice.zip", Body=archive)  # as another tool would
    source = f"s3://{s3_bucket}/subs/${{payload.submission}}.zip"
    with work_directory(tmp_path, "job-1", 1) as workdir:
        (record,) = fetch([{"from": source, "to": "src", "unpack": "auto"}], workdir)
        assert tree(workdir) == ["src", "src/lib", "src/lib/a.py", "src/run-tests.sh"]
        assert (workdir / "src/lib/a.py").read_bytes() == b"x = 1\n"
    assert record.uri == f"s3://{s3_bucket}/subs/alice.zip"
    assert (record.size, record.sha256) == (len(archive), hashlib.sha256(archive).hexdigest())


def test_tar_xz_and_a_plain_file_over_http(
    web: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = web
    files["/data/set.tar.xz"] = tar_bytes({"set/a.csv": b"a\n1\n"}, "w:xz")
    files["/data/notes.txt"] = b"plain"
    files["/data/keep.zip"] = zip_bytes({"x": b"y"})
    inputs = [
        {"from": f"{base}/data/set.tar.xz", "unpack": "tar"},
        {"from": f"{base}/data/notes.txt", "to": "docs/"},
        {"from": f"{base}/data/keep.zip", "to": "raw/k.zip", "unpack": "none"},
    ]
    with work_directory(tmp_path, "job-1", 1) as workdir:
        fetch(inputs, workdir)
        assert tree(workdir) == ["docs", "docs/notes.txt", "raw", "raw/k.zip", "set", "set/a.csv"]
        assert (workdir / "raw/k.zip").read_bytes() == files["/data/keep.zip"]


def test_a_missing_object_is_cannot_fetch_input(s3_bucket: str, tmp_path: Path) -> None:
    with work_directory(tmp_path, "job-1", 1) as workdir:
        with pytest.raises(StagingError) as caught:
            fetch([{"from": f"s3://{s3_bucket}/subs/${{payload.submission}}.zip"}], workdir)
        assert caught.value.reason == CANNOT_FETCH_INPUT
        assert str(caught.value) == f"inputs[0]: s3://{s3_bucket}/subs/alice.zip: no such object"
        assert tree(workdir) == []


def test_a_payload_value_cannot_climb_out_of_the_key(s3_bucket: str, tmp_path: Path) -> None:
    values = dict(VALUES, payload={"submission": "../secrets/x"})

    async def go(workdir: Path) -> None:
        stores = ObjectStores()
        try:
            spec = parse_inputs([{"from": f"s3://{s3_bucket}/subs/${{payload.submission}}"}])
            await fetch_inputs(spec, workdir, values=values, objects=stores)
        finally:
            await stores.aclose()

    with work_directory(tmp_path, "job-1", 1) as workdir:
        with pytest.raises(StagingError) as caught:
            asyncio.run(go(workdir))
        assert caught.value.reason == CANNOT_FETCH_INPUT
        assert "inputs[0].from: " in str(caught.value)
        assert "a payload value may not hold '/' or be '..'" in str(caught.value)


def test_an_unreachable_host_is_cannot_fetch_input(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with work_directory(tmp_path, "job-1", 1) as workdir:
        with pytest.raises(StagingError) as caught:
            fetch([{"from": f"http://127.0.0.1:{port}/a.zip"}], workdir)
        assert caught.value.reason == CANNOT_FETCH_INPUT
        assert f"inputs[0]: GET http://127.0.0.1:{port}/a.zip: ConnectError" in str(caught.value)


def test_an_error_status_is_cannot_fetch_input(
    web: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, _files = web
    with work_directory(tmp_path, "job-1", 1) as workdir:
        with pytest.raises(StagingError, match="HTTP 404") as caught:
            fetch([{"from": f"{base}/missing.zip"}], workdir)
        assert caught.value.reason == CANNOT_FETCH_INPUT


def test_an_address_the_egress_gate_refuses_is_cannot_fetch_input(
    web: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = web
    files["/a.zip"] = zip_bytes({"a": b"a"})
    with work_directory(tmp_path, "job-1", 1) as workdir:
        with pytest.raises(StagingError) as caught:
            fetch(
                [{"from": f"{base}/a.zip"}], workdir, policy=WorkerPolicy(http_allow_private=False)
            )
        assert caught.value.reason == CANNOT_FETCH_INPUT
        assert "127.0.0.1 is a loopback address" in str(caught.value)
        assert tree(workdir) == []


def test_a_download_past_max_bytes_is_rejected(
    web: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = web
    files["/big.bin"] = os.urandom(5000)
    with work_directory(tmp_path, "job-1", 1) as workdir:
        with pytest.raises(StagingError) as caught:
            fetch([{"from": f"{base}/big.bin", "limits": {"max_bytes": 4096}}], workdir)
        assert caught.value.reason == INPUT_REJECTED
        assert "larger than max_bytes=4096" in str(caught.value)
        assert tree(workdir) == []


def test_file_sources_need_allow_files(tmp_path: Path) -> None:
    source = tmp_path / "host.txt"
    source.write_text("host file")
    with work_directory(tmp_path / "work", "job-1", 1) as workdir:
        with pytest.raises(StagingError, match="does not allow them") as caught:
            fetch([{"from": source.as_uri()}], workdir)
        assert caught.value.reason == CANNOT_FETCH_INPUT
        fetch([{"from": source.as_uri()}], workdir, allow_files=True)
        assert (workdir / "host.txt").read_text() == "host file"


def test_a_hostile_archive_from_s3_is_rejected_leaving_nothing(
    s3: Any, s3_bucket: str, tmp_path: Path
) -> None:
    s3.put_object(
        Bucket=s3_bucket, Key="subs/alice.zip", Body=zip_bytes({"ok": b"1", "../evil": b"x"})
    )
    work_root = tmp_path / "work"
    with work_directory(work_root, "job-1", 1) as workdir:
        with pytest.raises(StagingError) as caught:
            fetch([{"from": f"s3://{s3_bucket}/subs/alice.zip", "to": "src"}], workdir)
        assert caught.value.reason == INPUT_REJECTED
        assert "inputs[0]: entry '../evil' refused" in str(caught.value)
        assert tree(workdir) == []
    assert tree(work_root) == [] and sorted(os.listdir(tmp_path)) == ["work"]


# -- outputs ----------------------------------------------------------------------------------


def test_outputs_matching_a_glob_are_uploaded_with_size_and_sha256(
    s3: Any, s3_bucket: str, tmp_path: Path
) -> None:
    with work_directory(tmp_path, "job-1", 1) as workdir:
        (workdir / "report").mkdir()
        (workdir / "report/a.json").write_text('{"passed": 3}')
        (workdir / "report/b.json").write_text('{"failed": 1}')
        (workdir / "report/notes.txt").write_text("not matched")
        outputs = [{"path": "report/*.json", "to": f"s3://{s3_bucket}/${{job.id}}/"}]
        records = upload(outputs, workdir, True)
    assert [(r.uri, r.path, r.size) for r in records] == [
        (f"s3://{s3_bucket}/job-1/a.json", "report/a.json", 13),
        (f"s3://{s3_bucket}/job-1/b.json", "report/b.json", 13),
    ]
    body = s3.get_object(Bucket=s3_bucket, Key="job-1/a.json")["Body"].read()
    assert body == b'{"passed": 3}'
    assert records[0].sha256 == hashlib.sha256(body).hexdigest()
    listed = s3.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == ["job-1/a.json", "job-1/b.json"]


@pytest.mark.parametrize(
    ("succeeded", "expected"), [(True, ["always", "ok"]), (False, ["always", "bad"])]
)
def test_when_chooses_outputs_by_outcome(
    s3: Any, s3_bucket: str, tmp_path: Path, succeeded: bool, expected: list[str]
) -> None:
    with work_directory(tmp_path, "job-1", 1) as workdir:
        for name in ("ok", "bad", "always"):
            (workdir / name).write_text(name)
        outputs = [
            {"path": "ok", "to": f"s3://{s3_bucket}/out/ok", "when": "success"},
            {"path": "bad", "to": f"s3://{s3_bucket}/out/bad", "when": "failure"},
            {"path": "always", "to": f"s3://{s3_bucket}/out/", "when": "always"},
        ]
        records = upload(outputs, workdir, succeeded)
    assert sorted(r.path for r in records) == expected
    listed = s3.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == [f"out/{name}" for name in expected]


def test_a_missing_output_is_a_reason_and_the_others_are_still_uploaded(
    s3_bucket: str, tmp_path: Path
) -> None:
    with work_directory(tmp_path, "job-1", 1) as workdir:
        (workdir / "log.txt").write_text("log")
        outputs = [
            {"path": "report/*.json", "to": f"s3://{s3_bucket}/r/", "when": "always"},
            {"path": "log.txt", "to": f"s3://{s3_bucket}/r/log.txt", "when": "always"},
        ]
        with pytest.raises(OutputsError) as caught:
            upload(outputs, workdir, True)
    assert caught.value.reason == OUTPUT_MISSING
    assert str(caught.value) == (
        "outputs[0].path: 'report/*.json' matched no file in the work directory"
    )
    assert [r.uri for r in caught.value.uploaded] == [f"s3://{s3_bucket}/r/log.txt"]


def test_an_output_that_is_a_link_is_not_uploaded(s3: Any, s3_bucket: str, tmp_path: Path) -> None:
    with work_directory(tmp_path, "job-1", 1) as workdir:
        (workdir / "out").mkdir()
        (workdir / "out/passwd").symlink_to("/etc/passwd")  # planted by a job
        (workdir / "out/real.txt").write_text("real")
        with pytest.raises(OutputsError) as caught:
            upload([{"path": "out", "to": f"s3://{s3_bucket}/o/"}], workdir, True)
    assert caught.value.reason == OUTPUT_MISSING
    assert "'out/passwd' is a link: not uploaded" in str(caught.value)
    listed = s3.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["o/out/real.txt"]


# -- definitions: refused at register time, naming the field ------------------------------------

BAD_DEFINITIONS = [
    ({"inputs": [{"from": "ftp://host/a.zip"}]}, "inputs[0].from", "unknown scheme"),
    ({"inputs": [{"from": "${payload.url}"}]}, "inputs[0].from", "unknown scheme"),
    ({"inputs": [{"from": "s3://b/${payload.a b}"}]}, "inputs[0].from", "unknown placeholder"),
    ({"inputs": [{"from": "s3://${payload.b}/k"}]}, "inputs[0].from", "bucket must be written"),
    ({"inputs": [{"from": "https://${payload.h}/k"}]}, "inputs[0].from", "host must be written"),
    ({"inputs": [{"from": "file:///${payload.p}"}]}, "inputs[0].from", "folder must be written"),
    ({"inputs": [{"from": "s3://b/"}]}, "inputs[0].from", "must name an object"),
    ({"inputs": [{"from": "s3://b/k", "to": "../up"}]}, "inputs[0].to", "climb out"),
    ({"inputs": [{"from": "s3://b/k", "to": "/etc"}]}, "inputs[0].to", "relative"),
    ({"inputs": [{"from": "s3://b/k", "to": "${payload.dir}"}]}, "inputs[0].to", "placeholders"),
    ({"inputs": [{"from": "s3://b/k", "unpack": "rar"}]}, "inputs[0].unpack", "auto, zip"),
    (
        {"inputs": [{"from": "s3://b/k", "limits": {"max_entries": 0}}]},
        "inputs[0].limits.max_entries",
        "from 1 to",
    ),
    (
        {"inputs": [{"from": "s3://b/k", "limits": {"max_ratio": "big"}}]},
        "inputs[0].limits.max_ratio",
        "a number",
    ),
    ({"inputs": [{"from": "s3://b/k", "size": 1}]}, "inputs[0].size", "not a field"),
    (
        {"outputs": [{"path": "a", "to": "s3://b/a"}, {"path": "../x", "to": "s3://b/"}]},
        "outputs[1].path",
        "climb out",
    ),
    ({"outputs": [{"path": "/abs/x", "to": "s3://b/"}]}, "outputs[0].path", "relative"),
    ({"outputs": [{"path": "a", "to": "https://x/"}]}, "outputs[0].to", "unknown scheme"),
    ({"outputs": [{"path": "a", "to": "file:///tmp/x/"}]}, "outputs[0].to", "unknown scheme"),
    ({"outputs": [{"path": "a", "to": "s3://b/", "when": "never"}]}, "outputs[0].when", "always"),
    ({"outputs": [{"path": "*.json", "to": "s3://b/one"}]}, "outputs[0].to", "end with '/'"),
    ({"outputs": "a"}, "outputs", "list"),
]


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("fields", "field", "rule"), BAD_DEFINITIONS)
def test_bad_inputs_and_outputs_are_refused_at_register(
    client: Client, fields: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        client.register({"executor": "process", "command": ["true"], **fields}, name="grade")
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert client.definitions() == []


@pytest.mark.sqlite_only
def test_inputs_and_outputs_are_registered_and_read_back(client: Client) -> None:
    inputs = [
        {
            "from": "s3://subs/${payload.id}.zip",
            "to": "src",
            "unpack": "zip",
            "limits": {"max_entries": 500, "max_bytes": 1000000, "max_ratio": 20},
        }
    ]
    outputs = [{"path": "report/*.json", "to": "s3://results/${job.id}/", "when": "always"}]
    fields = {"executor": "process", "command": ["true"], "inputs": inputs, "outputs": outputs}
    client.register(fields, name="grade")
    spec = client.definition("grade").spec
    assert spec.inputs == parse_inputs(inputs) and spec.outputs == parse_outputs(outputs)
    assert spec.inputs[0].limits.max_entries == 500
    client.register({"executor": "process", "command": ["true"]}, name="plain")
    assert client.definition("plain").spec.inputs == ()


def test_a_payload_lacking_a_placeholder_field_is_refused_at_submit() -> None:
    inputs = parse_inputs([{"from": "s3://subs/${payload.id}.zip"}])
    outputs = parse_outputs([{"path": "r", "to": "s3://res/${payload.user.name}/"}])
    check_placeholders(inputs, outputs, {"id": 7, "user": {"name": "bo"}})
    with pytest.raises(ValidationError) as caught:
        check_placeholders(inputs, outputs, {"user": {"name": "bo"}})
    assert caught.value.field == "inputs[0].from" and "${payload.id}" in caught.value.rule
    with pytest.raises(ValidationError) as caught:
        check_placeholders(inputs, outputs, {"id": 7, "user": "bo"})
    assert caught.value.field == "outputs[0].to"


def test_a_payload_value_with_spaces_names_the_key_as_written(
    s3: Any, s3_bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=s3_bucket, Key="subs/alice smith.txt", Body=b"hi")
    values = dict(VALUES, payload={"submission": "alice smith"})

    async def go(workdir: Path) -> None:
        stores = ObjectStores()
        try:
            spec = parse_inputs([{"from": f"s3://{s3_bucket}/subs/${{payload.submission}}.txt"}])
            await fetch_inputs(spec, workdir, values=values, objects=stores)
        finally:
            await stores.aclose()

    with work_directory(tmp_path, "job-1", 1) as workdir:
        asyncio.run(go(workdir))
        assert (workdir / "alice smith.txt").read_bytes() == b"hi"


def test_the_whole_work_directory_as_output(s3: Any, s3_bucket: str, tmp_path: Path) -> None:
    with work_directory(tmp_path, "job-1", 1) as workdir:
        (workdir / "a").mkdir()
        (workdir / "a/b.txt").write_text("b")
        (workdir / "c.txt").write_text("c")
        records = upload([{"path": ".", "to": f"s3://{s3_bucket}/all/"}], workdir, True)
    assert sorted(r.uri for r in records) == [
        f"s3://{s3_bucket}/all/a/b.txt",
        f"s3://{s3_bucket}/all/c.txt",
    ]
