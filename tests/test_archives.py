"""Unpacking untrusted archives (dockyard.executors.archives): real zip and tar files, built here
with the standard library, unpacked into a real folder.

Each attack ends with ``InputRejected`` naming the entry and the rule, nothing written outside
the work directory, and nothing left half-unpacked (the destination is absent, and no scratch
folder remains).
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Literal

import pytest

from dockyard.domain.staging import INPUT_REJECTED, ArchiveLimits, StagingError
from dockyard.executors.archives import detect_archive, unpack_archive

LIMITS = ArchiveLimits()


TarMode = Literal["w", "w:gz", "w:bz2", "w:xz"]


def make_zip(path: Path, entries: dict[str, bytes], *, modes: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (modes or {}).get(name, 0o100644) << 16
            zipped.writestr(info, data)
    return path


def make_tar(
    path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes], mode: TarMode
) -> Path:
    with tarfile.open(path, mode) as tar:
        for member in members:
            content = data.get(member.name)
            tar.addfile(member, io.BytesIO(content) if content is not None else None)
    return path


def file_member(name: str, data: bytes, mode: int = 0o644) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = mode
    return member


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def assert_rejected(
    archive: Path, workdir: Path, entry: str, rule: str, limits: ArchiveLimits = LIMITS
) -> None:
    kind = detect_archive(archive)
    assert kind is not None
    outside_before = sorted(p.name for p in workdir.parent.iterdir())
    with pytest.raises(StagingError) as caught:
        unpack_archive(archive, workdir / "src", kind=kind, limits=limits, label="inputs[0]")
    assert caught.value.reason == INPUT_REJECTED
    assert entry in str(caught.value) and rule in str(caught.value), str(caught.value)
    assert str(caught.value).startswith("inputs[0]: ")
    assert list(workdir.iterdir()) == []  # nothing half-unpacked, no scratch folder left
    assert sorted(p.name for p in workdir.parent.iterdir()) == outside_before


# -- happy paths ------------------------------------------------------------------------------


def test_zip_unpacks_files_folders_and_the_executable_bit(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(
        tmp_path / "a.zip",
        {"run-tests.sh": b"#!/bin/sh\necho ok\n", "lib/": b"", "lib/code.py": b"x = 1\n"},
        modes={"run-tests.sh": 0o100755, "lib/": 0o040755},
    )
    assert detect_archive(archive) == "zip"
    unpack_archive(archive, workdir / "src", kind="zip", limits=LIMITS, label="inputs[0]")
    assert (workdir / "src/lib/code.py").read_bytes() == b"x = 1\n"
    assert os.access(workdir / "src/run-tests.sh", os.X_OK)
    assert not os.access(workdir / "src/lib/code.py", os.X_OK)
    assert sorted(p.name for p in workdir.iterdir()) == ["src"]


@pytest.mark.parametrize("mode", ["w:gz", "w:xz", "w:bz2", "w"])
def test_tar_unpacks_with_each_compression(tmp_path: Path, workdir: Path, mode: TarMode) -> None:
    folder = tarfile.TarInfo("pkg")
    folder.type = tarfile.DIRTYPE
    folder.mode = 0o755
    members = [folder, file_member("pkg/a.txt", b"hello"), file_member("run.sh", b"#!", 0o755)]
    archive = make_tar(tmp_path / "a.tar", members, {"pkg/a.txt": b"hello", "run.sh": b"#!"}, mode)
    assert detect_archive(archive) == "tar"
    unpack_archive(archive, workdir, kind="tar", limits=LIMITS, label="inputs[0]")
    assert (workdir / "pkg/a.txt").read_bytes() == b"hello"
    assert os.access(workdir / "run.sh", os.X_OK)
    assert sorted(p.name for p in workdir.iterdir()) == ["pkg", "run.sh"]


def test_a_plain_file_is_no_archive(tmp_path: Path) -> None:
    plain = tmp_path / "data.csv"
    plain.write_bytes(b"a,b\n1,2\n")
    assert detect_archive(plain) is None


def test_two_archives_merge_into_one_folder_but_never_replace(
    tmp_path: Path, workdir: Path
) -> None:
    first = make_zip(tmp_path / "1.zip", {"a.txt": b"1"})
    second = make_zip(tmp_path / "2.zip", {"b.txt": b"2"})
    clash = make_zip(tmp_path / "3.zip", {"c.txt": b"3", "a.txt": b"evil"})
    for archive in (first, second):
        unpack_archive(archive, workdir, kind="zip", limits=LIMITS, label="inputs[0]")
    with pytest.raises(StagingError, match=re.escape("'a.txt' refused: an earlier input")):
        unpack_archive(clash, workdir, kind="zip", limits=LIMITS, label="inputs[2]")
    assert sorted(p.name for p in workdir.iterdir()) == ["a.txt", "b.txt"]  # no c.txt either
    assert (workdir / "a.txt").read_bytes() == b"1"


# -- attacks ----------------------------------------------------------------------------------


def test_zip_entry_climbing_out_is_refused(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"ok.txt": b"fine", "../evil.txt": b"pwned"})
    assert_rejected(archive, workdir, "'../evil.txt'", "'..'")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_entry_climbing_out_is_refused(tmp_path: Path, workdir: Path) -> None:
    members = [file_member("ok.txt", b"ok"), file_member("a/../../evil.txt", b"x")]
    archive = make_tar(
        tmp_path / "a.tgz", members, {"ok.txt": b"ok", "a/../../evil.txt": b"x"}, "w:gz"
    )
    assert_rejected(archive, workdir, "'a/../../evil.txt'", "'..'")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("maker", ["zip", "tar"])
def test_absolute_entry_is_refused(tmp_path: Path, workdir: Path, maker: str) -> None:
    target = tmp_path / "absolute.txt"
    name = str(target)
    if maker == "zip":
        # zipfile's writer strips a leading "/", so the name is set after the fact, as an
        # attacker's own tool would write it.
        info = zipfile.ZipInfo("x" * len(name))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zipped:
            zipped.writestr(info, b"pwned")
        raw = buffer.getvalue().replace(b"x" * len(name), name.encode())
        archive = tmp_path / "a.zip"
        archive.write_bytes(raw)
    else:
        archive = make_tar(tmp_path / "a.tar", [file_member(name, b"pwned")], {name: b"pwned"}, "w")
    assert_rejected(archive, workdir, name, "absolute names are refused")
    assert not target.exists()


def test_symlink_to_etc_passwd_is_refused(tmp_path: Path, workdir: Path) -> None:
    link = tarfile.TarInfo("passwd")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = make_tar(
        tmp_path / "a.tar.gz", [file_member("a.txt", b"a"), link], {"a.txt": b"a"}, "w:gz"
    )
    assert_rejected(archive, workdir, "'passwd'", "links are refused (to '/etc/passwd')")


def test_zip_symlink_entry_is_refused(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"passwd": b"/etc/passwd"}, modes={"passwd": 0o120777})
    assert_rejected(archive, workdir, "'passwd'", "links are refused")


def test_hard_link_outside_is_refused(tmp_path: Path, workdir: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    link = tarfile.TarInfo("copy.txt")
    link.type = tarfile.LNKTYPE
    link.linkname = str(secret)
    archive = make_tar(tmp_path / "a.tar", [link], {}, "w")
    assert_rejected(archive, workdir, "'copy.txt'", "links are refused")
    assert secret.stat().st_nlink == 1


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_files_and_fifos_are_refused(tmp_path: Path, workdir: Path, kind: bytes) -> None:
    device = tarfile.TarInfo("dev/thing")
    device.type = kind
    device.devmajor, device.devminor = 1, 3
    archive = make_tar(tmp_path / "a.tar.xz", [device], {}, "w:xz")
    assert_rejected(archive, workdir, "'dev/thing'", "device files and fifos are refused")


@pytest.mark.parametrize("maker", ["zip", "tar"])
def test_too_many_entries_are_refused(tmp_path: Path, workdir: Path, maker: str) -> None:
    names = [f"f{i:05}.txt" for i in range(10_000)]
    if maker == "zip":
        archive = tmp_path / "many.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            for name in names:
                zipped.writestr(name, b"")
    else:
        archive = tmp_path / "many.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for name in names:
                tar.addfile(tarfile.TarInfo(name))
    limits = ArchiveLimits(max_entries=1000)
    assert_rejected(archive, workdir, "'f01000.txt'", "more than max_entries=1000", limits)


def test_zip_bomb_is_refused_by_its_ratio(tmp_path: Path, workdir: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("zeros.bin", "w", force_zip64=True) as entry:
            chunk = bytes(1 << 20)
            for _ in range(100):
                entry.write(chunk)  # 100 MiB of zeros, about 100 KiB compressed
    assert archive.stat().st_size < 1 << 20
    assert_rejected(archive, workdir, "'zeros.bin'", "max_ratio=100 times the archive's size")


def test_tar_gz_bomb_is_refused_before_it_is_inflated(tmp_path: Path, workdir: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=9) as tar:
        member = tarfile.TarInfo("zeros.bin")
        member.size = 100 << 20

        class Zeros(io.RawIOBase):
            left = member.size

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
                size = min(len(buffer), self.left)
                buffer[:size] = bytes(size)
                self.left -= size
                return size

        tar.addfile(member, io.BufferedReader(Zeros()))
    assert_rejected(archive, workdir, "'zeros.bin'", "max_ratio=100")


def test_zip_bomb_is_refused_by_max_bytes_whatever_the_ratio(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "big.zip", {"a.bin": os.urandom(4096), "b.bin": os.urandom(4096)})
    limits = ArchiveLimits(max_bytes=6000)
    assert_rejected(archive, workdir, "'b.bin'", "max_bytes=6000", limits)


def test_a_zip_lying_about_its_size_is_rejected(tmp_path: Path, workdir: Path) -> None:
    """A zip whose headers declare 5,000 bytes for a 50,000-byte entry passes the declared-size
    check; zipfile reads no more than declared and its CRC check fails: rejected, nothing left."""
    archive = tmp_path / "lies.zip"
    data = bytes(50_000)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        zipped.writestr("a.bin", data)
    limits = ArchiveLimits(max_bytes=10_000)
    raw = bytearray(archive.read_bytes())
    # Patch the sizes in both headers (stored: compressed and uncompressed sizes are equal).
    size = (50_000).to_bytes(4, "little")
    small = (5_000).to_bytes(4, "little")
    assert raw.count(size) >= 2
    archive.write_bytes(bytes(raw).replace(size, small))
    with pytest.raises(StagingError) as caught:
        unpack_archive(archive, workdir / "src", kind="zip", limits=limits, label="inputs[0]")
    assert caught.value.reason == INPUT_REJECTED
    assert list(workdir.iterdir()) == []


def test_a_corrupt_archive_is_rejected(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a.txt": b"hello" * 1000})
    raw = bytearray(archive.read_bytes())
    raw[40:60] = bytes(20)
    archive.write_bytes(bytes(raw))
    with pytest.raises(StagingError) as caught:
        unpack_archive(archive, workdir / "src", kind="zip", limits=LIMITS, label="inputs[0]")
    assert caught.value.reason == INPUT_REJECTED
    assert list(workdir.iterdir()) == []
