"""VisTex (``nevis:vistex``, MIT Vision Texture): the reference textures, colour PPMs, one class per group.

Archive: ``VisTex.tar.gz`` holding ``VisionTexture/`` with the distribution's Unix-``compress``ed
(LZW, ``.tar.Z``) tar files. Unpacked together they form ``VisTex/``: the images, stored once in
folders by size, and ``VisTex/Images/Reference/<group>/<name>.ppm`` symbolic links to them (the
"reference textures" section; the "texture scenes" section is not used). We read everything in
memory and temporary files: the inner tars are decompressed (with the system's ``gzip``, which reads
``.Z`` files, or with the pure-Python LZW decoder below) and the links are resolved inside the
archives.

Label (reference): the ``<group>`` folder of ``.../Images/Reference/<group>/<name>.ppm``.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the
reference-texture images.
Deviations: the reference took images and class ids in the order its file-system walk listed them,
which is not defined (it changes between file systems); we sort: class ids follow the sorted group
names and images are drawn in sorted path order. A link that resolves to no file is an error naming
it (the reference stopped there too). ``VisionTexture/*.tar`` members that are not compressed are
read as they are.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter, iter_tar

REFERENCE = re.compile(r"VisTex/(?:.+/)?Images/Reference/(.+)/[^/]+\.ppm")
MAX_LINKS = 16


def lzw_decompress(data: bytes) -> bytes:
    """Decode a Unix ``compress`` (``.Z``) stream: LSB-first codes of 9..maxbits bits, code 256 clears
    the table in block mode, and the input is realigned to a group of ``bits`` bytes (8 codes)
    whenever the code width changes or the table is cleared."""
    if len(data) < 3 or data[0] != 0x1F or data[1] != 0x9D:
        raise ValueError("not a compress (.Z) stream")
    max_bits, block = data[2] & 0x1F, bool(data[2] & 0x80)
    if not 9 <= max_bits <= 16:
        raise ValueError(f"unsupported maximum code width {max_bits}")
    out = bytearray()
    pos, mark, size = 3, 3, len(data)
    bits, mask = 9, 0x1FF
    table: list[bytes] = [bytes([i]) for i in range(256)] + ([b""] if block else [])
    buffer = left = 0
    previous: bytes | None = None

    def realign():
        nonlocal pos, buffer, left, mark
        rest = (pos - mark) % bits
        if rest:
            pos += bits - rest
        buffer = left = 0
        mark = pos

    while True:
        if previous is not None and len(table) - 1 >= mask and bits < max_bits:
            realign()
            bits += 1
            mask = (1 << bits) - 1
        while left < bits:
            if pos >= size:
                return bytes(out)
            buffer |= data[pos] << left
            pos += 1
            left += 8
        code = buffer & mask
        buffer >>= bits
        left -= bits
        if block and code == 256:
            realign()
            bits, mask = 9, 0x1FF
            del table[257:]
            previous = None
            continue
        if previous is None:
            if code >= 256:
                raise ValueError("corrupt compress stream: first code is not a literal")
            entry = table[code]
        elif code < len(table):
            entry = table[code]
            if len(table) <= mask:
                table.append(previous + entry[:1])
        elif code == len(table):
            entry = previous + previous[:1]
            if len(table) <= mask:
                table.append(entry)
        else:
            raise ValueError(f"corrupt compress stream: code {code} beyond table size {len(table)}")
        out += entry
        previous = entry


def decompress_z(data: bytes) -> bytes:
    """A ``.Z`` file's content: with ``gzip -dc`` when the system has gzip (fast), else in Python."""
    gzip = shutil.which("gzip")
    if gzip:
        run = subprocess.run([gzip, "-dc"], input=data, capture_output=True, check=False)
        if run.returncode == 0:
            return run.stdout
    return lzw_decompress(data)


def _inner_tars(archive, folder: str) -> list[str]:
    """Write the inner tars of ``VisTex.tar.gz`` (decompressed) into ``folder``; their paths, archive order."""
    paths = []
    for name, data in iter_tar(archive, keep=lambda n: n.endswith((".tar.Z", ".tar", ".tar.gz", ".tgz"))):
        if name.endswith(".tar.Z"):
            try:
                data = decompress_z(data)
            except ValueError as error:
                raise HandlerError(f"vistex: cannot decompress {archive.name}:{name}: {error}") from error
        path = f"{folder}/{len(paths):03d}.tar"
        with open(path, "wb") as handle:
            handle.write(data)
        paths.append(path)
    return paths


def _index(paths: list[str]) -> dict[str, tuple]:
    """Normalised member path -> ("file", tar index, member name) or ("link", target path)."""
    entries: dict[str, tuple] = {}
    for index, path in enumerate(paths):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                name = posixpath.normpath(member.name.lstrip("/"))
                if member.isfile():
                    entries[name] = ("file", index, member.name)
                elif member.issym():
                    entries[name] = ("link", posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname)).lstrip("/"))
                elif member.islnk():
                    entries[name] = ("link", posixpath.normpath(member.linkname.lstrip("/")))
    return entries


def _resolve(entries: dict[str, tuple], name: str) -> tuple[int, str]:
    current = name
    for _ in range(MAX_LINKS):
        entry = entries.get(current)
        if entry is None:
            break
        if entry[0] == "file":
            return entry[1], entry[2]
        current = entry[1]
    raise HandlerError(f"vistex: {name} links to {current}, which is not a file of the archive")


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("VisTex.tar.gz")
    classes: list[str] = []

    def examples():
        with tempfile.TemporaryDirectory(prefix="vistex-") as folder:
            paths = _inner_tars(archive, folder)
            entries = _index(paths)
            chosen = sorted(n for n in entries if REFERENCE.fullmatch(n))
            classes.extend(sorted({REFERENCE.fullmatch(n).group(1) for n in chosen}))
            sources = {n: _resolve(entries, n) for n in chosen}
            splitter = CategoricalSplitter(ALL_DATA)
            tars = [tarfile.open(p) for p in paths]
            try:
                for name in chosen:
                    index, member = sources[name]
                    image = ctx.decode(tars[index].extractfile(member).read(), f"{archive.name}:{name}")
                    if image is not None:
                        yield Example(splitter.next(), f"{archive.name}:{name}", image, classes.index(REFERENCE.fullmatch(name).group(1)))
            finally:
                for tar in tars:
                    tar.close()

    return HandlerOutput(examples(), classes)


HANDLER = Handler(
    name="vistex",
    dataset_key="vistex",
    artefacts=(Artefact("VisTex.tar.gz", "http://vismod.media.mit.edu/pub/VisTex/VisTex.tar.gz", "f176ad5c9383141f981e3668b232add7"),),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over VisTex/Images/Reference/<group>/*.ppm, sorted paths; groups sorted",
    website="https://vismod.media.mit.edu/vismod/imagery/VisionTexture/vistex.html",
    licence="MIT Media Lab: free for research, with the copyright notice; see the website",
    citation="R. Picard, C. Graczyk, S. Mann, et al., VisTex: Vision Texture database, MIT Media Lab, 1995",
)
