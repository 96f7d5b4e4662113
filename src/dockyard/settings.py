"""One settings object, resolved once: argument, then ``DOCKYARD_*`` variable, then file, then default.

The file is ``<home>/config.toml`` (optional)::

    url = "sqlite:////var/lib/dockyard/dockyard.db"
    log_dir = "/var/log/dockyard"
    retention_days = 7
    objects_url = "s3://bucket/prefix"

Nothing else in Dockyard reads the environment for its configuration.

The home is its owner's alone: what Dockyard creates there (the folder itself, the SQLite file,
logs, the token) is created with :func:`private_directory` and mode 0600 files, whatever the
umask. A store URL may carry a password: what prints one, or puts one in an error, prints
:func:`redacted_url`. The token file ``dockyard up`` writes belongs to the server that wrote
it: its URL is kept beside it in ``<home>/token.url``, and :meth:`Settings.resolved_token`
gives the file's token only to that server (a token given explicitly is always used).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dockyard.errors import ValidationError
from dockyard.policy import POLICY_FILE_SETTINGS, WorkerPolicy

__all__ = ["ENVIRONMENT", "Settings", "private_directory", "redacted_url", "same_server"]

#: Each setting and the variable that sets it, shown by ``--help``.
ENVIRONMENT = {
    "home": "DOCKYARD_HOME",
    "url": "DOCKYARD_URL",
    "log_dir": "DOCKYARD_LOG_DIR",
    "token": "DOCKYARD_TOKEN",
    "retention_days": "DOCKYARD_RETENTION_DAYS",
    "objects_url": "DOCKYARD_OBJECTS_URL",
}
DEFAULT_RETENTION_DAYS = 7.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    #: Where the embedded store, logs and config live (``~/.dockyard``).
    home: Path
    #: The store: ``sqlite:///<home>/dockyard.db`` by default.
    url: str
    #: Where attempt logs go: ``<home>/logs`` by default.
    log_dir: Path
    #: Where inputs, outputs and finished logs live: ``file://<home>/objects`` by default, or
    #: ``s3://bucket/prefix`` (region, credentials and endpoint from the usual ``AWS_*`` settings).
    objects_url: str
    #: The bearer token for a server URL; ``<home>/token`` when not given.
    token: str | None = None
    #: Finished jobs are pruned (with their attempts and logs) this many days after they end.
    retention_days: float = DEFAULT_RETENTION_DAYS
    #: Where http jobs may connect (host patterns, ``*.example.com``, ``host:port``); None: any.
    http_allowed_hosts: tuple[str, ...] | None = None
    #: What the jobs of this process's workers may reach (:mod:`dockyard.policy`).
    policy: WorkerPolicy = field(default_factory=WorkerPolicy)

    @property
    def is_server(self) -> bool:
        """True when ``url`` names a Dockyard server rather than a store."""
        return self.url.startswith(("http://", "https://"))

    @property
    def token_file(self) -> Path:
        return self.home / "token"

    @property
    def token_url_file(self) -> Path:
        """The URL of the server that ``<home>/token`` belongs to."""
        return self.home / "token.url"

    def resolved_token(self) -> str | None:
        """The token given, else the one ``dockyard up`` wrote to ``<home>/token`` when ``url``
        is the server it belongs to (see :meth:`home_token_refused`)."""
        if self.token:
            return self.token
        if self.home_token_refused() is not None:
            return None
        return _read(self.token_file)

    def home_token_refused(self) -> str | None:
        """Why ``<home>/token`` is not for ``url``, or None when it is (or there is none).

        The file is for the server whose URL ``dockyard up`` recorded beside it; a file without
        one (written by an older version) is for servers on this machine only.
        """
        if not self.is_server or _read(self.token_file) is None:
            return None
        bound = _read(self.token_url_file)
        if bound is None:
            if _is_loopback(urlsplit(self.url).hostname):
                return None
            return f"{self.token_file} is for servers on this machine only"
        if same_server(bound, self.url):
            return None
        return f"{self.token_file} belongs to {bound}"

    @classmethod
    def resolve(
        cls,
        *,
        home: str | Path | None = None,
        url: str | None = None,
        log_dir: str | Path | None = None,
        token: str | None = None,
        retention_days: float | None = None,
        objects_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        home_path = Path(home or env.get("DOCKYARD_HOME") or Path.home() / ".dockyard").expanduser()
        file = _read_config(home_path / "config.toml")
        url = (
            url
            or env.get("DOCKYARD_URL")
            or str(file.get("url") or "")
            or f"sqlite:///{home_path / 'dockyard.db'}"
        )
        log_dir = (
            log_dir
            or env.get("DOCKYARD_LOG_DIR")
            or str(file.get("log_dir") or "")
            or home_path / "logs"
        )
        retention = _positive(
            "retention_days",
            retention_days
            if retention_days is not None
            else env.get("DOCKYARD_RETENTION_DAYS") or file.get("retention_days"),
        )
        objects_url = (
            objects_url
            or env.get("DOCKYARD_OBJECTS_URL")
            or str(file.get("objects_url") or "")
            or (home_path / "objects").absolute().as_uri()
        )
        hosts = env.get("DOCKYARD_HTTP_ALLOWED_HOSTS")
        if hosts is None and "http_allowed_hosts" in file:
            hosts = ",".join(str(host) for host in file["http_allowed_hosts"])  # type: ignore[attr-defined]
        return cls(
            home=home_path,
            url=str(url),
            log_dir=Path(log_dir).expanduser(),
            token=token or env.get("DOCKYARD_TOKEN") or None,
            retention_days=DEFAULT_RETENTION_DAYS if retention is None else retention,
            objects_url=objects_url,
            http_allowed_hosts=None
            if hosts is None
            else tuple(host.strip().lower() for host in hosts.split(",") if host.strip()),
            policy=WorkerPolicy.resolve(env, file, shared=str(url).startswith("postgres")),
        )


#: The password of ``scheme://user:password@host``: from the first colon of the user
#: information to its last ``@`` before the path. A password with an unencoded ``/``, ``?`` or
#: ``#`` (which libpq would misread anyway) is masked up to the URL's last ``@``: more than the
#: password is hidden then, never less.
_USERINFO_PASSWORD = re.compile(r"^([^:/?#]*://[^:/?#@]*:)[^/?#]*(@)")
_LOOSE_PASSWORD = re.compile(r"^([^:/?#]*://[^:/?#@]*:).*(@)")
#: ``password=…`` among the query parameters of a libpq URI.
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, to print or to put in an error."""
    masked, found = _USERINFO_PASSWORD.subn(r"\1***\2", url, count=1)
    if not found:
        masked = _LOOSE_PASSWORD.sub(r"\1***\2", url, count=1)
    return _QUERY_PASSWORD.sub(r"\1***", masked)


def same_server(bound: str, url: str) -> bool:
    """Whether ``url`` reaches the server that listens at ``bound``: the same scheme and port,
    and the same host — any loopback name reaching one bound to loopback or to every interface."""
    listening, asked = urlsplit(bound), urlsplit(url)
    try:
        ports = [part.port or _DEFAULT_PORTS.get(part.scheme) for part in (listening, asked)]
    except ValueError:
        return False
    if listening.scheme != asked.scheme or ports[0] != ports[1]:
        return False
    if listening.hostname == asked.hostname:
        return True
    wildcard = listening.hostname in ("0.0.0.0", "::")
    return (wildcard or _is_loopback(listening.hostname)) and _is_loopback(asked.hostname)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(path: Path) -> str | None:
    """The file's first line, stripped; None when it is missing, unreadable or empty."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def private_directory(path: Path) -> Path:
    """Create ``path`` and its missing parents for their owner alone (0700, whatever the umask);
    a folder that exists already is left as it is. Returns ``path``."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process: its maker chose its mode
        folder.chmod(0o700)
    return path


def _positive(name: str, value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationError(name, f"must be a number of days, not {value!r}") from None
    if not number > 0:
        raise ValidationError(name, "must be more than 0")
    return number


def _read_config(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValidationError(str(path), f"is not a readable TOML file: {error}") from None
    for key, value in data.items():
        kinds = _FILE_SETTINGS.get(key)
        if kinds is None or not isinstance(value, kinds) or isinstance(value, bool):
            raise ValidationError(f"{path}: {key}", "unknown setting or of the wrong type")
    return data


#: What ``config.toml`` may set, and the TOML types each takes.
_FILE_SETTINGS: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "log_dir": (str,),
    "retention_days": (int, float),
    "objects_url": (str,),
    "http_allowed_hosts": (list,),
    **POLICY_FILE_SETTINGS,
}
