"""Opening a store by URL, the settings that name it, and what only one store does.

The S3 tests run against moto's S3 server, an emulator of S3 over real HTTP (scripts/services).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.errors import ValidationError
from dockyard.objects import open_object_store, parse_object_url
from dockyard.objects.local import LocalObjectStore
from dockyard.objects.s3 import S3ObjectStore
from dockyard.settings import Settings
from tests.helpers.loops import Run


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("gs://bucket/prefix", "unknown scheme 'gs'"),
        ("objects", "unknown scheme ''"),
        ("file://relative/folder", "absolute folder"),
        ("file:///srv/../etc", "without '..'"),
        ("s3://AKIA:secret@bucket/p", "must not carry credentials"),
        ("s3:///prefix-without-bucket", "is not a bucket name"),
        ("s3://bucket/a/../b", "'..'"),
        ("s3://bucket/p?region=eu-west-1", "query"),
    ],
)
def test_bad_urls_are_refused_naming_the_field(url: str, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule) as refused:
        open_object_store(url)
    assert refused.value.field == "objects_url"
    with pytest.raises(ValidationError) as named:
        parse_object_url(url, field="inputs[0].from")
    assert named.value.field == "inputs[0].from"


def test_urls_open_their_store(tmp_path: Path) -> None:
    local = open_object_store((tmp_path / "objects").as_uri())
    assert isinstance(local, LocalObjectStore) and local.root == tmp_path / "objects"
    s3 = open_object_store("s3://grading/submissions/2026/")
    assert isinstance(s3, S3ObjectStore)
    assert (s3.bucket, s3.prefix, s3.url) == (
        "grading",
        "submissions/2026/",
        "s3://grading/submissions/2026",
    )
    assert s3.uri("42.zip") == "s3://grading/submissions/2026/42.zip"
    assert open_object_store("s3://grading").uri("42.zip") == "s3://grading/42.zip"


def test_settings_name_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert Settings.resolve(home=home, environ={}).objects_url == f"file://{home}/objects"
    environ = {"DOCKYARD_OBJECTS_URL": "s3://from-env/p"}
    assert Settings.resolve(home=home, environ=environ).objects_url == "s3://from-env/p"
    home.mkdir()
    (home / "config.toml").write_text('objects_url = "s3://from-file/p"\n')
    assert Settings.resolve(home=home, environ={}).objects_url == "s3://from-file/p"
    assert Settings.resolve(home=home, environ=environ).objects_url == "s3://from-env/p"
    (home / "config.toml").write_text("objects_url = 3\n")
    with pytest.raises(ValidationError, match="objects_url"):
        Settings.resolve(home=home, environ={})


def test_the_local_store_never_writes_outside_its_folder(tmp_path: Path, run: Run) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "objects"
    root.mkdir()
    (root / "planted").symlink_to(outside)  # a link someone left in the folder
    store = LocalObjectStore(root)
    try:
        with pytest.raises(ValidationError, match="outside the store's folder"):
            run(store.put("planted/x", b"data"))
        with pytest.raises(ValidationError, match="outside the store's folder"):
            run(store.head("planted/x"))
        assert os.listdir(outside) == []
        run(store.put("inside/x", b"data"))
        assert (root / "inside" / "x").read_bytes() == b"data"
        # The file is where an operator looks for it, and only its owner can read it.
        assert (root / "inside" / "x").stat().st_mode & 0o077 == 0
    finally:
        run(store.close())


def test_large_objects_go_up_to_s3_in_parts(s3_bucket: str, run: Run, tmp_path: Path) -> None:
    import boto3

    store = open_object_store(f"s3://{s3_bucket}/p")
    try:
        data = os.urandom(20 << 20)
        run(store.put("big", data))
        head = boto3.client("s3").head_object(Bucket=s3_bucket, Key="p/big")
        assert head["ETag"].strip('"').endswith("-3")  # three parts of 8 MiB
        assert head["Metadata"]["sha256"] == run(store.head("big")).sha256  # type: ignore[union-attr]
    finally:
        run(store.close())


def test_the_generic_aws_endpoint_variable_reaches_the_server(
    s3_bucket: str, s3_endpoint: str, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # boto3 reads AWS_ENDPOINT_URL (any service) as well as AWS_ENDPOINT_URL_S3 itself.
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    store = open_object_store(f"s3://{s3_bucket}")
    try:
        run(store.check())
        assert run(store.put("k", b"v")).size == 1
    finally:
        run(store.close())


def test_an_unreachable_server_names_the_bucket(
    s3_bucket: str, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on discard
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = open_object_store(f"s3://{s3_bucket}")
    try:
        from dockyard.objects import ObjectStoreError

        with pytest.raises(ObjectStoreError, match=f"'{s3_bucket}' cannot be reached"):
            run(store.head("k"))
    finally:
        run(store.close())
