"""The object store port's overhead over boto3 called directly, on the same S3 server.

Run from the repository root, with an S3-compatible server at ``--endpoint`` (scripts/services
starts moto's S3 emulator at http://127.0.0.1:5055)::

    python -m bench.objects             # 1 MiB and 64 MiB, medians of 5: about a minute
    python -m bench.objects --quick     # 1 MiB and 8 MiB, medians of 3

For each size, one round trip is a put of a file and a get of it to another file:

- **port**: ``S3ObjectStore.put(key, path)`` then ``get(key, dest)`` — the SHA-256 hashed while
  uploading, SHA-256 part checksums checked by the server, the download hashed and compared,
  every boto3 call on a thread off the event loop;
- **boto3**: ``client.upload_file`` then ``client.download_file`` with the same part size and
  concurrency and botocore's default checksums (CRC32), from a plain script.

Rounds alternate between the two so that the server's warm-up and the page cache favour
neither; the ratio of the medians is the port's overhead (target ≤ 1.2×). Against moto, which
runs on the same two cores, transfers are CPU-bound, so the ratio here is an upper bound of
what it is against a real S3 across a network.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from dockyard.objects.s3 import MULTIPART_BYTES, TRANSFER_CONCURRENCY, S3ObjectStore

MiB = 1 << 20


def boto3_round_trip(client: Any, config: Any, bucket: str, source: Path, dest: Path) -> float:
    key = f"boto3/{uuid.uuid4().hex}"
    started = time.perf_counter()
    client.upload_file(str(source), bucket, key, Config=config)
    client.download_file(bucket, key, str(dest), Config=config)
    return time.perf_counter() - started


async def port_round_trip(store: S3ObjectStore, source: Path, dest: Path) -> float:
    key = f"port/{uuid.uuid4().hex}"
    started = time.perf_counter()
    await store.put(key, source)
    await store.get(key, dest)
    return time.perf_counter() - started


async def measure(endpoint: str, sizes: list[int], rounds: int) -> list[dict[str, float]]:
    import boto3
    from boto3.s3.transfer import TransferConfig

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
    bucket = f"dockyard-bench-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    config = TransferConfig(
        multipart_threshold=MULTIPART_BYTES,
        multipart_chunksize=MULTIPART_BYTES,
        max_concurrency=TRANSFER_CONCURRENCY,
    )
    store = S3ObjectStore(bucket, "bench")
    results = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for size in sizes:
                source = Path(folder) / f"source-{size}"
                source.write_bytes(os.urandom(size))
                port_times, boto3_times = [], []
                await port_round_trip(store, source, Path(folder) / "warm")  # connections, models
                boto3_round_trip(client, config, bucket, source, Path(folder) / "warm")
                for _ in range(rounds):
                    port_times.append(await port_round_trip(store, source, Path(folder) / "p"))
                    boto3_times.append(
                        boto3_round_trip(client, config, bucket, source, Path(folder) / "b")
                    )
                port, direct = statistics.median(port_times), statistics.median(boto3_times)
                results.append({"size_mib": size / MiB, "port_s": port, "boto3_s": direct})
    finally:
        await store.close()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects})
        client.delete_bucket(Bucket=bucket)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="http://127.0.0.1:5055")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes, rounds = ([MiB, 8 * MiB], 3) if args.quick else ([MiB, 64 * MiB], 5)
    results = asyncio.run(measure(args.endpoint, sizes, rounds))
    print(f"put + get through the port vs boto3 directly, medians of {rounds} ({args.endpoint})")
    print(f"{'size':>8}  {'port':>9}  {'boto3':>9}  {'ratio':>6}")
    for row in results:
        ratio = row["port_s"] / row["boto3_s"]
        print(
            f"{row['size_mib']:>5.0f} MiB  {row['port_s'] * 1000:>7.1f} ms"
            f"  {row['boto3_s'] * 1000:>7.1f} ms  {ratio:>5.2f}×"
        )


if __name__ == "__main__":
    main()
