"""TID2008 / TID2013 image quality (``nevis:tid2008``, ``nevis:tid2013``): distorted images in 5 MSSIM bins.

Archive: ``tid<year>.rar`` (a RAR archive; see ``_rar.py`` for how it is read) holding the distorted
images ``i<subject>_<distortion>_<level>.bmp`` (25 subjects; 17 distortion types x 4 levels in 2008,
24 x 5 in 2013), the reference images and metric tables, among them ``MSSIM.TXT`` (2008) /
``MSSIM.txt`` (2013): one MSSIM value per distorted image, ordered by subject, then distortion type,
then level. As the reference (``unrar e``), folders inside the archive are ignored: files are found
by base name (for a name present twice, the last copy wins).

Labels (reference): the 1,700 / 3,000 MSSIM values are sorted and cut into 5 consecutive groups of
equal size (340 / 600); an image's class is the first group that contains its value (ties across a
cut go to the lower class). Class 0 holds the lowest MSSIM (strongest distortion). Order: base names
sorted case-insensitively; ids ``<archive>:<member path>``.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)).
Deviations: the extension test is case-insensitive (the reference dropped files named ``.BMP`` although
its table lists them); images are taken in sorted name order (the reference used the unordered
directory listing of the unpacked files).
"""

from __future__ import annotations

import bisect
import posixpath

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._rar import rar_archive
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter

SUBJECTS = 25
NUM_BINS = 5
PROPERTIES = {  # year -> (distortion types, levels, MSSIM file, url, md5, website)
    2008: (17, 4, "MSSIM.TXT", "https://ponomarenko.info/tid/tid2008.rar", "732aeec405a57b589aeee4f1c58a4c1b", "https://ponomarenko.info/tid2008.htm"),
    2013: (24, 5, "MSSIM.txt", "https://ponomarenko.info/tid2013/tid2013.rar", "2c42bec2407adc49cf4d7858daf8f99b", "https://ponomarenko.info/tid2013.htm"),
}


def image_names(year: int) -> list[str]:
    """The distorted images' names in the order of the MSSIM table."""
    types, levels = PROPERTIES[year][:2]
    return [f"i{s:02d}_{t:02d}_{l}.bmp" for s in range(1, SUBJECTS + 1) for t in range(1, types + 1) for l in range(1, levels + 1)]


def parse_mssim(text: str, year: int, where: str) -> dict[str, float]:
    names = image_names(year)
    values = [line.strip() for line in text.splitlines() if line.strip()]
    if len(values) < len(names):
        raise HandlerError(f"tid{year}: {where} has {len(values)} values, expected {len(names)}")
    try:
        return {name: float(value) for name, value in zip(names, values)}
    except ValueError as error:
        raise HandlerError(f"tid{year}: {where}: {error}") from error


def quality_bins(values: list[float], num_bins: int = NUM_BINS) -> tuple[list[float], int]:
    """(sorted values, group size) of the reference's equal-size groups."""
    return sorted(values), len(values) // num_bins


def bin_of(value: float, ordered: list[float], size: int) -> int | None:
    """The first group holding ``value`` (None when only the remainder past the last group holds it)."""
    first = bisect.bisect_left(ordered, value)
    group = first // size
    return group if group < NUM_BINS else None


def class_names(ordered: list[float], size: int) -> list[str]:
    return [f"MSSIM {ordered[b * size]:.4f}-{ordered[(b + 1) * size - 1]:.4f}" for b in range(NUM_BINS)]


def make_handler(year: int) -> Handler:
    types, levels, mssim_name, url, md5, website = PROPERTIES[year]
    archive_name = f"tid{year}.rar"

    def convert(ctx: HandlerContext) -> HandlerOutput:
        archive = ctx.file(archive_name)
        name = f"tid{year}"
        notes: dict = {}
        classes: list[str] = []

        def examples():
            with rar_archive(archive, name) as members:
                images = {}  # lower-case base name -> (member, read); the last copy wins
                mssim_read = None
                for member, read in members:
                    base = posixpath.basename(member)
                    if base == mssim_name:
                        mssim_read = read
                    elif base.lower().endswith(".bmp"):
                        images[base.lower()] = (member, read)
                if mssim_read is None:
                    raise HandlerError(f"{name}: {archive.name} holds no {mssim_name}")
                mssim = parse_mssim(mssim_read().decode("latin-1"), year, mssim_name)
                ordered, size = quality_bins(list(mssim.values()))
                classes.extend(class_names(ordered, size))
                notes.update(mssim_images=len(mssim), images_found=len(images))
                splitter = CategoricalSplitter(ALL_DATA)
                used = ((images[k][0], images[k][1]()) for k in sorted(images) if k in mssim)
                for member, example_id, image in ctx.decoded(used, archive.name):
                    label = bin_of(mssim[posixpath.basename(member).lower()], ordered, size)
                    if label is not None:
                        yield Example(splitter.next(), example_id, image, label)

        return HandlerOutput(examples(), classes, notes)

    return Handler(
        name=f"tid{year}",
        dataset_key=f"tid{year}",
        artefacts=(Artefact(archive_name, url, md5),),
        convert=convert,
        split_rule=f"labels: {NUM_BINS} equal-size MSSIM groups; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the distorted images, sorted names",
        website=website,
        licence="free for scientific research (see the website)",
        citation=(
            "N. Ponomarenko et al., TID2008 - A Database for Evaluation of Full-Reference Visual Quality Assessment Metrics, 2009"
            if year == 2008
            else "N. Ponomarenko et al., Image database TID2013: Peculiarities, results and perspectives, Signal Processing: Image Communication 2015"
        ),
        manual_step="unpacking the compressed .rar needs unrar, 7z or bsdtar on PATH",
    )
