"""Unpacking untrusted archives (zip; tar, plain or gzip, bzip2, xz) into a work directory.

Whoever submits a job chooses its input, so an archive is hostile until proven otherwise. The
standard library reads the formats (:mod:`zipfile`, :mod:`tarfile`); the rules are checked
here, entry by entry, *before* an entry's bytes are written, and each refusal raises
:class:`~dockyard.domain.staging.StagingError` with reason ``InputRejected`` naming the entry and
the rule:

- a name that is absolute (``/etc/passwd``) or has a ``..`` segment (``../x``), or holds a NUL;
- **any link**, symbolic or hard, whether it points inside or outside: with no link on disk, a
  name without ``..`` cannot lead out of the destination, so no later entry can be written
  through a link. (Links inside the tree are rare in the archives jobs take — submissions,
  datasets, build outputs; refusing them all removes a whole class of tricks);
- device files, fifos and sockets (and any tar member type other than files and directories);
- more than ``max_entries`` entries, more than ``max_bytes`` bytes unpacked, or an unpacked size
  past ``max_ratio`` times the archive's size once more than :data:`RATIO_FLOOR` bytes are out
  (zip bombs). Zip's declared sizes are checked first and the bytes actually written are
  counted too (a zip can lie about its sizes); a tar member's size is exact, checked before its
  data is read, and the archive is read as a stream, so a tar.gz bomb is refused without
  inflating it.

``tarfile``'s ``filter="data"`` (Python ≥ 3.11.4; this project needs ≥ 3.11 and runs 3.11.7)
is passed too, as a second line; it is not the first because it *strips* a leading ``/``
instead of refusing, allows links that stay inside, and 3.11 releases before 3.11.13 have known
bypasses of it through links (CVE-2024-12718, CVE-2025-4138, CVE-2025-4517) — which refusing
every link makes moot.

Nothing is left half-unpacked: entries go to a fresh folder next to the destination (inside the
work directory), which replaces the destination, or whose top-level entries move into it, only
when every entry passed; on any failure the folder is removed.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from dockyard.domain.staging import INPUT_REJECTED, ArchiveLimits, StagingError

__all__ = ["RATIO_FLOOR", "detect_archive", "unpack_archive"]

#: The compression ratio is checked only once more than this many bytes are unpacked.
RATIO_FLOOR = 1 << 20
_CHUNK = 1 << 20

Kind = Literal["zip", "tar"]


def detect_archive(path: Path) -> Kind | None:
    """``zip`` or ``tar`` (any of its compressions) by content, or None for another file."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        return "tar" if tarfile.is_tarfile(path) else None
    except (OSError, EOFError, tarfile.TarError):
        return None


def unpack_archive(
    archive: Path,
    target: Path,
    *,
    kind: Kind,
    limits: ArchiveLimits,
    label: str,
    scratch_in: Path | None = None,
) -> None:
    """Unpack ``archive`` into the folder ``target`` (created, or merged into when it exists
    and no entry would replace a file there). ``label`` names the input in messages
    (``inputs[0]``); the scratch folder is made in ``scratch_in`` (the work directory; by
    default ``target``'s parent), on ``target``'s file system. Raises :class:`StagingError`
    (``InputRejected``); nothing is written to ``target`` then."""
    target.parent.mkdir(parents=True, exist_ok=True)
    where = target.parent if scratch_in is None else scratch_in
    scratch = Path(tempfile.mkdtemp(prefix=".dockyard-unpack-", dir=where))
    try:
        checker = _Checker(label, limits, archive.stat().st_size)
        if kind == "zip":
            _unzip(archive, scratch, checker)
        else:
            _untar(archive, scratch, checker)
        _place(scratch, target, label)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _reject(label: str, entry: str, rule: str) -> StagingError:
    return StagingError(INPUT_REJECTED, f"{label}: entry {entry!r} refused: {rule}")


class _Checker:
    """The rules every entry passes (see the module docstring)."""

    def __init__(self, label: str, limits: ArchiveLimits, archive_size: int) -> None:
        self.label = label
        self.limits = limits
        self.archive_size = max(archive_size, 1)
        self.entries = 0
        self.unpacked = 0

    def name(self, name: str) -> PurePosixPath:
        if not name or "\x00" in name:
            raise _reject(self.label, name, "an empty name or one with a NUL")
        if name.startswith("/"):
            raise _reject(self.label, name, "absolute names are refused")
        path = PurePosixPath(name)
        if ".." in path.parts:
            raise _reject(self.label, name, "names climbing out with '..' are refused")
        return path

    def entry(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise _reject(
                self.label,
                name,
                f"the archive has more than max_entries={self.limits.max_entries} entries",
            )

    def grow(self, name: str, size: int) -> None:
        """Count ``size`` more bytes unpacked (refusing past max_bytes or max_ratio)."""
        self.unpacked += size
        if self.unpacked > self.limits.max_bytes:
            raise _reject(
                self.label, name, f"unpacks past max_bytes={self.limits.max_bytes} bytes in all"
            )
        ratio = self.unpacked / self.archive_size
        if self.unpacked > RATIO_FLOOR and ratio > self.limits.max_ratio:
            raise _reject(
                self.label,
                name,
                f"unpacks past max_ratio={self.limits.max_ratio:g} times the archive's size"
                f" ({self.archive_size} bytes): a compression bomb",
            )


def _unzip(archive: Path, scratch: Path, checker: _Checker) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            infos = zipped.infolist()
            declared = 0
            for info in infos:  # every rule that needs no bytes, before any is written
                checker.name(info.filename)
                checker.entry(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise _reject(checker.label, info.filename, "links are refused")
                kind = stat.S_IFMT(mode)
                if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise _reject(
                        checker.label, info.filename, "device files and fifos are refused"
                    )
                declared += info.file_size
                if declared > checker.limits.max_bytes:
                    raise _reject(
                        checker.label,
                        info.filename,
                        f"declares more than max_bytes={checker.limits.max_bytes} bytes in all",
                    )
            for info in infos:
                _unzip_entry(zipped, info, scratch, checker)
    except StagingError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as error:
        raise StagingError(
            INPUT_REJECTED, f"{checker.label}: not a readable zip: {error}"
        ) from None
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as error:
        raise StagingError(INPUT_REJECTED, f"{checker.label}: cannot unpack: {error}") from None


def _unzip_entry(
    zipped: zipfile.ZipFile, info: zipfile.ZipInfo, scratch: Path, checker: _Checker
) -> None:
    path = scratch / checker.name(info.filename)
    if info.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    executable = (info.external_attr >> 16) & 0o111
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        descriptor = os.open(path, flags, 0o755 if executable else 0o644)
    except FileExistsError:
        raise _reject(checker.label, info.filename, "the name appears twice") from None
    with os.fdopen(descriptor, "wb") as out, zipped.open(info) as source:
        _copy(source, out, info.filename, checker)


def _copy(source: IO[bytes], out: IO[bytes], name: str, checker: _Checker) -> None:
    while chunk := source.read(_CHUNK):
        checker.grow(name, len(chunk))
        out.write(chunk)


def _untar(archive: Path, scratch: Path, checker: _Checker) -> None:
    try:
        # "r|*": one pass over the stream, each member checked before its data is read.
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                name = member.name
                if name in (".", "./"):
                    continue
                checker.name(name)
                checker.entry(name)
                if member.issym() or member.islnk():
                    raise _reject(
                        checker.label, name, f"links are refused (to {member.linkname!r})"
                    )
                if member.ischr() or member.isblk() or member.isfifo():
                    raise _reject(checker.label, name, "device files and fifos are refused")
                if not (member.isfile() or member.isdir()):
                    raise _reject(checker.label, name, "only files and directories are allowed")
                checker.grow(name, member.size if member.isfile() else 0)
                tar.extract(member, scratch, filter="data")
    except StagingError:
        raise
    except tarfile.FilterError as error:  # the second line of defence
        raise StagingError(INPUT_REJECTED, f"{checker.label}: {error}") from None
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as error:
        raise StagingError(INPUT_REJECTED, f"{checker.label}: cannot unpack: {error}") from None


def _place(scratch: Path, target: Path, label: str) -> None:
    """Move what ``scratch`` holds to ``target``: a rename when ``target`` does not exist, else
    each top-level entry into it — checked first, so nothing moves when one would replace."""
    if not target.exists() and not target.is_symlink():
        scratch.rename(target)
        scratch.mkdir()  # for the caller's rmtree
        return
    if target.is_symlink() or not target.is_dir():
        raise StagingError(INPUT_REJECTED, f"{label}: {target.name!r} exists and is not a folder")
    entries = sorted(scratch.iterdir())
    for entry in entries:
        existing = target / entry.name
        if existing.exists() or existing.is_symlink():
            raise _reject(label, entry.name, "an earlier input already put a file there")
    for entry in entries:
        entry.rename(target / entry.name)
