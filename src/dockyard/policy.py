"""What a worker lets the jobs it runs reach: one frozen policy, resolved once with the settings.

An *operator* can register any definition, so whatever a definition may ask for is bounded here,
by the worker's owner, not by the definition. Each field is a setting (variable, then
``config.toml``, then default), and the defaults differ by deployment: the embedded SQLite store
is one user's laptop, where that user's jobs may do what that user can; a PostgreSQL store is a
shared deployment, where a worker must not hand an operator its host.

========================  ==============================  ================================
setting                   variable                         default
========================  ==============================  ================================
``executors``             ``DOCKYARD_EXECUTORS``           SQLite: every kind; PostgreSQL:
                                                           ``docker,http,lambda``
``job_pass_env``          ``DOCKYARD_JOB_PASS_ENV``        none (jobs get PATH, HOME, LANG,
                                                           LC_*, TZ, TMPDIR and their own)
``credential_env``        ``DOCKYARD_CREDENTIAL_ENV``      none (SigV4 signing may always
                                                           use the three ``AWS_*`` ones)
``python_modules``        ``DOCKYARD_PYTHON_MODULES``      none (registered functions and
                                                           the worker's project folder)
``http_allow_private``    ``DOCKYARD_HTTP_ALLOW_PRIVATE``  SQLite: yes; PostgreSQL: no
``http_allowed_networks`` ``DOCKYARD_HTTP_ALLOWED_NETWORKS`` none
``docker_host_network``   ``DOCKYARD_DOCKER_HOST_NETWORK`` no
``docker_registries``     ``DOCKYARD_DOCKER_REGISTRIES``   any registry
``run_as``                ``DOCKYARD_RUN_AS``              the worker's own user
========================  ==============================  ================================

List settings are comma-separated in a variable and TOML arrays in the file.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from dockyard.errors import ValidationError

__all__ = [
    "ALL_EXECUTORS",
    "POLICY_ENVIRONMENT",
    "POLICY_FILE_SETTINGS",
    "SERVER_EXECUTORS",
    "SIGNING_CREDENTIAL_ENV",
    "WorkerPolicy",
]

#: Every executor kind a worker can offer, and those a shared (PostgreSQL) deployment offers by
#: default: ``process`` and ``python`` run code on the worker's host, so they are opt-in there
#: (as Nomad ships ``raw_exec`` disabled).
ALL_EXECUTORS = ("process", "python", "docker", "http", "lambda")
SERVER_EXECUTORS = ("docker", "http", "lambda")
#: Worker variables a definition may always name for SigV4 signing, and for nothing else: a
#: signature proves the secret without sending it (the session token, sent as it is, is useless
#: without the secret key). A registry password or an HMAC secret leaves in clear, or can be
#: tried offline, so those come only from what ``credential_env`` lists.
SIGNING_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

#: Each policy setting and the variable that sets it.
POLICY_ENVIRONMENT = {
    "executors": "DOCKYARD_EXECUTORS",
    "job_pass_env": "DOCKYARD_JOB_PASS_ENV",
    "credential_env": "DOCKYARD_CREDENTIAL_ENV",
    "python_modules": "DOCKYARD_PYTHON_MODULES",
    "http_allow_private": "DOCKYARD_HTTP_ALLOW_PRIVATE",
    "http_allowed_networks": "DOCKYARD_HTTP_ALLOWED_NETWORKS",
    "docker_host_network": "DOCKYARD_DOCKER_HOST_NETWORK",
    "docker_registries": "DOCKYARD_DOCKER_REGISTRIES",
    "run_as": "DOCKYARD_RUN_AS",
}
_LISTS = frozenset(
    {
        "executors",
        "job_pass_env",
        "credential_env",
        "python_modules",
        "http_allowed_networks",
        "docker_registries",
    }
)
_FLAGS = frozenset({"http_allow_private", "docker_host_network"})
#: What ``config.toml`` may set for the policy, and the TOML types each takes.
POLICY_FILE_SETTINGS: dict[str, tuple[type, ...]] = {
    name: (list,) if name in _LISTS else (bool,) if name in _FLAGS else (str,)
    for name in POLICY_ENVIRONMENT
}


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerPolicy:
    """What the jobs of this process's workers may reach (see the module docstring)."""

    #: The executor kinds workers offer; jobs of other kinds wait for a worker that offers them.
    executors: tuple[str, ...] = ALL_EXECUTORS
    #: Worker variables passed to every process job and isolated function, beyond the basics
    #: (containers get none of the worker's variables).
    job_pass_env: tuple[str, ...] = ()
    #: Worker variables (``fnmatch`` patterns) a definition may name as a credential
    #: (``access_key_env``, ``secret_env``, ``registry_password_env``…). ``DOCKYARD_*`` and
    #: ``PG*`` are never credentials, whatever is listed. SigV4 signing may also use
    #: :data:`SIGNING_CREDENTIAL_ENV`.
    credential_env: tuple[str, ...] = ()
    #: Modules (and their submodules) whose functions python jobs may run, beyond functions
    #: registered with ``@dockyard.function`` and modules of the worker's project folder.
    python_modules: tuple[str, ...] = ()
    #: Whether http, lambda and webhook calls may reach loopback and private addresses.
    http_allow_private: bool = True
    #: Networks (CIDR) calls may reach even when they are private, link-local or metadata ones.
    http_allowed_networks: tuple[str, ...] = ()
    #: Whether a definition may ask for ``network_mode: host``.
    docker_host_network: bool = False
    #: Registries containers may come from (``docker.io``, ``registry.example.com:5000``);
    #: None: any.
    docker_registries: tuple[str, ...] | None = None
    #: The OS user process and python-subprocess jobs run as (the worker must be root); None:
    #: the worker's own user.
    run_as: str | None = None

    @classmethod
    def resolve(
        cls, env: Mapping[str, str], file: Mapping[str, object], *, shared: bool
    ) -> WorkerPolicy:
        """The policy from variables, then ``config.toml``, then the defaults for a shared
        (PostgreSQL) or a single-user (SQLite) deployment."""
        values: dict[str, object] = {}
        for name, variable in POLICY_ENVIRONMENT.items():
            raw: object = env.get(variable)
            if raw is None:
                raw = file.get(name)
            if raw is None or raw == "":
                continue
            values[name] = _parse(name, raw)
        if "executors" not in values and shared:
            values["executors"] = SERVER_EXECUTORS
        if "http_allow_private" not in values:
            values["http_allow_private"] = not shared
        policy = cls(**values)  # type: ignore[arg-type]
        policy.check()
        return policy

    def check(self) -> None:
        """Refuse a policy naming an unknown executor kind or a malformed network."""
        for kind in self.executors:
            if kind not in ALL_EXECUTORS:
                raise ValidationError(
                    "executors", f"{kind!r} is not an executor kind ({', '.join(ALL_EXECUTORS)})"
                )
        for network in self.http_allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValidationError(
                    "http_allowed_networks", f"{network!r} is not a network such as 10.0.0.0/8"
                ) from None


def _parse(name: str, raw: object) -> object:
    if name in _LISTS:
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple):
            raise ValidationError(name, "must be a list")
        return tuple(str(item).strip() for item in items if str(item).strip())
    if name in _FLAGS:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValidationError(name, f"must be true or false, not {raw!r}")
    return str(raw)
