"""Fixtures of the object-store conformance suite: each test runs on both stores.

``store`` is a local directory store in the test's folder, or an S3 store on a bucket of its own
on moto's S3 server — an emulator of S3, over real HTTP, that scripts/services starts (boto3
talks to it as it would to AWS, through ``AWS_ENDPOINT_URL_S3``). The same tests run on both, so
a store that passes one passes the other.

The store and the test share one event loop for the whole test (an :class:`asyncio.Runner`), as
in tests/storage/: the project has no pytest-asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.objects import ObjectStore, open_object_store


@pytest.fixture(params=["local", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """``file:///<tmp>/objects`` or ``s3://<a new bucket>/some/prefix``."""
    if kind == "local":
        return (tmp_path / "objects").as_uri()
    bucket: str = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/some/prefix"


@pytest.fixture
def store(runner: asyncio.Runner, store_url: str) -> Iterator[ObjectStore]:
    opened = open_object_store(store_url)
    yield opened
    runner.run(opened.close())
