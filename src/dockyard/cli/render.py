"""Human tables (rich) and JSON for scripts.

A stored payload or result nested too deep to show is printed as null with the reason beside it
(``payload_error``), as the API gives it: one such job never breaks a list.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dockyard.cli.text import table_cell
from dockyard.domain.documents import definition_summary, job_document
from dockyard.domain.fields import MAX_DEPTH, too_deep
from dockyard.domain.records import Definition, Job
from dockyard.domain.rules import Invocation, Rule, invocation_document, rule_document
from dockyard.domain.scheduling import Schedule, schedule_document

__all__ = [
    "print_definitions",
    "print_events",
    "print_invocations",
    "print_job",
    "print_jobs",
    "print_json",
    "print_rule",
    "print_rules",
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
        table.add_row(*(table_cell(cell) for cell in row))  # stored text: never markup
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
        print_json([_job_document(job) for job in jobs])
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
    doc = _job_document(job)
    if as_json:
        print_json(doc)
        return
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
    outputs = [(a.number, o) for a in job.attempts for o in a.outputs]
    if outputs:
        print()
        print_table(
            ("ATTEMPT", "OUTPUT", "URI", "SIZE", "SHA256"),
            [(number, o.path, o.uri, o.size, o.sha256) for number, o in outputs],
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


def print_events(events: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(list(events))
        return
    print_table(
        ("TIME", "SOURCE", "DETAIL TYPE", "ID", "RESOURCES"),
        [
            (e["time"], e["source"], e["detail-type"], e["id"], " ".join(e["resources"]))
            for e in events
        ],
    )


def print_rules(rules: Sequence[Rule], as_json: bool) -> None:
    if as_json:
        print_json([rule_document(rule) for rule in rules])
        return
    print_table(
        ("NAME", "STATE", "TARGETS", "DESCRIPTION", "EVENT PATTERN"),
        [
            (
                rule.name,
                rule.state,
                " ".join(f"{t.id}({t.kind})" for t in rule.spec.targets),
                rule.spec.description,
                rule.spec.event_pattern,
            )
            for rule in rules
        ],
    )


def print_rule(rule: Rule, as_json: bool) -> None:
    doc = rule_document(rule)
    if as_json:
        print_json(doc)
        return
    targets = doc.pop("targets")
    fields = [(key, value) for key, value in doc.items() if value not in (None, {}, [])]
    fields += [
        (f"targets.{target['id']}.{key}", value)
        for target in targets
        for key, value in target.items()
        if key != "id" and value not in (None, {}, [])
    ]
    print_table(("FIELD", "VALUE"), [(key, _cell(value)) for key, value in fields])


def print_invocations(invocations: Sequence[Invocation], as_json: bool) -> None:
    """A rule's history: when each try ended, and what it made or why it failed."""
    if as_json:
        print_json([invocation_document(invocation) for invocation in invocations])
        return
    print_table(
        ("TIME", "TARGET", "STATE", "ATTEMPTS", "EVENT", "RESULT"),
        [
            (
                _when(i.updated_at),
                i.target,
                i.state.value,
                i.attempts,
                i.event_id,
                i.error if i.result is None else i.result,
            )
            for i in invocations
        ],
    )


#: Why a stored value is printed as null (the API says the same).
UNRENDERABLE = f"cannot be shown: it nests deeper than {MAX_DEPTH} levels of lists and objects"


def _job_document(job: Job) -> dict[str, Any]:
    document = job_document(job)
    for key in ("payload", "result"):
        if too_deep(document[key]):
            document[key], document[f"{key}_error"] = None, UNRENDERABLE
    return document


def _cell(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
