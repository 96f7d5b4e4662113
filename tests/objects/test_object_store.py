"""The object store's behaviour, the same on a local folder and on S3 (moto's S3 emulator).

What a user of the port relies on: bytes come back as they went in, with their SHA-256; large
objects stream (and go up in parts on S3); reads start at any offset; listings and deletes work
past S3's 1000-a-request pages; bad keys and corrupt objects are refused with clear errors.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import ValidationError
from dockyard.objects import (
    ChecksumMismatchError,
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
)
from tests.helpers.loops import Run

MiB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


def backdoor(kind: str, store: ObjectStore) -> Any:
    """Write behind the store's back: a boto3 client on the emulator, or the folder itself."""
    if kind == "s3":
        import boto3

        return boto3.client("s3")
    return Path(store.url.removeprefix("file://"))


def write_behind(kind: str, store: ObjectStore, key: str, data: bytes, **metadata: str) -> None:
    """Put ``data`` at ``key`` as another tool would: with only the metadata given (S3), or as a
    plain file with the store's record of it left as it was (local)."""
    if kind == "s3":
        bucket, _, prefix = store.url.removeprefix("s3://").partition("/")
        backdoor(kind, store).put_object(
            Bucket=bucket, Key=f"{prefix}/{key}", Body=data, Metadata=metadata
        )
    else:
        path = backdoor(kind, store) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_small_object_round_trip_keeps_bytes_type_and_checksum(
    store: ObjectStore, run: Run, tmp_path: Path
) -> None:
    data = b'{"passed": 12, "failed": 1}\n'
    info = run(store.put("results/sub-1/summary.json", data, content_type="application/json"))
    assert (info.key, info.size, info.sha256) == (
        "results/sub-1/summary.json",
        len(data),
        sha(data),
    )

    head = run(store.head("results/sub-1/summary.json"))
    assert head is not None
    assert (head.size, head.sha256, head.content_type) == (len(data), sha(data), "application/json")

    got = run(store.get("results/sub-1/summary.json", tmp_path / "out" / "summary.json"))
    assert (tmp_path / "out" / "summary.json").read_bytes() == data
    assert got.sha256 == sha(data)
    assert run(collect(store.iter_chunks("results/sub-1/summary.json"))) == data


def test_large_object_from_a_file_and_from_a_stream_round_trips(
    store: ObjectStore, run: Run, tmp_path: Path
) -> None:
    data = os.urandom(20 * MiB)  # above the multipart threshold: S3 gets it in parts
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    assert run(store.put("big/from-file", source)).sha256 == sha(data)

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 3 * MiB + 7):  # odd chunk sizes, as a socket gives
            yield data[start : start + 3 * MiB + 7]

    assert run(store.put("big/from-stream", stream())).sha256 == sha(data)
    for key in ("big/from-file", "big/from-stream"):
        got = run(store.get(key, tmp_path / key))
        assert (got.size, got.sha256) == (len(data), sha(data))
        assert (tmp_path / key).read_bytes() == data


def test_sync_streams_and_file_objects_are_sources_too(store: ObjectStore, run: Run) -> None:
    chunks = [b"line 1\n", b"line 2\n"]
    assert run(store.put("a/iterable", iter(chunks))).sha256 == sha(b"".join(chunks))
    with (Path(__file__)).open("rb") as file:
        info = run(store.put("a/file-object", file))
    assert info.sha256 == sha(Path(__file__).read_bytes())
    with pytest.raises(TypeError):
        run(store.put("a/text", "not bytes"))  # type: ignore[arg-type]


def test_streaming_reads_start_at_any_offset(store: ObjectStore, run: Run) -> None:
    data = os.urandom(3 * MiB + 123)
    run(store.put("logs/j1/1.log", data))
    for offset in (0, 1, MiB, len(data) - 1):
        assert run(collect(store.iter_chunks("logs/j1/1.log", offset))) == data[offset:]
    assert run(collect(store.iter_chunks("logs/j1/1.log", len(data)))) == b""
    assert run(collect(store.iter_chunks("logs/j1/1.log", len(data) + 10))) == b""
    assert all(len(chunk) <= MiB for chunk in run(_chunks_of(store.iter_chunks("logs/j1/1.log"))))

    async def read_in_pieces() -> list[bytes]:
        async with store.open_read("logs/j1/1.log") as reader:
            return [await reader.read(10), await reader.read(MiB), await reader.read()]

    first, second, rest = run(read_in_pieces())
    assert (first, second, rest) == (data[:10], data[10 : 10 + MiB], data[10 + MiB :])


async def _chunks_of(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


def test_missing_objects(store: ObjectStore, run: Run, tmp_path: Path) -> None:
    assert run(store.head("no/such/object")) is None
    with pytest.raises(ObjectNotFoundError, match="no/such/object"):
        run(store.get("no/such/object", tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ObjectNotFoundError):
        run(collect(store.iter_chunks("no/such/object")))


def test_list_is_in_key_order_across_pages_and_delete_batches(store: ObjectStore, run: Run) -> None:
    import asyncio

    names = [f"logs/job-{index:04d}.log" for index in range(1001)]  # past one page of 1000

    async def put_all() -> None:
        await asyncio.gather(*(store.put(name, name.encode()) for name in names))

    run(put_all())
    run(store.put("logs-other/x", b"x"))
    run(store.put("outputs/a/b", b"ab"))
    listed = run(keys(store, "logs/"))
    assert listed == names
    assert run(keys(store, "logs")) == ["logs-other/x", *names]  # '-' sorts before '/'
    assert run(keys(store, "outputs/a/")) == ["outputs/a/b"]

    # One call with 1002 keys: two requests on S3; the missing key is no error.
    run(store.delete([*names, "logs/never-written"]))
    assert run(keys(store)) == ["logs-other/x", "outputs/a/b"]
    assert run(store.head(names[0])) is None and run(store.head(names[-1])) is None


def test_list_gives_sizes(store: ObjectStore, run: Run) -> None:
    run(store.put("p/one", b"1"))
    run(store.put("p/three", b"333"))

    async def sizes() -> dict[str, int]:
        return {info.key: info.size async for info in store.list("p/")}

    assert run(sizes()) == {"p/one": 1, "p/three": 3}


def test_put_replaces_an_object(store: ObjectStore, run: Run, tmp_path: Path) -> None:
    run(store.put("state", b"old"))
    run(store.put("state", b"new contents"))
    assert run(store.get("state", tmp_path / "state")).sha256 == sha(b"new contents")
    assert (tmp_path / "state").read_bytes() == b"new contents"


def test_a_failed_put_leaves_nothing(store: ObjectStore, run: Run) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"half of it"
        raise ConnectionResetError("the uploader went away")

    with pytest.raises(ConnectionResetError):
        run(store.put("partial", broken()))
    assert run(store.head("partial")) is None
    assert run(keys(store)) == []


@pytest.mark.parametrize(
    "bad",
    ["", "/etc/passwd", "../escape", "a/../../escape", "a//b", "a/", "./a", "a/./b", "a\\b",
     "a\x00b", ".dockyard/meta/x", "x" * 1025],
)  # fmt: skip
def test_bad_keys_are_refused_naming_the_field(
    store: ObjectStore, run: Run, tmp_path: Path, bad: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        run(store.put(bad, b"data"))
    assert refused.value.field == "key"
    with pytest.raises(ValidationError):
        run(store.get(bad, tmp_path / "out"))
    with pytest.raises(ValidationError):
        run(store.head(bad))
    with pytest.raises(ValidationError):
        run(store.delete(["fine", bad]))
    assert run(keys(store)) == []
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("bad", ["/logs", "../", "a//", "a/../b", ".dockyard/"])
def test_bad_list_prefixes_are_refused(store: ObjectStore, run: Run, bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        run(keys(store, bad))
    assert refused.value.field == "prefix"


def test_a_corrupt_object_is_detected(
    kind: str, store: ObjectStore, run: Run, tmp_path: Path
) -> None:
    data = b"the original submission\n" * 1000
    recorded = run(store.put("subs/42.zip", data)).sha256
    assert recorded is not None
    corrupt = bytearray(data)
    corrupt[100] ^= 0xFF  # one bit flipped, same size
    write_behind(kind, store, "subs/42.zip", bytes(corrupt), sha256=recorded)

    (tmp_path / "42.zip").write_bytes(b"what was there before")
    with pytest.raises(ChecksumMismatchError, match="SHA-256 mismatch") as mismatch:
        run(store.get("subs/42.zip", tmp_path / "42.zip"))
    assert mismatch.value.expected == sha(data) and mismatch.value.actual == sha(bytes(corrupt))
    assert "subs/42.zip" in str(mismatch.value)
    assert (tmp_path / "42.zip").read_bytes() == b"what was there before"
    assert sorted(os.listdir(tmp_path)) == ["42.zip"] + (["objects"] if kind == "local" else [])
    with pytest.raises(ChecksumMismatchError):
        run(collect(store.iter_chunks("subs/42.zip")))


def test_objects_written_by_other_tools_are_read_and_hashed(
    kind: str, store: ObjectStore, run: Run, tmp_path: Path
) -> None:
    data = b"PK\x03\x04 a zip someone uploaded with aws s3 cp"
    write_behind(kind, store, "subs/7.zip", data)
    head = run(store.head("subs/7.zip"))
    assert head is not None and (head.size, head.sha256) == (len(data), None)
    assert run(store.get("subs/7.zip", tmp_path / "7.zip")).sha256 == sha(data)
    assert (tmp_path / "7.zip").read_bytes() == data


def test_presigned_url_downloads_the_object(kind: str, store: ObjectStore, run: Run) -> None:
    data = b"feedback for submission 42\n"
    run(store.put("logs/42/run.log", data))
    url = run(store.presigned_url("logs/42/run.log", expires_in=300))
    if kind == "s3":
        import httpx

        assert "X-Amz-Signature=" in url  # SigV4, as AWS requires
        assert httpx.get(url).content == data  # no credentials needed
    else:
        # The local store's link works on its own machine only; the API serves local objects.
        assert url.startswith("file:///")
        assert Path(url.removeprefix("file://")).read_bytes() == data


def test_uri_names_the_object_in_full(kind: str, store: ObjectStore, store_url: str) -> None:
    assert store.uri("logs/1/2.log") == f"{store_url}/logs/1/2.log"
    assert store.url == store_url


def test_an_unusable_store_gives_a_clear_error(
    kind: str, tmp_path: Path, run: Run, request: pytest.FixtureRequest
) -> None:
    from dockyard.objects import open_object_store

    if kind == "s3":
        request.getfixturevalue("s3_bucket")  # the emulator's environment
        url, name = "s3://no-such-bucket-dockyard/p", "'no-such-bucket-dockyard'"
    else:
        (tmp_path / "a-file").write_text("not a folder")
        url, name = (tmp_path / "a-file" / "objects").as_uri(), str(tmp_path / "a-file")
    broken = open_object_store(url)
    try:
        attempts: list[Callable[[], Coroutine[Any, Any, object]]] = [
            broken.check,
            lambda: broken.put("k", b"data"),
            lambda: broken.head("k"),
            lambda: broken.get("k", tmp_path / "k"),
            lambda: keys(broken),
            lambda: collect(broken.iter_chunks("k")),
            lambda: broken.delete(["k"]),
        ]
        for attempt in attempts:
            with pytest.raises(ObjectStoreError, match=name):
                run(attempt())
    finally:
        run(broken.close())


def test_a_large_object_never_sits_whole_in_memory(
    store: ObjectStore, run: Run, tmp_path: Path
) -> None:
    import tracemalloc

    size = 40 * MiB

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(size // MiB):
            yield os.urandom(MiB)

    async def round_trip() -> int:
        await store.put("big/stream", stream())
        await store.get("big/stream", tmp_path / "big")
        return sum([len(chunk) async for chunk in store.iter_chunks("big/stream")])

    run(store.check())  # connections and the client are made before we count
    tracemalloc.start()
    try:
        assert run(round_trip()) == size
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size // 2, f"{peak / MiB:.1f} MiB held at once for a {size // MiB} MiB object"
