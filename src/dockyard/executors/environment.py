"""The environment a job starts from: the worker's basics, never its secrets.

A worker's own environment holds what it needs to reach its store and its cloud (``PG*``,
``AWS_*``, ``DOCKYARD_*``, tokens of every kind). A job gets none of it: it starts from the
variables every program expects (:data:`BASIC_VARIABLES`, ``LC_*``) plus those the worker's
owner passes through by name (``job_pass_env``), and then its definition's and its submission's
own. A definition may name a worker variable as a *credential* (a signing key, a registry
password) only when the owner's ``credential_env`` patterns allow it, and ``DOCKYARD_*`` and
``PG*`` never.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

__all__ = [
    "BASIC_VARIABLES",
    "NEVER_CREDENTIALS",
    "credential_environment",
    "engine_environment",
    "job_environment",
]

#: What every job gets from its worker, when the worker has it.
BASIC_VARIABLES = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM")
#: Worker variables no definition may name as a credential, whatever the policy lists.
NEVER_CREDENTIALS = ("DOCKYARD_*", "PG*")


def job_environment(worker: Mapping[str, str], pass_through: Iterable[str] = ()) -> dict[str, str]:
    """The variables of ``worker`` a job starts from: the basics, ``LC_*`` and ``pass_through``."""
    names = {*BASIC_VARIABLES, *pass_through}
    return {
        name: value for name, value in worker.items() if name in names or name.startswith("LC_")
    }


def credential_environment(worker: Mapping[str, str], patterns: Iterable[str]) -> dict[str, str]:
    """The variables of ``worker`` a definition may name as credentials."""
    allowed = tuple(patterns)
    return {
        name: value
        for name, value in worker.items()
        if any(fnmatchcase(name, pattern) for pattern in allowed)
        and not any(fnmatchcase(name, pattern) for pattern in NEVER_CREDENTIALS)
    }


def engine_environment(worker: Mapping[str, str]) -> dict[str, str]:
    """The variables the Docker SDK reads to find its engine (``DOCKER_HOST``, TLS paths)."""
    return {name: value for name, value in worker.items() if name.startswith("DOCKER_")}
