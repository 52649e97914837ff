"""Reading RAR archives (TID2008, TID2013, AnimalWeb are published as ``.rar``).

The standard library cannot read RAR. :func:`rar_archive` (a context manager) gives the files of an
archive as ``(member name, read)`` pairs in archive order, ``read()`` returning the file's bytes; the
contents are read only when asked for, so large archives are not held in memory:

* an archive in the RAR 1.5-4.x format whose files are all *stored* (not compressed) is read here, in
  pure Python, checking header and file CRCs;
* any other archive (compressed entries, RAR 5) is unpacked by the first of ``unrar``, ``7z`` /
  ``7za`` / ``7zz`` or ``bsdtar`` found on PATH into a temporary folder (removed afterwards), and its
  files listed in archive order when the tool lists it (else sorted by path). Without such a tool the
  error says what to install.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import struct
import subprocess
import tempfile
import zlib
from typing import BinaryIO, Callable, Iterator

from nevis_bench.data.handlers import HandlerError

RAR4_SIGNATURE = b"Rar!\x1a\x07\x00"
RAR5_SIGNATURE = b"Rar!\x1a\x07\x01\x00"
FILE_HEAD, END_HEAD = 0x74, 0x7B
STORED = 0x30
LONG_BLOCK, LARGE_FILE, UNICODE_NAME, ENCRYPTED, SPLIT = 0x8000, 0x100, 0x200, 0x04, 0x03
DIRECTORY = 0xE0
Member = tuple[str, Callable[[], bytes]]


class _NeedsTool(Exception):
    """The archive cannot be read in pure Python (compressed, RAR 5, encrypted or multi-volume)."""


def _stored_members(handle: BinaryIO, where: str) -> list[Member]:
    """The files of a RAR 4 archive whose entries are all stored; raises _NeedsTool otherwise."""
    handle.seek(0, os.SEEK_END)
    length = handle.tell()
    handle.seek(0)
    if handle.read(len(RAR4_SIGNATURE)) != RAR4_SIGNATURE:
        raise _NeedsTool
    members: list[Member] = []
    offset = len(RAR4_SIGNATURE)
    while offset + 7 <= length:
        handle.seek(offset)
        crc, kind, flags, size = struct.unpack("<HBHH", handle.read(7))
        if size < 7 or offset + size > length:
            raise HandlerError(f"{where}: damaged RAR block header at byte {offset}")
        header = handle.read(size - 7)
        if zlib.crc32(struct.pack("<BHH", kind, flags, size) + header) & 0xFFFF != crc:
            raise HandlerError(f"{where}: RAR header checksum mismatch at byte {offset}")
        extra = struct.unpack_from("<I", header)[0] if flags & LONG_BLOCK else 0
        if kind == FILE_HEAD:
            pack, unpacked, _, file_crc, _, _, method, name_size, _ = struct.unpack_from("<IIBIIBBHI", header)
            name_at = 25
            if flags & LARGE_FILE:
                high_pack, high_unpacked = struct.unpack_from("<II", header, name_at)
                pack, unpacked, name_at = pack | high_pack << 32, unpacked | high_unpacked << 32, name_at + 8
                extra = pack
            raw_name = header[name_at : name_at + name_size]
            if flags & UNICODE_NAME:
                raw_name = raw_name.split(b"\0")[0]
            name = raw_name.decode("utf-8", errors="replace").replace("\\", "/")
            if flags & (ENCRYPTED | SPLIT):
                raise _NeedsTool
            if flags & DIRECTORY != DIRECTORY:
                if method != STORED or pack != unpacked:
                    raise _NeedsTool
                if offset + size + pack > length:
                    raise HandlerError(f"{where}: {name} is truncated")
                members.append((name, _reader(handle, offset + size, pack, file_crc, f"{where}: {name}")))
        elif kind == END_HEAD:
            break
        offset += size + extra
    return members


def _reader(handle: BinaryIO, start: int, size: int, crc: int, where: str) -> Callable[[], bytes]:
    def read() -> bytes:
        handle.seek(start)
        data = handle.read(size)
        if zlib.crc32(data) != crc:
            raise HandlerError(f"{where} is damaged (CRC mismatch)")
        return data

    return read


def _tool_command(archive: pathlib.Path, target: pathlib.Path) -> list[str] | None:
    for tool, command in (
        ("unrar", ["x", "-y", "-idq", "-o+", str(archive), str(target) + os.sep]),
        ("7z", ["x", "-y", f"-o{target}", str(archive)]),
        ("7za", ["x", "-y", f"-o{target}", str(archive)]),
        ("7zz", ["x", "-y", f"-o{target}", str(archive)]),
        ("bsdtar", ["-x", "-f", str(archive), "-C", str(target)]),
    ):
        path = shutil.which(tool)
        if path:
            return [path, *command]
    return None


def _listed_order(command: list[str], archive: pathlib.Path) -> list[str]:
    """Member names in archive order as the tool lists them (empty when it cannot list)."""
    tool = pathlib.Path(command[0]).name
    listing = {"unrar": ["lb", str(archive)], "bsdtar": ["-t", "-f", str(archive)]}.get(tool)
    if listing is None:
        return []
    result = subprocess.run([command[0], *listing], capture_output=True, text=True, check=False)
    return [line.strip().replace("\\", "/") for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else []


@contextlib.contextmanager
def rar_archive(archive: pathlib.Path, name: str) -> Iterator[list[Member]]:
    """The files of a RAR archive as ``(member name, read)`` pairs, archive order (see the module docstring)."""
    with open(archive, "rb") as handle:
        if not handle.read(len(RAR5_SIGNATURE)).startswith(RAR4_SIGNATURE[:6]):
            raise HandlerError(f"{name}: {archive.name} is not a RAR archive")
        try:
            members = _stored_members(handle, f"{name}: {archive.name}")
        except _NeedsTool:
            members = None
        if members is not None:
            yield members
            return
    with tempfile.TemporaryDirectory(prefix=f"{name}-rar-") as folder:
        target = pathlib.Path(folder)
        command = _tool_command(archive, target)
        if command is None:
            raise HandlerError(
                f"{name}: {archive.name} is a compressed RAR archive; unpacking it needs one of unrar, 7z or "
                "bsdtar (libarchive) on PATH, e.g. `apt-get install unrar` or `apt-get install p7zip-full`"
            )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HandlerError(f"{name}: {pathlib.Path(command[0]).name} could not unpack {archive.name}: {result.stderr.strip()[-500:]}")
        files = {p.relative_to(target).as_posix(): p for p in target.rglob("*") if p.is_file()}
        listed = [n for n in _listed_order(command, archive) if n in files]
        order = listed + sorted(set(files) - set(listed))
        yield [(member, files[member].read_bytes) for member in order]
