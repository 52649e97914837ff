"""The real-data NEVIS streams: golden event orders, variant counts, ablations, shuffles, availability.

The expected orders are typed in from the reference task lists (dm_nevis/streams/nevis_stream.py
and its variants), independently of nevis_bench/data/catalog.py. No TensorFlow here.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from nevis_bench.data import catalog
from nevis_bench.data.prepared import PreparedSource
from nevis_bench.data.sources import DataMissingError
from nevis_bench.data.tfds_source import TFDS_SPECS, TfdsSource
from nevis_bench.protocol import MULTI_LABEL, PredictEvent, TrainEvent
from nevis_bench.registry import STREAMS
from nevis_bench.stream import StreamData

FULL_BY_YEAR = {
    1992: ["Magellan Venus Volcanoes", "Aberdeen face database."],
    1998: ["LandSat UCI repo", "Brodatz", "Olivetti Face Dataset"],
    2000: ["COIL 20"],
    2001: ["COIL 100", "MPEG-7"],
    2004: ["Butterfly dataset", "MNIST"],
    2005: ["Caltech 101", "UMIST", "CMU AMP expression"],
    2006: ["Pascal 2005", "Caltech cars, motorbikes", "UIUC cars", "ALOI"],
    2007: ["8 Scene Dataset"],
    2008: ["15 Scenes"],
    2009: ["Pascal 2006", "Extended YaleB"],
    2010: ["Pascal 2007", "Graz-02", "Olivetti Face Dataset", "PPMI"],
    2011: ["Caltech 256", "ImageNet", "LFW", "Oxford Flowers", "Flicker Material Dataset", "Oxford Flowers 102",
           "Belgium Traffic Sign Dataset", "German Traffic Sign Recognition Benchmark", "Brodatz", "VisTex"],
    2012: ["UMD", "KTH-TIPS", "UIUC texture", "KTH-TIPS2-b", "CVC-MUSCIMA"],
    2013: ["IAPRTC-12", "sketch dataset", "KTH-TIPS2-a", "Pascal 2012", "NORB"],
    2014: ["Wikipaintings"],
    2015: ["MNIST", "MIT Scenes", "SUN 397", "CIFAR 10"],
    2016: ["CUB 200", "Stanford Cars", "FGVC Aircraft", "DTD", "MS COCO", "Caltech 101", "Oxford IIIT Pets",
           "Stanford Dogs", "ANIMAL", "Caltech 101 Silhouettes", "Interact", "VOC Actions", "SVHN", "Chars74K"],
    2017: ["CelebA", "LFWA", "SUN Attribute", "CIFAR 100"],
    2018: ["TID2008", "TID2013", "USPS", "Semeion", "MNIST-m", "Office Caltech", "PACS", "Caltech Camera Traps",
           "EMNIST Balanced", "CASIA-HWDB1.1", "ISBI-ISIC 2017 melanoma classification challenge"],
    2019: ["Trancos", "Mall dataset", "Fashion MNIST", "NotMNIST", "Tiny Imagenet", "STL10", "Food 101", "MNIST-rot",
           "AWA2", "15 Scenes", "Food 101 N", "COIL 20", "COIL 100"],
    2020: ["ShanghaiTech", "AnimalWeb", "BIWI"],
    2021: ["ImageNet", "Oxford Flowers 102", "DomainNet-Real", "Pneumonia Chest X-ray", "Path MNIST", "NIH Chest X-ray",
           "Tubercolosis", "covid-19 x-ray", "PatchCamelyon", "DDSM", "Synthetic COVID-19 Chest X-ray Dataset"],
}
SHORT_BY_YEAR = {
    2004: ["COIL 100", "MNIST"],
    2006: ["Pascal 2005", "Caltech cars, motorbikes", "UIUC cars"],
    2009: ["Pascal 2006"],
    2010: ["Caltech 101"],
    2011: ["Graz-02", "15 Scenes", "Pascal 2007", "LFW"],
    2013: ["sketch dataset", "Brodatz"],
    2014: ["ImageNet", "Pascal 2012", "Caltech 256"],
    2018: ["CIFAR 100", "CIFAR 10", "USPS", "MNIST", "MNIST-m", "Office Caltech", "PACS",
           "ISBI-ISIC 2017 melanoma classification challenge"],
    2019: ["Fashion MNIST"],
    2020: ["Stanford Dogs", "CUB 200", "Stanford Cars", "FGVC Aircraft"],
}
TINY_BY_YEAR = {
    2004: ["MNIST"], 2010: ["Caltech 101"], 2014: ["Pascal 2012"],
    2018: ["CIFAR 100", "MNIST", "ISBI-ISIC 2017 melanoma classification challenge"], 2020: ["CUB 200"],
}
# Multi-label entries of FULL (1-based positions in the reference table).
FULL_MULTI_LABEL_POSITIONS = [22, 41, 44, 62, 65, 67, 88, 95, 101]
# The handlers nevis-short needs before 2020 (its non-TFDS datasets of the development years).
SHORT_HANDLERS = {
    "pascal_voc2005", "caltech_categories", "uiuc_cars", "pascal_voc2006", "ig02", "scenes15", "lfw", "sketch",
    "brodatz", "caltech256", "usps", "mnist_m", "office_caltech_10", "pacs", "melanoma",
}


def flatten(by_year):
    return [(year, name) for year in sorted(by_year) for name in by_year[year]]


def order(stream):
    return [(e.year, e.task.name) for e in stream.entries]


def make(name, **options):
    return STREAMS.get(name).factory(**options)


@pytest.mark.parametrize("name, by_year", [("nevis-full", FULL_BY_YEAR), ("nevis-short", SHORT_BY_YEAR), ("nevis-tiny", TINY_BY_YEAR)])
def test_golden_order(name, by_year):
    stream = make(name)
    assert order(stream) == flatten(by_year)
    events = stream.events(2020)
    expected = [n for y, n in flatten(by_year) if y < 2020]
    assert [e.task.name for e in events if isinstance(e, TrainEvent)] == expected
    assert all(isinstance(e, PredictEvent) and e.split == "dev_test" for e in events[1::2])
    assert [e.task.key for e in events[0::2]] == [e.task.key for e in events[1::2]]
    final = stream.events(2022, predict_split="test")
    assert len(final) == 2 * len(stream.entries) and all(e.split == "test" for e in final[1::2])


@pytest.mark.parametrize(
    "name, total, before_2020",
    [("nevis-full", 106, 92), ("nevis-short", 29, 25), ("nevis-tiny", 7, 6), ("nevis-major-domain-only", 70, 56),
     ("nevis-large-dataset-only", 67, 53), ("nevis-debug", 2, 2), ("nevis-imagenet-only", 1, 1)],
)
def test_variant_counts(name, total, before_2020):
    stream = make(name)
    assert len(stream.entries) == total
    assert len(stream.entries_before(2020)) == before_2020
    assert stream.default_stop_year is None


def test_full_facts():
    stream = make("nevis-full")
    keys = [e.task.key for e in stream.entries]
    assert len(set(keys)) == 97
    tfds = {e.source.name for e in stream.entries if isinstance(e.source, TfdsSource)}
    prepared = {e.source.name for e in stream.entries if isinstance(e.source, PreparedSource)}
    assert len(tfds) == 22 and len(prepared) == 75
    assert tfds == set(TFDS_SPECS)
    multi = [i + 1 for i, e in enumerate(stream.entries) if e.task.kind == MULTI_LABEL]
    assert multi == FULL_MULTI_LABEL_POSITIONS
    # repeats keep the task key and share the source object (same data)
    first = {}
    for e in stream.entries:
        if e.task.key in first:
            assert e.source is first[e.task.key].source and e.task.name == first[e.task.key].task.name
        else:
            first[e.task.key] = e
    assert len(stream.entries) - len(first) == 9
    # every task carries year, source, domain, kind and class count from the catalog
    for e in stream.entries:
        facts = catalog.DATASETS[e.task.key]
        assert (e.task.num_classes, e.task.domain, e.task.kind, e.task.channels) == (
            facts.num_classes, facts.domain, facts.kind, facts.channels)
        assert e.source.describe().split(":", 1)[1] == facts.source.split(":", 1)[1]


def test_debug_and_imagenet_only():
    assert order(make("nevis-debug")) == [(1999, "Pascal 2007"), (2000, "COIL 20")]
    assert order(make("nevis-imagenet-only")) == [(2014, "ImageNet")]


def is_subsequence(small, big):
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


@pytest.mark.parametrize("name", ["nevis-major-domain-only", "nevis-large-dataset-only"])
def test_reduced_variants_keep_2019_on(name):
    full = order(make("nevis-full"))
    reduced = order(make(name))
    assert is_subsequence(reduced, full)
    assert [x for x in reduced if x[0] >= 2019] == [x for x in full if x[0] >= 2019]


def test_major_domain_only_drops_minor_domains():
    kept = {e.task.key for e in make("nevis-major-domain-only").entries if e.year < 2019}
    for key in ("magellan_venus_volcanoes", "aberdeen", "landsat", "brodatz", "olivetti_face", "mpeg7", "mnist",
                "umd", "cvc_muscima", "celeba", "tid2008", "usps", "isbi_isic_2017_melanoma_classification_challenge"):
        assert key not in kept, key
    assert {"imagenet", "caltech256", "pascal_2012", "cifar_100", "pacs"} <= kept


def test_large_dataset_only_drops_small_datasets():
    kept = {e.task.key for e in make("nevis-large-dataset-only").entries if e.year < 2019}
    for key in ("aberdeen", "brodatz", "coil20", "uiuc_cars", "pascal_voc2005", "tid2008", "semeion", "office_caltech"):
        assert key not in kept, key
    assert {"imagenet", "mnist", "celeba", "emnist_balanced", "casia_hwdb1_1"} <= kept


def test_catalog_agrees_with_tfds_specs():
    for facts in catalog.DATASETS.values():
        kind, _, name = facts.source.partition(":")
        if kind == "tfds":
            spec = TFDS_SPECS[name]
            assert (spec.num_classes, spec.channels) == (facts.num_classes, facts.channels), facts.key
            assert (spec.multi_label is not None) == (facts.kind == MULTI_LABEL), facts.key


def test_short_has_a_handler_for_every_prepared_dataset():
    from nevis_bench.data.handlers import HANDLERS

    names = {e.source.name for e in make("nevis-short").entries_before(2020) if isinstance(e.source, PreparedSource)}
    assert names == SHORT_HANDLERS
    held_out = {e.source.name for e in make("nevis-short").entries if isinstance(e.source, PreparedSource)} - names
    assert held_out == {"stanford_cars", "fgvc_aircraft_family"}
    assert set(HANDLERS) >= SHORT_HANDLERS | held_out
    for handler in HANDLERS.values():
        assert catalog.DATASETS[handler.dataset_key].source == f"nevis:{handler.name}"


# ------------------------------------------------------------------------------------------ ablations


def full_order():
    return list(catalog.FULL)


def test_ablations_run_to_2022():
    for name in ("remove-first-30", "remove-last-30", "no-imagenet", "random-datasets"):
        assert make(name).default_stop_year == 2022


def test_remove_first_30():
    stream = make("remove-first-30")
    assert [(e.year, e.task.key) for e in stream.entries] == full_order()[30:]
    assert len(stream.entries_before(2020)) == 62


def test_remove_last_30_matches_the_published_ablation_by_default():
    full = full_order()
    early = [x for x in full if x[0] < 2020]
    in_order = make("remove-last-30", match_reference=False)  # the other order stays an option
    assert [(e.year, e.task.key) for e in in_order.entries] == early[:62] + full[92:]
    ref = [(e.year, e.task.key) for e in make("remove-last-30").entries]
    assert ref == [(e.year, e.task.key) for e in make("remove-last-30", match_reference=True).entries]
    assert len(ref) == 76
    # the reference drops all of 2017-2019 and the first two of 2016 (CUB 200, Stanford Cars)
    assert (2016, "cub_200") not in ref and (2016, "stanford_cars") not in ref
    assert (2016, "svhn") in ref and (2016, "chars74k") in ref
    assert not [x for x in ref if 2017 <= x[0] <= 2019]


def test_no_imagenet():
    stream = make("no-imagenet")
    assert len(stream.entries) == 105
    assert [(e.year, e.task.key) for e in stream.entries if e.task.key == "imagenet"] == [(2021, "imagenet")]


def reference_random(count, seed):
    """The reference's RANDOM_DATASET, written from its description: shuffle (year, name) tuples."""
    early = [x for x in catalog.FULL if x[0] < 2020]
    late = [x for x in catalog.FULL if x[0] >= 2020]
    rng = np.random.default_rng(seed)
    shuffled = list(early)
    rng.shuffle(shuffled)
    chosen = set((late + shuffled)[:count])
    return [x for x in catalog.FULL if x in chosen]


@pytest.mark.parametrize("count, seed", [(60, 0), (30, 0), (40, 7)])
def test_random_datasets(count, seed):
    stream = make("random-datasets", count=count, seed=seed)
    got = [(e.year, e.task.key) for e in stream.entries]
    assert got == reference_random(count, seed)
    assert len(got) == count and is_subsequence(got, list(catalog.FULL))
    assert [x for x in got if x[0] >= 2020] == [x for x in catalog.FULL if x[0] >= 2020]
    assert got == [(e.year, e.task.key) for e in make("random-datasets", count=str(count), seed=str(seed)).entries]


def test_random_datasets_options_are_checked():
    with pytest.raises(TypeError, match="count"):
        make("random-datasets", count=10)
    with pytest.raises(TypeError, match="count"):
        make("random-datasets", count="many")
    assert "count" in inspect.getdoc(STREAMS.get("random-datasets").factory)


# ------------------------------------------------------------------------------------------ shuffles


def test_shuffle_within_year_matches_reference_draws():
    stream = make("nevis-full", shuffle="within-year")
    got = [(e.year, e.task.key) for e in stream.entries]
    rng = np.random.default_rng(1)
    expected = []
    for year in sorted({y for y, _ in catalog.FULL}):
        block = [x for x in catalog.FULL if x[0] == year]
        rng.shuffle(block)
        expected += block
    assert got == expected and got != list(catalog.FULL)
    assert [y for y, _ in got] == sorted(y for y, _ in got)


@pytest.mark.parametrize("stop_year", [2020, 2022])
def test_shuffle_across_years_keeps_every_task(stop_year):
    stream = make("nevis-full", shuffle="across-years", shuffle_seed=3)
    got = [(e.year, e.task.key) for e in stream.entries]
    assert sorted(got) == sorted(catalog.FULL) and got != list(catalog.FULL)
    assert len(stream.entries_before(stop_year)) == sum(1 for y, _ in catalog.FULL if y < stop_year)
    boundary = sum(1 for y, _ in catalog.FULL if y < 2020)
    assert all(y < 2020 for y, _ in got[:boundary]) and all(y >= 2020 for y, _ in got[boundary:])
    again = [(e.year, e.task.key) for e in make("nevis-full", shuffle="across-years", shuffle_seed=3).entries]
    assert got == again
    assert got != [(e.year, e.task.key) for e in make("nevis-full", shuffle="across-years").entries]


def test_bad_options():
    with pytest.raises(TypeError, match="shuffle"):
        make("nevis-tiny", shuffle="sideways")
    with pytest.raises(TypeError):
        make("nevis-tiny", colour="blue")
    with pytest.raises(TypeError, match="download"):
        make("nevis-tiny", download="perhaps")
    assert all(isinstance(e.source, (TfdsSource, PreparedSource)) for e in make("nevis-tiny", download="true").entries)


# ------------------------------------------------------------------------------------------ availability


def test_missing_data_is_one_error_with_commands(tmp_path, monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    stream = make("nevis-tiny", data_dir=str(tmp_path))
    data = StreamData(stream, 2020, tmp_path, 32)
    with pytest.raises(DataMissingError) as info:
        data.check_available()
    message = str(info.value)
    assert "5 dataset(s)" in message
    assert "nevis-bench data prepare mnist --download" in message
    assert "nevis-bench data prepare voc/2012 --download" in message
    assert "nevis-bench data prepare melanoma --from DIR" in message
    assert "ISIC-2017_Training_Data.zip" in message
    assert "caltech_birds2011" not in message  # CUB 200 is in 2020: held out, not needed


def test_imagenet_needs_a_manual_step(tmp_path):
    stream = make("nevis-imagenet-only", data_dir=str(tmp_path), download=True)
    availability = stream.entries[0].source.availability()
    assert not availability.available
    assert "ILSVRC2012_img_train.tar" in availability.how_to_get
    assert "nevis-bench data prepare imagenet2012 --from DIR" in availability.how_to_get


def test_tfds_availability_reads_the_disk_only(tmp_path, monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    source = TfdsSource("voc/2007", data_dir=str(tmp_path))
    assert not source.availability().available
    other = tmp_path / "tensorflow_datasets" / "voc" / "2007" / "4.0.0"
    other.mkdir(parents=True)
    (other / "dataset_info.json").write_text("{}")
    assert "found other version(s): voc/2007 4.0.0" in source.availability().how_to_get
    pinned = tmp_path / "tensorflow_datasets" / "voc" / "2007" / "5.0.0"
    pinned.mkdir(parents=True)
    (pinned / "dataset_info.json").write_text("{}")
    assert source.availability().available
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "elsewhere"))
    assert not source.availability().available
    assert TfdsSource("voc/2007", data_dir=str(tmp_path), tfds_dir=str(tmp_path / "tensorflow_datasets")).availability().available
    assert TfdsSource("mnist", data_dir=str(tmp_path), download=True).availability().available


def test_prepared_availability(tmp_path):
    source = PreparedSource("coil20", "coil20", data_dir=str(tmp_path))
    availability = source.availability()
    assert not availability.available and "nevis-bench data prepare coil20 --from DIR" in availability.how_to_get
    unknown = PreparedSource("no_such_handler", "coil20", data_dir=str(tmp_path)).availability()
    assert not unknown.available and "no converter for 'no_such_handler'" in unknown.how_to_get
    assert source.fingerprint(32) != PreparedSource("coil20", "coil20", data_dir=str(tmp_path)).fingerprint(64)


def test_stream_options_are_listed_and_a_bad_one_is_an_input_error_not_a_type_error(capsys):
    from nevis_bench.cli import main
    from nevis_bench.errors import InputError
    from nevis_bench.stream_options import StreamOptionError, open_stream

    with pytest.raises(StreamOptionError, match="valid options: data_dir, download, shuffle, shuffle_seed, skip_missing"):
        open_stream("nevis-full", {"shufle": "within-year"})
    with pytest.raises(InputError, match="must be true or false"):
        open_stream("nevis-full", {"download": "maybe"})
    with pytest.raises(InputError, match="did you mean mnist"):
        open_stream("synthetic-dataset", {"dataset": "mnst"})
    assert main(["streams", "describe", "remove-last-30"]) == 0
    out = capsys.readouterr().out
    for option in ("match_reference", "data_dir", "tfds_data_dir", "download", "shuffle", "shuffle_seed", "skip_missing"):
        assert f"  {option:<18} default" in out, option
    assert main(["run", "--stream", "nevis-tiny", "-o", "stream.shufle=none"]) == 2
    assert "unknown option(s) shufle" in capsys.readouterr().err


def test_single_dataset_streams_give_one_dataset_or_a_source_then_a_target():
    pair = make("nevis-dataset", dataset="mnist", then="coil100")
    assert [(e.year, e.task.key, e.source.describe()) for e in pair.entries] == [
        (2018, "mnist", "tfds:mnist"), (2019, "coil100", "tfds:coil100")]
    from nevis_bench.registry import STREAMS

    alone = STREAMS.get("synthetic-dataset").factory(dataset="caltech101")
    assert [e.task.key for e in alone.entries] == ["caltech101"]
    assert alone.entries[0].source.describe().startswith("synthetic:")


def test_readme_names_every_synthetic_stand_in_with_fewer_classes_than_its_task():
    import re

    from nevis_bench.data import catalog
    from nevis_bench.streams.synthetic.streams import capped_classes
    from tests.helpers import REPO

    text = (REPO / "README.md").read_text()
    listed = re.search(r"<!-- capped-classes -->\n(.*?)<!-- /capped-classes -->", text, re.S).group(1)
    listed = " ".join(listed.split())
    for key, (synthetic, real) in capped_classes().items():
        assert f"{catalog.DATASETS[key].name} ({real})" in listed, key
        task = STREAMS.get("synthetic-dataset").factory(dataset=key).entries[0].task
        assert task.num_classes == synthetic < real
