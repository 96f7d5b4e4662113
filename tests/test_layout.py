"""The floor plan stays as issue 17 left it: small modules, and SQL that loads and ships.

Each layer is split by resource, one concept a module, so that a reader finds a feature by its
file name; a module past :data:`MAX_LINES` is a sign that two concepts share a room. The backends
keep their SQL in named ``.sql`` files read at import, so a file that does not parse, or that the
wheel leaves out, breaks the store only once installed: these tests catch both in the tree.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from dockyard.storage.queries import Queries

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "dockyard"
MAX_LINES = 500
#: Modules allowed to stay whole, each with its reason.
EXEMPT: dict[str, str] = {}
SQL_FILES = sorted(PACKAGE.glob("storage/*/sql/*.sql"))
#: What starts a statement for :class:`Queries` (``-- name: <name>``).
_NAME_LINE = re.compile(r"^--\s*name:", re.MULTILINE)


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_no_module_is_over_the_size_limit() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50, "the package was not found where the test looks"
    over = {
        name: lines
        for path in modules
        if (name := _name(path)) not in EXEMPT
        and (lines := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert not over, f"modules over {MAX_LINES} lines (split them by concept): " + ", ".join(
        f"{name} ({lines})" for name, lines in sorted(over.items())
    )


def test_every_exemption_names_a_module() -> None:
    """An exemption outlives its module only by mistake."""
    assert [name for name in EXEMPT if not (PACKAGE / name).is_file()] == []


def test_each_backend_keeps_its_sql_in_files() -> None:
    backends = {path.parent.parent.name for path in SQL_FILES}
    assert {"sqlite", "postgres"} <= backends


@pytest.mark.parametrize("path", SQL_FILES, ids=_name)
def test_every_sql_file_parses(path: Path) -> None:
    text = path.read_text("utf-8")
    queries = Queries(text, _name(path))
    assert len(queries) > 0, "no `-- name:` line: the file gives no statement"
    # Text before the first name line is dropped by the loader: only comments may stand there.
    first = _NAME_LINE.search(text)
    preamble = text[: first.start()] if first else text
    stray = [
        line
        for line in preamble.splitlines()
        if line.strip() and not line.lstrip().startswith("--")
    ]
    assert stray == [], "SQL before the first `-- name:` line belongs to no statement"


def _owners(path: Path) -> list[tuple[str, str]]:
    """Each package that may ship ``path`` as data (its nearest first), with the path relative
    to it: setuptools globs a package's patterns from its own folder, subpackages included."""
    owners = []
    folder = path.parent
    while folder != PACKAGE.parent:
        if (folder / "__init__.py").is_file():
            package = ".".join(("dockyard", *folder.relative_to(PACKAGE).parts))
            owners.append((package, path.relative_to(folder).as_posix()))
        folder = folder.parent
    return owners


def _matches(relative: str, pattern: str) -> bool:
    """setuptools' package-data glob: ``*`` stays within one folder, ``**`` crosses them."""
    if "**" in pattern:
        return fnmatch.fnmatchcase(relative, pattern)
    parts, wanted = relative.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(map(fnmatch.fnmatchcase, parts, wanted))


def test_every_sql_file_is_shipped() -> None:
    """Every ``.sql`` file of the package (queries, migrations, schemas) is in the wheel."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        package_data: dict[str, list[str]] = tomllib.load(file)["tool"]["setuptools"][
            "package-data"
        ]
    files = sorted(PACKAGE.rglob("*.sql"))
    assert set(SQL_FILES) <= set(files)
    missing = []
    for path in files:
        # "" and "*" are setuptools' keys for every package.
        if not any(
            _matches(relative, pattern)
            for package, relative in _owners(path)
            for key in (package, "", "*")
            for pattern in package_data.get(key, [])
        ):
            missing.append(_name(path))
    assert missing == [], f"not in pyproject.toml's package-data: {missing}"
