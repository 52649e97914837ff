"""WikiArt style (``nevis:wiki_paintings_style``): 27 painting styles, colour images.

Archives (ArtGAN's WikiArt release): ``wikiart.zip`` (images ``wikiart/<Style>/<file>.jpg``) and
``wikiart_csv.zip`` (``style_train.csv`` and ``style_val.csv``, rows ``<Style>/<file>.jpg,<class id>``
without a header; a header row, if present, is skipped). Class ids are the CSV's ids (names below). Images are shrunk so that their longer
side is at most 256 pixels (bicubic, as the reference). Order: CSV row order.

Split rule (reference): ``style_train.csv`` -> train/dev/dev_test by categorical 0.70/0.15/0.15
(RandomState(0)); ``style_val.csv`` -> test. Images that cannot be read from the zip (a few, as the
reference noted) are skipped and counted in ``notes.unreadable``; rows whose image is absent are counted
in ``notes.missing``.
Deviation: the reference read the CSVs with pandas' default header row, so it silently dropped the
first row of each file; we keep every row.
"""

from __future__ import annotations

import zipfile
import zlib

from PIL import Image

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter

CLASS_NAMES = [
    "Abstract_Expressionism", "Action_painting", "Analytical_Cubism", "Art_Nouveau", "Baroque",
    "Color_Field_Painting", "Contemporary_Realism", "Cubism", "Early_Renaissance", "Expressionism", "Fauvism",
    "High_Renaissance", "Impressionism", "Mannerism_Late_Renaissance", "Minimalism", "Naive_Art_Primitivism",
    "New_Realism", "Northern_Renaissance", "Pointillism", "Pop_Art", "Post_Impressionism", "Realism", "Rococo",
    "Romanticism", "Symbolism", "Synthetic_Cubism", "Ukiyo_e",
]
TASK = "style"
MAX_SIZE = 256


def shrink(image: Image.Image, max_size: int = MAX_SIZE) -> Image.Image:
    """The reference's resize: longer side to ``max_size`` (bicubic, sides truncated), smaller images kept."""
    width, height = image.size
    if max(width, height) <= max_size:
        return image
    factor = max_size / max(width, height)
    return image.resize((int(factor * width), int(factor * height)), resample=Image.BICUBIC)


def parse_csv(text: str, where: str) -> list[tuple[str, int]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        path, _, label = line.strip().rpartition(",")
        try:
            rows.append((path, int(label)))
        except ValueError as error:
            if not rows and number == 1:
                continue  # a header row, should a copy of the CSVs carry one
            raise HandlerError(f"wiki_paintings_{TASK}: line {number} of {where} is not <path>,<class id>: {line!r}") from error
    return rows


def convert(ctx: HandlerContext) -> HandlerOutput:
    csv_archive = ctx.file("wikiart_csv.zip")
    with zipfile.ZipFile(csv_archive) as zf:
        parts = []
        for name in (f"{TASK}_train.csv", f"{TASK}_val.csv"):
            member = next((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == name), None)
            if member is None:
                raise HandlerError(f"wiki_paintings_{TASK}: {csv_archive.name} has no {name}")
            parts.append(parse_csv(zf.read(member).decode("utf-8"), f"{csv_archive.name}:{member}"))
    archive = ctx.file("wikiart.zip")
    notes = {"unreadable": 0, "missing": 0}

    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        with zipfile.ZipFile(archive) as zf:
            for rows, fixed in zip(parts, (None, "test")):
                for path, label in rows:
                    if not 0 <= label < len(CLASS_NAMES):
                        raise HandlerError(f"wiki_paintings_{TASK}: class id {label} of {path} outside 0..{len(CLASS_NAMES) - 1}")
                    member = f"wikiart/{path}"
                    try:
                        data = zf.read(member)
                    except KeyError:
                        notes["missing"] += 1
                        continue
                    except (zlib.error, zipfile.BadZipFile):
                        notes["unreadable"] += 1
                        continue
                    image = ctx.decode(data, f"{archive.name}:{member}")
                    if image is not None:
                        yield Example(fixed or splitter.next(), f"{archive.name}:{member}", shrink(image), label)

    return HandlerOutput(examples(), list(CLASS_NAMES), notes)


_BASE = "http://web.fsktm.um.edu.my/~cschan/source/ICIP2017/"
HANDLER = Handler(
    name="wiki_paintings_style",
    dataset_key="wikipaintings",
    artefacts=(
        Artefact("wikiart.zip", _BASE + "wikiart.zip", "c6b43cbcd474b875a5626ffde3b627e1"),
        Artefact("wikiart_csv.zip", _BASE + "wikiart_csv.zip", "0d221e7cb0812da6b59044cfca9aafee"),
    ),
    convert=convert,
    split_rule="style_train.csv -> categorical 0.70/0.15/0.15 (RandomState(0)) train/dev/dev_test; style_val.csv -> test",
    website="https://github.com/cs-chan/ArtGAN/tree/master/WikiArt%20Dataset",
    licence="non-commercial research use (WikiArt images; see the ArtGAN repository)",
    citation=(
        "W. R. Tan, C. S. Chan, H. Aguirre, K. Tanaka, Ceci n'est pas une pipe: a deep convolutional network for "
        "fine-art paintings classification, ICIP 2016"
    ),
)
