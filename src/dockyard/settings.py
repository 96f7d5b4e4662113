"""One settings object, resolved once: argument, then ``DOCKYARD_*`` variable, then file, then default.

The file is ``<home>/config.toml`` (optional)::

    url = "sqlite:////var/lib/dockyard/dockyard.db"
    log_dir = "/var/log/dockyard"
    retention_days = 7

Nothing else in Dockyard reads the environment for its configuration.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import ValidationError

__all__ = ["ENVIRONMENT", "Settings"]

#: Each setting and the variable that sets it, shown by ``--help``.
ENVIRONMENT = {
    "home": "DOCKYARD_HOME",
    "url": "DOCKYARD_URL",
    "log_dir": "DOCKYARD_LOG_DIR",
    "token": "DOCKYARD_TOKEN",
    "retention_days": "DOCKYARD_RETENTION_DAYS",
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
    #: The bearer token for a server URL; ``<home>/token`` when not given.
    token: str | None = None
    #: Finished jobs are pruned (with their attempts and logs) this many days after they end.
    retention_days: float = DEFAULT_RETENTION_DAYS
    #: Where http jobs may connect (host patterns, ``*.example.com``, ``host:port``); None: any.
    http_allowed_hosts: tuple[str, ...] | None = None

    @property
    def is_server(self) -> bool:
        """True when ``url`` names a Dockyard server rather than a store."""
        return self.url.startswith(("http://", "https://"))

    @property
    def token_file(self) -> Path:
        return self.home / "token"

    def resolved_token(self) -> str | None:
        """The token given, else the one ``dockyard up`` wrote to ``<home>/token``."""
        if self.token:
            return self.token
        try:
            return self.token_file.read_text().strip() or None
        except OSError:
            return None

    @classmethod
    def resolve(
        cls,
        *,
        home: str | Path | None = None,
        url: str | None = None,
        log_dir: str | Path | None = None,
        token: str | None = None,
        retention_days: float | None = None,
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
        hosts = env.get("DOCKYARD_HTTP_ALLOWED_HOSTS")
        if hosts is None and "http_allowed_hosts" in file:
            hosts = ",".join(str(host) for host in file["http_allowed_hosts"])  # type: ignore[attr-defined]
        return cls(
            home=home_path,
            url=str(url),
            log_dir=Path(log_dir).expanduser(),
            token=token or env.get("DOCKYARD_TOKEN") or None,
            retention_days=DEFAULT_RETENTION_DAYS if retention is None else retention,
            http_allowed_hosts=None
            if hosts is None
            else tuple(host.strip().lower() for host in hosts.split(",") if host.strip()),
        )


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
    "http_allowed_hosts": (list,),
}
