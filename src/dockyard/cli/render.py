"""Human tables (rich) and JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dockyard.domain.documents import definition_summary, job_document
from dockyard.domain.records import Definition, Job
from dockyard.domain.scheduling import Schedule, schedule_document

__all__ = [
    "print_definitions",
    "print_job",
    "print_jobs",
    "print_json",
    "print_schedule",
    "print_schedules",
    "print_table",
]


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, no_wrap=index < len(columns) - 1, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    # Piped output is not cut to 80 columns: ids must stay whole for grep and awk.
    console = Console() if sys.stdout.isatty() else Console(width=400)
    console.print(table)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_definitions(definitions: Sequence[Definition], as_json: bool) -> None:
    if as_json:
        print_json([definition_summary(definition) for definition in definitions])
        return
    print_table(
        ("NAME", "REVISION", "STATUS", "EXECUTOR", "QUEUE", "CREATED"),
        [
            (
                d.name,
                d.revision,
                d.status.value,
                d.spec.executor.kind,
                d.spec.queue,
                _when(d.created_at),
            )
            for d in definitions
        ],
    )


def print_jobs(jobs: Sequence[Job], as_json: bool) -> None:
    if as_json:
        print_json([job_document(job) for job in jobs])
        return
    print_table(
        ("ID", "NAME", "DEFINITION", "STATE", "QUEUE", "ATTEMPTS", "CREATED", "REASON"),
        [
            (
                job.id,
                job.name,
                job.definition_ref,
                job.state.value,
                job.queue,
                f"{job.attempts_used}/{job.max_attempts}",
                _when(job.created_at),
                job.status_reason,
            )
            for job in jobs
        ],
    )


def print_job(job: Job, as_json: bool) -> None:
    if as_json:
        print_json(job_document(job))
        return
    doc = job_document(job)
    fields = [
        (key, value)
        for key, value in doc.items()
        if key != "attempts" and value not in (None, {}, [])
    ]
    print_table(("FIELD", "VALUE"), [(key, _cell(value)) for key, value in fields])
    if job.attempts:
        print()
        print_table(
            ("ATTEMPT", "WORKER", "STARTED", "STOPPED", "EXIT", "REASON", "STATUS REASON"),
            [
                (
                    a.number,
                    a.worker_id,
                    _when(a.started_at),
                    _when(a.stopped_at),
                    a.exit_code,
                    a.reason,
                    a.status_reason,
                )
                for a in job.attempts
            ],
        )


def print_schedules(schedules: Sequence[Schedule], as_json: bool) -> None:
    if as_json:
        print_json([schedule_document(schedule) for schedule in schedules])
        return
    print_table(
        (
            "NAME",
            "STATE",
            "EXPRESSION",
            "TIMEZONE",
            "NEXT FIRE",
            "LAST FIRE",
            "FIRES",
            "LAST ERROR",
        ),
        [
            (
                s.name,
                s.state,
                s.spec.expression,
                s.spec.timezone,
                _when(s.next_fire_at),
                _when(s.last_fire_at),
                s.fires,
                s.last_error,
            )
            for s in schedules
        ],
    )


def print_schedule(schedule: Schedule, as_json: bool) -> None:
    doc = schedule_document(schedule)
    if as_json:
        print_json(doc)
        return
    target = doc.pop("target")
    fields = [(key, value) for key, value in doc.items() if value not in (None, {}, [])]
    fields += [
        (f"target.{key}", value) for key, value in target.items() if value not in (None, {}, [])
    ]
    print_table(("FIELD", "VALUE"), [(key, _cell(value)) for key, value in fields])


def _cell(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
