"""TFDS sources: the 22 TensorFlow Datasets of the NEVIS'22 streams, with the reference's split rules.

Rules (the reference's TFDS split rules in ``dm_nevis/datasets_storage``); every slice is contiguous, in TFDS order
(files read in order, no shuffling), so ``a..b`` below is ``split[a:b]``:

* ``train_test`` (mnist, cifar10, cifar100, caltech101, caltech_birds2011, emnist/balanced,
  fashion_mnist, oxford_iiit_pet, stanford_dogs, stl10, svhn_cropped): with ``N`` = size of TFDS
  ``train``, ``a = int(0.7 N)``, ``b = a + int(0.15 N)``: train = ``0..a``, dev = ``a..b``,
  dev_test = ``b..N``; test = TFDS ``test``.
* ``train_val_test`` (dtd, oxford_flowers102, voc/2007, patch_camelyon, sun397, celeb_a):
  train = ``0..int(0.8 N)`` of ``train``, dev = the rest of ``train``; dev_test = TFDS ``validation``;
  test = TFDS ``test``.
* ``imagenet`` (imagenet2012): 0.90 / 0.05 / rest of ``train`` as above; test = TFDS ``validation``.
* ``voc2012`` (voc/2012): train/dev 0.8/0.2 of ``train``; dev_test = first ``int(0.5 M)`` of
  ``validation`` (``M`` its size), test = the rest of ``validation``.
* ``coil100``: TFDS ``train`` by viewing-angle bin (``angle_label``, 72 bins of 5 degrees): train bins
  {70, 71, 0, 1, 2}, dev {16..20}, dev_test {50..54}, test the other 57 bins; label ``object_id``.
* ``smallnorb``: test = TFDS ``test``; TFDS ``train`` by ``instance``: dev = 4, dev_test = 6,
  train = {7, 8, 9} (other instances, absent from the real train split, are dropped);
  label ``label_category``.
* ``domainnet``: train = ``train`` of real, painting, clipart, quickdraw, infograph (concatenated in
  that order); dev = their ``test`` splits; dev_test = ``domainnet/sketch`` ``train``; test =
  ``domainnet/sketch`` ``test``; 345 classes.

Multi-label datasets give float32 multi-hot targets: voc/2007 and voc/2012 from ``labels`` (20
classes), celeb_a from its 40 boolean ``attributes`` (sorted attribute names, the reference's order).
Images go through :func:`nevis_bench.data.images.square_resize` (central square, resized to the stored
size); grey datasets (mnist, emnist, fashion_mnist, smallnorb) keep one channel.

Reading never downloads unless the source was made with ``download=True`` (``--download``).
:meth:`TfdsSource.availability` looks for the prepared TFDS files on disk without importing
TensorFlow; TensorFlow and tensorflow_datasets are imported only inside the functions that read or
prepare TFDS data. When :meth:`TfdsSource.build` is called in a process that has imported torch but not
TensorFlow (a training process building its task cache on first use), the reading runs in a child
process (``python -m nevis_bench.data.tfds_source``) so that TensorFlow never enters the training
process (TF next to a CUDA build of torch crashes; see ``docs/design.md``); ``NEVIS_BENCH_TFDS_IN_PROCESS=1``
turns that off. ``nevis-bench data prepare`` builds task caches in-process. Example ids are ``<tfds builder>:<tfds split>:<index>``.

The TFDS data folder is, in order: the ``tfds_data_dir`` given to the source, ``$TFDS_DATA_DIR``,
``<data_dir>/tensorflow_datasets``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from nevis_bench.data.images import RESIZE_ID, frame_resize, square_resize
from nevis_bench.data.sources import Availability, DataMissingError, default_data_dir

TRAIN_TEST, TRAIN_VAL_TEST, IMAGENET, VOC2012, COIL100, SMALLNORB, DOMAINNET = (
    "train_test", "train_val_test", "imagenet", "voc2012", "coil100", "smallnorb", "domainnet",
)

COIL100_BINS = {"train": (70, 71, 0, 1, 2), "dev": (16, 17, 18, 19, 20), "dev_test": (50, 51, 52, 53, 54)}
SMALLNORB_INSTANCES = {"train": (7, 8, 9), "dev": (4,), "dev_test": (6,)}
DOMAINNET_TRAIN_DOMAINS = ("real", "painting", "clipart", "quickdraw", "infograph")
DOMAINNET_TEST_DOMAIN = "sketch"


@dataclass(frozen=True)
class TfdsSpec:
    name: str  # the reference's TFDS name (catalog source "tfds:<name>")
    rule: str
    version: str  # TFDS version read (that of tensorflow-datasets 4.9.10)
    num_classes: int
    channels: int
    builders: tuple[str, ...] = ()  # TFDS builder[/config] names read; default (name,)
    label: str = "label"
    multi_label: str | None = None  # "labels" (VOC) or "attributes" (CelebA)
    manual: str = ""  # manual download step, when TFDS cannot download by itself
    manual_files: tuple[str, ...] = ()  # the files that step puts in the manual folder

    @property
    def builder_names(self) -> tuple[str, ...]:
        return self.builders or (self.name,)


_IMAGENET_MANUAL = (
    "ImageNet needs a manual download: get ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
    "https://image-net.org (login required) into a folder DIR, then run: "
    "nevis-bench data prepare imagenet2012 --from DIR"
)

TFDS_SPECS: dict[str, TfdsSpec] = {
    s.name: s
    for s in [
        TfdsSpec("mnist", TRAIN_TEST, "3.0.1", 10, 1),
        TfdsSpec("cifar10", TRAIN_TEST, "3.0.2", 10, 3),
        TfdsSpec("cifar100", TRAIN_TEST, "3.0.2", 100, 3),
        TfdsSpec("caltech101", TRAIN_TEST, "3.0.2", 102, 3),
        TfdsSpec("caltech_birds2011", TRAIN_TEST, "0.2.0", 200, 3),
        TfdsSpec("emnist/balanced", TRAIN_TEST, "3.1.0", 47, 1),
        TfdsSpec("fashion_mnist", TRAIN_TEST, "3.0.1", 10, 1),
        TfdsSpec("oxford_iiit_pet", TRAIN_TEST, "4.0.0", 37, 3),
        TfdsSpec("stanford_dogs", TRAIN_TEST, "0.2.0", 120, 3),
        TfdsSpec("stl10", TRAIN_TEST, "1.0.0", 10, 3),
        TfdsSpec("svhn_cropped", TRAIN_TEST, "3.1.0", 10, 3),
        TfdsSpec("dtd", TRAIN_VAL_TEST, "3.0.1", 47, 3),
        TfdsSpec("oxford_flowers102", TRAIN_VAL_TEST, "2.1.1", 102, 3),
        TfdsSpec("voc/2007", TRAIN_VAL_TEST, "5.0.0", 20, 3, multi_label="labels"),
        TfdsSpec("patch_camelyon", TRAIN_VAL_TEST, "2.0.0", 2, 3),
        TfdsSpec("sun397", TRAIN_VAL_TEST, "4.0.0", 397, 3, builders=("sun397/tfds",)),
        TfdsSpec("celeb_a", TRAIN_VAL_TEST, "2.1.0", 40, 3, multi_label="attributes"),
        TfdsSpec("imagenet2012", IMAGENET, "5.1.0", 1000, 3, manual=_IMAGENET_MANUAL,
                 manual_files=("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")),
        TfdsSpec("voc/2012", VOC2012, "5.0.0", 20, 3, multi_label="labels"),
        TfdsSpec("coil100", COIL100, "2.0.0", 100, 3, label="object_id"),
        TfdsSpec("smallnorb", SMALLNORB, "2.0.0", 5, 1, label="label_category"),
        TfdsSpec(
            "domainnet", DOMAINNET, "1.0.0", 345, 3,
            builders=tuple(f"domainnet/{d}" for d in DOMAINNET_TRAIN_DOMAINS + (DOMAINNET_TEST_DOMAIN,)),
        ),
    ]
}

BUILTIN_SPECS = frozenset(TFDS_SPECS)  # the NEVIS'22 datasets; others come from stream files


def register_spec(spec: TfdsSpec) -> None:
    """Make a TFDS dataset outside NEVIS'22 readable (a stream file's ``tfds`` task); the 22 built-in
    specs cannot be replaced, and a name registered twice must have the same spec."""
    existing = TFDS_SPECS.get(spec.name)
    if existing is not None and existing != spec:
        what = "a NEVIS'22 dataset with the reference's split rule" if spec.name in BUILTIN_SPECS else "registered with other settings"
        raise ValueError(f"TFDS dataset {spec.name!r} is {what}: {existing}")
    TFDS_SPECS[spec.name] = spec


# The TFDS splits each rule reads (from every builder of the spec).
_READS = {
    TRAIN_TEST: ("train", "test"),
    TRAIN_VAL_TEST: ("train", "validation", "test"),
    IMAGENET: ("train", "validation"),
    VOC2012: ("train", "validation"),
    COIL100: ("train",),
    SMALLNORB: ("train", "test"),
    DOMAINNET: ("train", "test"),
}
_AUX = {COIL100: {"train": ("angle_label",)}, SMALLNORB: {"train": ("instance",)}}

Part = tuple[str, str, np.ndarray]  # (builder, tfds split, example indices)


def contiguous(start: int, stop: int) -> np.ndarray:
    return np.arange(start, stop, dtype=np.int64)


def plan_splits(
    spec: TfdsSpec, counts: Mapping[tuple[str, str], int], aux: Mapping[tuple[str, str], Mapping[str, np.ndarray]] | None = None
) -> dict[str, list[Part]]:
    """Which examples of which TFDS splits form train, dev, dev_test and test (the rule functions).

    ``counts`` gives the size of every (builder, TFDS split) that the rule reads; ``aux`` the per-example
    features the coil100 (``angle_label``) and smallnorb (``instance``) rules need.
    """
    aux = aux or {}
    b = spec.builder_names[0]
    if spec.rule in (TRAIN_TEST, IMAGENET):
        n = counts[(b, "train")]
        train_fraction, dev_fraction = (0.7, 0.15) if spec.rule == TRAIN_TEST else (0.9, 0.05)
        a = int(n * train_fraction)
        c = a + int(n * dev_fraction)
        test = (b, "test", contiguous(0, counts[(b, "test")])) if spec.rule == TRAIN_TEST else (
            b, "validation", contiguous(0, counts[(b, "validation")]))
        return {
            "train": [(b, "train", contiguous(0, a))],
            "dev": [(b, "train", contiguous(a, c))],
            "dev_test": [(b, "train", contiguous(c, n))],
            "test": [test],
        }
    if spec.rule in (TRAIN_VAL_TEST, VOC2012):
        n = counts[(b, "train")]
        a = int(n * 0.8)
        plan = {"train": [(b, "train", contiguous(0, a))], "dev": [(b, "train", contiguous(a, n))]}
        m = counts[(b, "validation")]
        if spec.rule == TRAIN_VAL_TEST:
            plan["dev_test"] = [(b, "validation", contiguous(0, m))]
            plan["test"] = [(b, "test", contiguous(0, counts[(b, "test")]))]
        else:
            half = int(m * 0.5)
            plan["dev_test"] = [(b, "validation", contiguous(0, half))]
            plan["test"] = [(b, "validation", contiguous(half, m))]
        return plan
    if spec.rule == COIL100:
        angle = np.asarray(aux[(b, "train")]["angle_label"])
        taken = np.zeros(len(angle), dtype=bool)
        plan = {}
        for split, bins in COIL100_BINS.items():
            mask = np.isin(angle, bins)
            taken |= mask
            plan[split] = [(b, "train", np.flatnonzero(mask))]
        plan["test"] = [(b, "train", np.flatnonzero(~taken))]
        return plan
    if spec.rule == SMALLNORB:
        instance = np.asarray(aux[(b, "train")]["instance"])
        plan = {split: [(b, "train", np.flatnonzero(np.isin(instance, ids)))] for split, ids in SMALLNORB_INSTANCES.items()}
        plan["test"] = [(b, "test", contiguous(0, counts[(b, "test")]))]
        return plan
    if spec.rule == DOMAINNET:
        train_builders = [f"domainnet/{d}" for d in DOMAINNET_TRAIN_DOMAINS]
        sketch = f"domainnet/{DOMAINNET_TEST_DOMAIN}"
        return {
            "train": [(x, "train", contiguous(0, counts[(x, "train")])) for x in train_builders],
            "dev": [(x, "test", contiguous(0, counts[(x, "test")])) for x in train_builders],
            "dev_test": [(sketch, "train", contiguous(0, counts[(sketch, "train")]))],
            "test": [(sketch, "test", contiguous(0, counts[(sketch, "test")]))],
        }
    raise ValueError(f"unknown TFDS split rule {spec.rule!r}")


def tfds_data_dir(data_dir: str | os.PathLike | None = None, tfds_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The TFDS data folder: ``tfds_dir``, else ``$TFDS_DATA_DIR``, else ``<data_dir>/tensorflow_datasets``."""
    if tfds_dir:
        return pathlib.Path(tfds_dir).expanduser()
    if os.environ.get("TFDS_DATA_DIR"):
        return pathlib.Path(os.environ["TFDS_DATA_DIR"]).expanduser()
    if data_dir is None:
        data_dir = default_data_dir()
    return pathlib.Path(data_dir).expanduser() / "tensorflow_datasets"


def on_disk(spec: TfdsSpec, folder: pathlib.Path) -> list[str]:
    """The builders of ``spec`` whose files (at the pinned version) are missing under ``folder``."""
    return [b for b in spec.builder_names if not (folder / b / spec.version / "dataset_info.json").exists()]


def build_identity(spec: TfdsSpec, folder: pathlib.Path) -> str:
    """What identifies the prepared TFDS files of ``spec`` under ``folder``, without reading them.

    For every builder: its version and, from its ``dataset_info.json``, each split's name, shard lengths
    and byte count (a different build of the same dataset differs in these). A short hash of that, or
    ``absent`` when nothing is on disk yet. Part of the task-cache fingerprint, so a changed build gets
    a new cache entry.
    """
    parts = []
    for builder_name in spec.builder_names:
        info_file = folder / builder_name / spec.version / "dataset_info.json"
        try:
            info = json.loads(info_file.read_text())
        except FileNotFoundError:
            parts.append((builder_name, "absent"))
            continue
        except (OSError, ValueError):
            parts.append((builder_name, "unreadable"))
            continue
        splits = info.get("splits", []) if isinstance(info, dict) else []
        parts.append((builder_name, info.get("version") if isinstance(info, dict) else None, sorted(
            (str(x.get("name")), [str(n) for n in x.get("shardLengths", [])], str(x.get("numBytes")))
            for x in splits if isinstance(x, dict)
        )))
    if all(p[1] == "absent" for p in parts):
        return "absent"
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def expected_counts(spec: TfdsSpec, folder: pathlib.Path) -> dict[str, int] | None:
    """The size of train, dev, dev_test and test that the build under ``folder`` gives, from the split sizes
    its ``dataset_info.json`` files record; None when they do not record them or the rule needs per-example
    features (coil100, smallnorb). ``nevis-bench data verify`` compares a cache entry with it."""
    if spec.rule in (COIL100, SMALLNORB):
        return None
    counts = {}
    for builder_name in spec.builder_names:
        try:
            info = json.loads((folder / builder_name / spec.version / "dataset_info.json").read_text())
            sizes = {x["name"]: sum(int(n) for n in x["shardLengths"]) for x in info["splits"]}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        for split in _READS[spec.rule]:
            if split not in sizes:
                return None
            counts[(builder_name, split)] = sizes[split]
    return {split: sum(len(idx) for _, _, idx in parts) for split, parts in plan_splits(spec, counts).items()}


def how_to_get(spec: TfdsSpec, folder: pathlib.Path) -> str:
    if spec.manual:
        return spec.manual
    missing = on_disk(spec, folder)
    found = []
    for b in missing:
        versions = sorted(p.name for p in (folder / b).glob("*") if (p / "dataset_info.json").exists())
        if versions:
            found.append(f"{b} {', '.join(versions)}")
    note = f" (found other version(s): {'; '.join(found)}; this harness reads {spec.version})" if found else ""
    return f"nevis-bench data prepare {spec.name} --download   (TFDS downloads and prepares it into {folder}; needs network){note}"


@dataclass(frozen=True)
class TfdsSource:
    """Task source of a TFDS dataset (a :class:`nevis_bench.stream.TaskSource`)."""

    name: str  # key of TFDS_SPECS, e.g. "voc/2007"
    data_dir: str | None = None  # None: resolved at use ($NEVIS_BENCH_DATA_DIR or ~/.cache/nevis-bench)
    tfds_dir: str | None = None
    download: bool = False

    @property
    def spec(self) -> TfdsSpec:
        return TFDS_SPECS[self.name]

    @property
    def folder(self) -> pathlib.Path:
        return tfds_data_dir(self.data_dir, self.tfds_dir)

    def fingerprint(self, image_size: int) -> str:
        """Dataset, version, split rule, image size, resize method and the identity of the TFDS build on disk
        (:func:`build_identity`): pointing at a different build of the same dataset gives a new cache entry."""
        spec = self.spec
        identity = build_identity(spec, self.folder)
        return f"tfds:v2:{spec.name}:{spec.version}:{spec.rule}:{image_size}:{RESIZE_ID}:{identity}"

    def availability(self) -> Availability:
        if not on_disk(self.spec, self.folder):
            return Availability(True)
        if self.download and not self.spec.manual:
            return Availability(True, "downloaded by TFDS on first use (--download)")
        return Availability(False, how_to_get(self.spec, self.folder))

    def describe(self) -> str:
        return f"tfds:{self.name}"

    def prepare(self, manual_dir: str | os.PathLike | None = None) -> None:
        """Download (or, with ``manual_dir``, convert manually fetched files) into the TFDS folder."""
        prepare_tfds(self.spec, self.folder, manual_dir=manual_dir)

    def build(self, image_size: int) -> dict:
        return self._build(image_size, framed=False)

    def build_full(self, image_size: int) -> dict:
        """As :meth:`build`, plus each image's full frame and aspect ratio (framing ``full``)."""
        return self._build(image_size, framed=True)

    def _build(self, image_size: int, framed: bool) -> dict:
        if should_isolate():
            return build_in_child(self, image_size, framed)
        if self.download:
            self.prepare()
        return build_splits(self.spec, self.folder, image_size, framed)


# The child process that reads TFDS for a training process (tests replace it to run under mock_data).
WORKER_COMMAND = [sys.executable, "-m", "nevis_bench.data.tfds_source"]
_MISSING_EXIT = 3


def should_isolate() -> bool:
    """Read TFDS in a child process: torch is loaded here and TensorFlow is not.

    ``NEVIS_BENCH_TFDS_IN_PROCESS=1`` reads in this process anyway (tests under ``tfds.testing.mock_data``,
    or a CPU-only torch where TF and torch coexist).
    """
    if os.environ.get("NEVIS_BENCH_TFDS_IN_PROCESS") == "1":
        return False
    return "torch" in sys.modules and "tensorflow" not in sys.modules


PARTS = ("images", "labels", "ids")
FRAME_PARTS = ("frames", "aspects")


def build_in_child(source: TfdsSource, image_size: int, framed: bool = False) -> dict:
    """``source.build(image_size)`` (``build_full`` when ``framed``) run by a child process; arrays come back
    through .npy files."""
    if source.data_dir is not None:
        scratch = pathlib.Path(source.data_dir).expanduser() / "tmp"
    else:
        scratch = default_data_dir() / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    out = pathlib.Path(tempfile.mkdtemp(prefix="tfds-", dir=scratch))
    try:
        command = WORKER_COMMAND + [source.name, str(image_size), str(out), "--tfds-dir", str(source.folder)]
        if source.download:
            command.append("--download")
        if framed:
            command.append("--framed")
        if source.name not in BUILTIN_SPECS:  # a stream file's dataset: the child learns its spec here
            command += ["--spec", json.dumps(dataclasses.asdict(source.spec))]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode == _MISSING_EXIT:
            raise DataMissingError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else how_to_get(source.spec, source.folder))
        if result.returncode != 0:
            raise RuntimeError(f"reading tfds:{source.name} in a child process failed:\n{result.stderr[-4000:]}")
        parts = PARTS + (FRAME_PARTS if framed else ())
        return {
            split: tuple(np.load(out / f"{split}.{part}.npy") for part in parts)
            for split in ("train", "dev", "dev_test", "test")
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _child_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="read one TFDS dataset into .npy files (used by TfdsSource)")
    parser.add_argument("name")
    parser.add_argument("image_size", type=int)
    parser.add_argument("out")
    parser.add_argument("--tfds-dir", required=True)
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--spec", help="JSON of a TfdsSpec outside NEVIS'22 (register_spec)")
    parser.add_argument("--framed", action="store_true", help="also write full frames and aspect ratios")
    args = parser.parse_args(argv)
    if args.spec:
        fields = json.loads(args.spec)
        register_spec(TfdsSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}))
    source = TfdsSource(args.name, tfds_dir=args.tfds_dir, download=args.download)
    try:
        if source.download:
            source.prepare()
        splits = build_splits(source.spec, source.folder, args.image_size, args.framed)
    except DataMissingError as error:
        print(str(error).replace("\n", " "), file=sys.stderr)
        return _MISSING_EXIT
    for split, arrays in splits.items():
        for part, array in zip(PARTS + FRAME_PARTS, arrays):
            np.save(pathlib.Path(args.out) / f"{split}.{part}.npy", array)
    return 0


def prepare_tfds(spec: TfdsSpec, folder: pathlib.Path, manual_dir: str | os.PathLike | None = None) -> None:
    """Let TFDS download and prepare ``spec`` into ``folder`` (from ``manual_dir`` for manual datasets)."""
    if manual_dir is not None:
        absent = [f for f in spec.manual_files if not (pathlib.Path(manual_dir) / f).exists()]
        if absent:
            raise DataMissingError(f"tfds:{spec.name}: {', '.join(absent)} not found in {manual_dir}. {spec.manual}")
    tfds = _import_tfds()
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir)) if manual_dir else None
    for builder_name in spec.builder_names:
        builder = tfds.builder(f"{builder_name}:{spec.version}", data_dir=str(folder))
        try:
            builder.download_and_prepare(download_config=config)
        except Exception as error:  # network, manual files, disk: say what failed and how to get the data
            raise DataMissingError(f"TFDS could not prepare {builder_name}: {type(error).__name__}: {error}. {how_to_get(spec, folder)}") from error


def _import_tfds():
    """tensorflow_datasets (and with it TensorFlow), imported only by the functions that read TFDS."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow_datasets as tfds

    return tfds


FRAMES, ASPECTS = "__frames__", "__aspects__"  # aux entries of a framed read (framing "full")


def _read_split(builder, split: str, spec: TfdsSpec, image_size: int, aux_keys: Sequence[str], framed: bool = False):
    """Images (resized), labels and aux features of one TFDS split, in TFDS order; ``framed`` adds each
    image's full frame and aspect ratio to the aux features (``FRAMES``, ``ASPECTS``)."""
    tfds = _import_tfds()
    label_key = spec.multi_label or spec.label
    wanted = {"image": True, label_key: True, **{k: True for k in aux_keys}}
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=False,
        decoders=tfds.decode.PartialDecoding(wanted),
        read_config=tfds.ReadConfig(interleave_cycle_length=1, try_autocache=False),
    )
    # Preallocate from the TFDS metadata (no copy at the end for large splits); overflow goes to a list.
    hint = builder.info.splits[split].num_examples if split in builder.info.splits else 0
    shape = (image_size, image_size, spec.channels)
    head = np.empty((hint,) + shape, np.uint8)
    tail: list[np.ndarray] = []
    labels, aux = [], {k: [] for k in aux_keys}
    frames: list[np.ndarray] = []
    aspects: list[float] = []
    for count, example in enumerate(tfds.as_numpy(dataset)):
        resized = square_resize(example["image"], image_size, spec.channels)
        if framed:
            frame, aspect = frame_resize(example["image"], image_size, spec.channels)
            frames.append(frame)
            aspects.append(aspect)
        if count < hint:
            head[count] = resized
        else:
            tail.append(resized)
        labels.append(_label(example[label_key], spec))
        for k in aux_keys:
            aux[k].append(int(example[k]))
    count = len(labels)
    images = head[: min(count, hint)]
    if tail:
        images = np.concatenate([images, np.stack(tail)])
    dtype = np.float32 if spec.multi_label else np.int64
    label_array = np.asarray(labels, dtype=dtype).reshape((count, spec.num_classes) if spec.multi_label else (count,))
    extra = {k: np.asarray(v, dtype=np.int64) for k, v in aux.items()}
    if framed:
        extra[FRAMES] = np.stack(frames) if frames else np.zeros((0,) + shape, np.uint8)
        extra[ASPECTS] = np.asarray(aspects, dtype=np.float32)
    return images, label_array, extra


def _label(value, spec: TfdsSpec):
    if spec.multi_label == "attributes":
        return [float(bool(value[name])) for name in sorted(value)]
    if spec.multi_label:
        hot = np.zeros(spec.num_classes, np.float32)
        hot[np.asarray(value, dtype=np.int64)] = 1.0
        return hot
    return int(value)


def _take(array: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``array[indices]``, as a view when the indices are one contiguous run."""
    if len(indices) and indices[-1] - indices[0] + 1 == len(indices) and np.all(np.diff(indices) == 1):
        return array[indices[0] : indices[-1] + 1]
    return array[indices]


def build_splits(spec: TfdsSpec, folder: pathlib.Path, image_size: int, framed: bool = False) -> dict:
    """Read the TFDS splits ``spec`` needs and assemble train, dev, dev_test and test (with full frames and
    aspect ratios when ``framed``)."""
    tfds = _import_tfds()

    data: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, dict]] = {}
    for builder_name in spec.builder_names:
        builder = tfds.builder(f"{builder_name}:{spec.version}", data_dir=str(folder))
        for split in _READS[spec.rule]:
            try:
                data[(builder_name, split)] = _read_split(
                    builder, split, spec, image_size, _AUX.get(spec.rule, {}).get(split, ()), framed
                )
            except AssertionError as error:  # TFDS: "Dataset ... not found" (never downloads here)
                raise DataMissingError(f"tfds:{spec.name}: {error}. {how_to_get(spec, folder)}") from error
    counts = {key: len(value[1]) for key, value in data.items()}
    aux = {key: value[2] for key, value in data.items()}
    out = {}
    for split, parts in plan_splits(spec, counts, aux).items():
        images = [_take(data[(b, s)][0], idx) for b, s, idx in parts]
        labels = [_take(data[(b, s)][1], idx) for b, s, idx in parts]
        ids = [np.asarray([f"{b}:{s}:{i}" for i in idx], dtype=str) for b, s, idx in parts]
        arrays = [images, labels, ids]
        if framed:
            arrays += [[_take(aux[(b, s)][FRAMES], idx) for b, s, idx in parts],
                       [_take(aux[(b, s)][ASPECTS], idx) for b, s, idx in parts]]
        out[split] = tuple(parts_of[0] if len(parts) == 1 else np.concatenate(parts_of) for parts_of in arrays)
    return out


if __name__ == "__main__":
    sys.exit(_child_main())
