"""One settings object, resolved once: argument, then ``DOCKYARD_*`` variable, then file, then default.

The file is ``<home>/config.toml`` (optional)::

    url = "sqlite:////var/lib/dockyard/dockyard.db"
    log_dir = "/var/log/dockyard"

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
}


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
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        home_path = Path(home or env.get("DOCKYARD_HOME") or Path.home() / ".dockyard").expanduser()
        file = _read_config(home_path / "config.toml")
        url = (
            url
            or env.get("DOCKYARD_URL")
            or file.get("url")
            or f"sqlite:///{home_path / 'dockyard.db'}"
        )
        log_dir = (
            log_dir or env.get("DOCKYARD_LOG_DIR") or file.get("log_dir") or home_path / "logs"
        )
        return cls(
            home=home_path,
            url=str(url),
            log_dir=Path(log_dir).expanduser(),
            token=token or env.get("DOCKYARD_TOKEN") or None,
        )


def _read_config(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValidationError(str(path), f"is not a readable TOML file: {error}") from None
    for key, value in data.items():
        if key not in ("url", "log_dir") or not isinstance(value, str):
            raise ValidationError(f"{path}: {key}", "unknown setting or not a string")
    return data
