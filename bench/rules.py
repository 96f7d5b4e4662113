"""Events through rules: how fast patterns match, how fast the engine routes, and how soon a
registry push becomes a definition revision.

Run from the repository root (PostgreSQL at ``postgresql://postgres@127.0.0.1:5432/test`` unless
``--postgres-url`` says otherwise)::

    python -m bench.rules            # 1,000 rules; 3 rounds; ~3 minutes
    python -m bench.rules --quick    # 1 round, fewer events (~40 s)

Three measurements, each printed as a Markdown table and saved to ``bench/results/rules-*.json``:

1. **Matching**: 1,000 patterns of every operator kind, compiled once, against a stream of events
   (about 1 % of the pairs match), in one process: events per second through all 1,000 rules.
   The peer is moto's EventBridge pattern matcher (``moto.events.models.EventPattern``, the
   Python emulator AWS users test against), run in its own environment (``bench/.venvs/moto``,
   made on first use) on the same rules and events; for it the rules use only the operators it
   knows (no wildcard, ``$or``, cidr or suffix), and Dockyard is timed on that set too. The
   match counts of both are compared: a difference is reported, not hidden.
2. **Routing**: the same 1,000 rules enabled in a store (SQLite, PostgreSQL); events put ten at a
   time (``PutEvents``) beforehand; then the rules engine's rounds are timed until every event
   is routed: events per second, store reads and writes included.
3. **Webhook to revision**: ``python -m dockyard up`` (the real command) with a docker definition
   and a ``register-revision`` rule; a Docker Distribution notification of a manifest push is
   POSTed to ``/v1/webhooks/registry`` as the registry would, and the definition is read every
   5 ms until the new revision is there: p50, p95 and max of that time, per backend.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, percentile, run_meta, save
from bench.postgres import DEFAULT_POSTGRES_URL, fresh_store

MOTO_VENV = REPO / "bench" / ".venvs" / "moto"
MOTO_REQUIREMENT = "moto==5.2.5"
SOURCES = [f"team{n}.service" for n in range(50)]
KINDS = ["Order Placed", "Order Shipped", "Build Done", "Image Pushed", "Disk Full"]


# -- the rules and the events -----------------------------------------------------------------


def _detail(detail: dict[str, Any]) -> Any:
    return lambda rng, source, kind: {"source": [source], "detail-type": [kind], "detail": detail}


#: Pattern shapes by name: (rng, source, detail-type) → pattern. The first six are moto's too.
SHAPES: dict[str, Any] = {
    "exact": lambda rng, source, kind: _detail({"region": [rng.choice(["eu", "us", "ap"])]})(
        rng, source, kind
    ),
    "prefix": lambda rng, source, kind: _detail({"sku": [{"prefix": f"SKU-{rng.randrange(10)}"}]})(
        rng, source, kind
    ),
    "numeric": lambda rng, source, kind: _detail(
        {"total": [{"numeric": [">=", (low := rng.randrange(900)), "<", low + 100]}]}
    )(rng, source, kind),
    "anything-but": _detail({"state": [{"anything-but": ["test", "draft"]}]}),
    "exists": _detail({"customer": {"vip": [{"exists": True}]}}),
    "multi": _detail({"region": ["eu", "us"], "total": [{"numeric": [">", 500]}]}),
    "suffix": _detail({"file": [{"suffix": ".png"}]}),
    "wildcard": _detail({"file": [{"wildcard": "img/*/thumb-*.png"}]}),
    "or": lambda rng, source, kind: {
        "source": [source],
        "$or": [{"detail-type": [kind]}, {"detail": {"urgent": [True]}}],
    },
    "cidr": lambda rng, source, kind: _detail(
        {"ip": [{"cidr": f"10.{rng.randrange(256)}.0.0/16"}]}
    )(rng, source, kind),
    "ignore-case": _detail({"region": [{"equals-ignore-case": "EU"}]}),
}
COMMON_SHAPES = 6


def make_rules(count: int, rng: random.Random, *, common: bool) -> list[dict[str, Any]]:
    """``count`` patterns over SOURCES and KINDS; ``common``: only operators moto knows too."""
    shapes = list(SHAPES.values())[:COMMON_SHAPES] if common else list(SHAPES.values())
    return [
        shapes[index % len(shapes)](rng, rng.choice(SOURCES), rng.choice(KINDS))
        for index in range(count)
    ]


def make_events(count: int, rng: random.Random) -> list[dict[str, Any]]:
    events = []
    for index in range(count):
        detail: dict[str, Any] = {
            "region": rng.choice(["eu", "us", "ap", "EU"]),
            "sku": f"SKU-{rng.randrange(100)}",
            "total": rng.randrange(0, 1000),
            "state": rng.choice(["test", "live", "draft", "live"]),
            "file": rng.choice(["img/a/thumb-1.png", "doc/readme.md", "img/b/full.png"]),
            "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
            "urgent": rng.random() < 0.05,
        }
        if rng.random() < 0.3:
            detail["customer"] = {"vip": True, "name": "x"}
        events.append(
            {
                "version": "0",
                "id": f"event-{index}",
                "detail-type": rng.choice(KINDS),
                "source": rng.choice(SOURCES),
                "account": "123456789012",
                "time": "2026-12-01T10:00:00Z",
                "region": "eu-west-1",
                "resources": [],
                "detail": detail,
            }
        )
    return events


# -- 1. matching --------------------------------------------------------------------------------


def dockyard_matching(
    rules: list[dict[str, Any]], events: list[dict[str, Any]], *, indexed: bool
) -> dict[str, Any]:
    """Every pattern against every event, or through the engine's :class:`RuleIndex`."""
    from datetime import UTC, datetime

    from dockyard.domain.patterns import compile_pattern
    from dockyard.domain.rule_index import RuleIndex
    from dockyard.domain.rules import Rule, parse_rule

    start = time.perf_counter()
    if indexed:
        now = datetime.now(UTC)
        index = RuleIndex(
            [
                Rule(
                    name=f"r{n}",
                    spec=parse_rule({"event_pattern": rule})[0],
                    enabled=True,
                    created_at=now,
                    updated_at=now,
                )
                for n, rule in enumerate(rules)
            ]
        )
        start = time.perf_counter()
        matched = sum(len(index.matching(event)) for event in events)
    else:
        patterns = [compile_pattern(rule) for rule in rules]
        start = time.perf_counter()
        matched = sum(pattern.matches(event) for event in events for pattern in patterns)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "events_per_s": len(events) / seconds, "matches": matched}


MOTO_DRIVER = r"""
import json, sys, time
from moto.events.models import EventPattern
rules, events = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
patterns = [EventPattern.load(json.dumps(rule)) for rule in rules]
start = time.perf_counter()
matched = sum(pattern.matches_event(event) for event in events for pattern in patterns)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "events_per_s": len(events) / seconds, "matches": matched}))
"""


def ensure_moto() -> Path:
    python = MOTO_VENV / "bin" / "python"
    marker = MOTO_VENV / "bench-requirement.txt"
    if not (python.exists() and marker.exists() and marker.read_text() == MOTO_REQUIREMENT):
        print(f"installing {MOTO_REQUIREMENT} in {MOTO_VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(MOTO_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", MOTO_REQUIREMENT], check=True)
        marker.write_text(MOTO_REQUIREMENT)
    return python


def moto_matching(rules: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict[str, Any]:
    python = ensure_moto()
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-rules-") as folder:
        rules_file, events_file = Path(folder) / "rules.json", Path(folder) / "events.json"
        rules_file.write_text(json.dumps(rules))
        events_file.write_text(json.dumps(events))
        done = subprocess.run(
            [str(python), "-c", MOTO_DRIVER, str(rules_file), str(events_file)],
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- 2. routing through the store ---------------------------------------------------------------


async def routing(
    url: str, home: Path, rules: list[dict[str, Any]], events: list[dict[str, Any]]
) -> dict[str, Any]:
    from dockyard.app import Dockyard
    from dockyard.runtime import RulesConfig
    from dockyard.settings import Settings

    app = await Dockyard.open(Settings.resolve(home=home, url=url, environ={}))
    try:
        for offset in range(0, len(rules), 50):
            await asyncio.gather(
                *(
                    app.rules.create({"event_pattern": rule}, name=f"r{index:05d}")
                    for index, rule in enumerate(rules[offset : offset + 50], start=offset)
                )
            )
        entries = [{k: v for k, v in e.items() if k not in ("version", "id")} for e in events]
        for offset in range(0, len(entries), 10):
            await app.events.put(entries[offset : offset + 10])
        engine = app.rules_engine(RulesConfig(batch_size=500))
        start = time.perf_counter()
        routed = 0
        while (report := await engine.run_once()).events:
            routed += report.events
        seconds = time.perf_counter() - start
        assert routed == len(events), (routed, len(events))
        return {"seconds": seconds, "events_per_s": routed / seconds, "events": routed}
    finally:
        await app.close()


# -- 3. webhook to revision ---------------------------------------------------------------------


def _envelope(registry: str, tag: str) -> bytes:
    digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    return json.dumps(
        {
            "events": [
                {
                    "id": f"e-{tag}",
                    "timestamp": "2026-12-01T10:00:00Z",
                    "action": "push",
                    "target": {
                        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                        "digest": digest,
                        "size": 527,
                        "repository": "team/app",
                        "url": f"http://{registry}/v2/team/app/manifests/{digest}",
                        "tag": tag,
                    },
                    "request": {"id": "r", "addr": "127.0.0.1", "host": registry, "method": "PUT"},
                    "actor": {},
                    "source": {"addr": "registry:5000", "instanceID": "x"},
                }
            ]
        }
    ).encode()


def webhook_latency(url: str, home: Path, pushes: int) -> dict[str, Any]:
    import httpx

    from bench.api import free_port

    port = free_port()
    env = {**os.environ, "DOCKYARD_HOME": str(home), "DOCKYARD_URL": url}
    log = (home / "up.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "up", "--port", str(port), "--concurrency", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError((home / "up.log").read_text())
            time.sleep(0.05)
        token = (home / "token").read_text().strip()
        registry = "registry.local:5000"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
            api.post(
                "/v1/definitions",
                json={"name": "app", "executor": "docker", "image": f"{registry}/team/app:v0"},
            ).raise_for_status()
            api.post(
                "/v1/rules",
                json={
                    "name": "deploy-app",
                    "event_pattern": {
                        "source": ["dockyard.registry"],
                        "detail": {"repository": ["team/app"]},
                    },
                    "targets": [{"kind": "register-revision", "definition": "app"}],
                },
            ).raise_for_status()
            latencies = []
            for index in range(pushes):
                start = time.perf_counter()
                api.post(
                    "/v1/webhooks/registry",
                    content=_envelope(registry, f"v{index + 1}"),
                    headers={"Content-Type": "application/vnd.docker.distribution.events.v2+json"},
                ).raise_for_status()
                while api.get("/v1/definitions/app/active").json()["revision"] != index + 2:
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - start)
        return {
            "pushes": pushes,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p95_ms": percentile(latencies, 0.95) * 1000,
            "max_ms": max(latencies) * 1000,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


# -- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rules", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--events", type=int, default=None, help="matched events (default 2,000)")
    parser.add_argument("--routed", type=int, default=None, help="routed events (default 2,000)")
    parser.add_argument("--pushes", type=int, default=None, help="webhook pushes (default 30)")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--no-save", action="store_true")
    options = parser.parse_args(argv)
    quick = options.quick
    runs = options.runs or (1 if quick else 3)
    matched_events = options.events or (500 if quick else 2000)
    routed_events = options.routed or (500 if quick else 2000)
    pushes = options.pushes or (10 if quick else 30)
    meta = run_meta("bench.rules", sys.argv[1:] if argv is None else argv)
    rng = random.Random(20261201)
    full_rules = make_rules(options.rules, rng, common=False)
    common_rules = make_rules(options.rules, rng, common=True)
    events = make_events(max(matched_events, routed_events), rng)

    rounds: list[dict[str, Any]] = []
    for round_number in range(runs):
        print(f"round {round_number + 1} of {runs}", file=sys.stderr)
        row: dict[str, Any] = {
            "dockyard_full": dockyard_matching(full_rules, events[:matched_events], indexed=False),
            "dockyard_indexed": dockyard_matching(
                full_rules, events[:matched_events], indexed=True
            ),
            "dockyard_common": dockyard_matching(
                common_rules, events[:matched_events], indexed=False
            ),
            "moto_common": moto_matching(common_rules, events[:matched_events]),
        }
        for backend in ("sqlite", "postgres"):
            with fresh_store(backend, options.postgres_url) as store:
                row[f"route_{backend}"] = asyncio.run(
                    routing(store.url, store.home, full_rules, events[:routed_events])
                )
            with fresh_store(backend, options.postgres_url) as store:
                row[f"webhook_{backend}"] = webhook_latency(store.url, store.home, pushes)
        rounds.append(row)

    def med(key: str, field: str) -> float:
        return float(statistics.median(row[key][field] for row in rounds))

    ratio = statistics.median(
        row["dockyard_common"]["events_per_s"] / row["moto_common"]["events_per_s"]
        for row in rounds
    )
    agree = all(
        row["dockyard_common"]["matches"] == row["moto_common"]["matches"] for row in rounds
    )
    print(
        f"\n`{meta['command']}` at {meta['git_commit']}: {runs} round(s), medians; "
        f"{options.rules} rules; {os.cpu_count()} CPUs\n"
    )
    print("| matching, in process | events/s through all rules | matches |")
    print("|---|--:|--:|")
    lines = [
        ("Dockyard, every operator kind, each pattern tried", "dockyard_full"),
        ("Dockyard, every operator kind, the engine's index by source", "dockyard_indexed"),
        ("Dockyard, moto's operators, each pattern tried", "dockyard_common"),
    ]
    for label, key in lines:
        print(f"| {label} | {med(key, 'events_per_s'):,.0f} | {rounds[0][key]['matches']:,} |")
    print(
        f"| moto {MOTO_REQUIREMENT.split('==')[1]}, the same rules | "
        f"{med('moto_common', 'events_per_s'):,.0f} | {rounds[0]['moto_common']['matches']:,} |"
    )
    print(
        f"\nDockyard ÷ moto: **{ratio:.1f}×**; match counts "
        + ("agree" if agree else "DIFFER (see the JSON)")
        + "\n"
    )
    print("| backend | routed events/s (put beforehand) | webhook → revision p50 / p95 / max ms |")
    print("|---|--:|--:|")
    for backend in ("sqlite", "postgres"):
        print(
            f"| {backend} | {med(f'route_{backend}', 'events_per_s'):,.0f} | "
            f"{med(f'webhook_{backend}', 'p50_ms'):.0f} / {med(f'webhook_{backend}', 'p95_ms'):.0f}"
            f" / {med(f'webhook_{backend}', 'max_ms'):.0f} |"
        )
    if not options.no_save:
        path = save("rules", {"meta": meta, "rounds": rounds})
        print(f"\nsaved {path.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
