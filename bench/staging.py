"""Per-job staging overhead: an input fetched and unzipped, an output uploaded — through
Dockyard's staging functions vs the same by hand with boto3 and zipfile, on the same S3 server.

Run from the repository root, with an S3-compatible server at ``--endpoint`` (scripts/services
starts moto's S3 emulator at http://127.0.0.1:5055)::

    python -m bench.staging              # a 1 MiB zip, medians of 21 rounds each
    python -m bench.staging --rounds 7

One round, each way:

- **dockyard**: ``work_directory`` (a fresh folder, removed after), ``fetch_inputs`` of
  ``s3://bucket/subs/${payload.id}.zip`` with ``unpack: zip`` (streamed GET through the object
  store port, SHA-256 verified, every entry checked against the archive rules, unpacked into a
  scratch folder then moved into place), then ``upload_outputs`` of one 64 KiB report (links
  refused, SHA-256 recorded and checked by the server);
- **by hand**: a temporary folder, ``client.download_file``, ``ZipFile.extractall``, write the
  same report, ``client.upload_file``, remove the folder — no checks at all.

Rounds alternate so that warm-up and caches favour neither; the ratio of the medians is the
overhead (target ≤ 1.2×). Against moto on the same two cores the transfers are CPU-bound.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from dockyard.domain.staging import parse_inputs, parse_outputs
from dockyard.executors.staging import ObjectStores, fetch_inputs, upload_outputs, work_directory

MiB = 1 << 20
REPORT = os.urandom(64 << 10)


def make_zip() -> bytes:
    """About 1 MiB: 40 random files (incompressible) and 40 text files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for i in range(40):
            zipped.writestr(f"data/blob{i:02}.bin", os.urandom(24 << 10))
            zipped.writestr(f"src/module{i:02}.py", f"def f{i}():\n    return {i}\n" * 400)
    return buffer.getvalue()


async def dockyard_round(stores: ObjectStores, bucket: str, root: Path) -> float:
    inputs = parse_inputs([{"from": f"s3://{bucket}/subs/${{payload.id}}.zip", "unpack": "zip"}])
    outputs = parse_outputs([{"path": "report.json", "to": f"s3://{bucket}/out/${{job.id}}/"}])
    job = uuid.uuid4().hex
    values = {"payload": {"id": "sub"}, "job.id": job, "job.name": None, "job.attempt": 1}
    started = time.perf_counter()
    with work_directory(root, job, 1) as workdir:
        await fetch_inputs(inputs, workdir, values=values, objects=stores)
        (workdir / "report.json").write_bytes(REPORT)
        await upload_outputs(outputs, workdir, True, values=values, objects=stores)
    return time.perf_counter() - started


def by_hand_round(client: Any, bucket: str, root: Path) -> float:
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(dir=root))
    try:
        archive = workdir / "sub.zip"
        client.download_file(bucket, "subs/sub.zip", str(archive))
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(workdir)
        archive.unlink()
        (workdir / "report.json").write_bytes(REPORT)
        client.upload_file(str(workdir / "report.json"), bucket, f"hand/{uuid.uuid4().hex}.json")
    finally:
        shutil.rmtree(workdir)
    return time.perf_counter() - started


async def measure(endpoint: str, rounds: int) -> dict[str, float]:
    import boto3

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
    bucket = f"dockyard-bench-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    archive = make_zip()
    client.put_object(Bucket=bucket, Key="subs/sub.zip", Body=archive)
    stores = ObjectStores()
    ours: list[float] = []
    theirs: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            await dockyard_round(stores, bucket, root)  # connections, models, imports
            by_hand_round(client, bucket, root)
            for _ in range(rounds):
                ours.append(await dockyard_round(stores, bucket, root))
                theirs.append(by_hand_round(client, bucket, root))
    finally:
        await stores.aclose()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects})
        client.delete_bucket(Bucket=bucket)
    return {
        "archive_mib": len(archive) / MiB,
        "dockyard_s": statistics.median(ours),
        "by_hand_s": statistics.median(theirs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="http://127.0.0.1:5055")
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    row = asyncio.run(measure(args.endpoint, args.rounds))
    ratio = row["dockyard_s"] / row["by_hand_s"]
    print(
        f"fetch + unzip of a {row['archive_mib']:.2f} MiB zip and one 64 KiB output upload,"
        f" medians of {args.rounds} ({args.endpoint})"
    )
    print(f"dockyard staging  {row['dockyard_s'] * 1000:7.1f} ms")
    print(f"by hand (boto3)   {row['by_hand_s'] * 1000:7.1f} ms")
    print(f"ratio             {ratio:7.2f}×  (target ≤ 1.2×)")


if __name__ == "__main__":
    main()
