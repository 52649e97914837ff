"""The NEVIS'22 datasets and stream orders, as facts about the reference.

Orders and years follow ``NEVIS_STREAM_PER_YEAR`` of the reference (``dm_nevis/streams/nevis_stream.py``).
Per dataset we record the source, the task kind,
the class count (the reference's where it states one), whether images are grey or colour, the image
type (the reference's ``image_type`` metadata; we add ``satellite`` and ``shape``), and an approximate
total number of examples. Sizes are approximate published figures; they set the relative sizes of the
synthetic tasks, never a split. The MAJOR_DOMAIN_ONLY and LARGE_DATASET_ONLY variants are explicit
membership lists copied from the reference's per-year tables (its hand-made lists do not follow from
the domain and size facts alone: e.g. it keeps the sketch dataset and the traffic-sign datasets as
"major domain", and Caltech 101 as "large").

``family`` and ``style`` choose the generator of the synthetic stand-in (``streams/synthetic``): tasks
of one family share structure (glyph prototypes, texture parameters, object shapes, identities), so
transfer between them is real.
"""

from __future__ import annotations

from dataclasses import dataclass

from nevis_bench.protocol import MULTI_LABEL, SINGLE_LABEL


@dataclass(frozen=True)
class DatasetFacts:
    key: str  # canonical task key (the reference's name with ' -/~' -> '_')
    name: str  # display name in the reference stream
    source: str  # "tfds:<name>" or "nevis:<handler>"
    num_classes: int
    channels: int  # 1 grey, 3 colour
    domain: str  # image type
    size: int  # approximate number of examples, all splits
    kind: str = SINGLE_LABEL
    family: str = "object"  # synthetic generator family
    style: str = ""  # generator variant within the family


def _d(key, name, source, classes, channels, domain, size, kind=SINGLE_LABEL, family=None, style=""):
    return DatasetFacts(key, name, source, classes, channels, domain, size, kind, family or domain, style)


_ML = MULTI_LABEL

DATASETS: dict[str, DatasetFacts] = {
    d.key: d
    for d in [
        _d("magellan_venus_volcanoes", "Magellan Venus Volcanoes", "nevis:magellan_venus_volcanoes", 2, 1, "satellite", 9000, family="xray", style="volcano"),
        _d("aberdeen", "Aberdeen face database.", "nevis:aberdeen", 92, 3, "face", 687),
        _d("landsat", "LandSat UCI repo", "nevis:landsat", 7, 3, "satellite", 6435, family="texture", style="landcover"),
        _d("brodatz", "Brodatz", "nevis:brodatz", 111, 1, "texture", 999),  # 111 plates (D14 absent), 9 crops each
        _d("olivetti_face", "Olivetti Face Dataset", "nevis:olivetti_face", 40, 1, "face", 400),
        _d("coil20", "COIL 20", "nevis:coil20", 20, 1, "object", 1440, family="viewpoint"),
        _d("coil100", "COIL 100", "tfds:coil100", 100, 3, "object", 7200, family="viewpoint"),
        _d("mpeg7", "MPEG-7", "nevis:mpeg7", 70, 1, "shape", 1400, family="shape"),
        _d("butterflies", "Butterfly dataset", "nevis:butterflies", 10, 3, "object", 832),
        _d("mnist", "MNIST", "tfds:mnist", 10, 1, "ocr", 70000, style="digits"),
        _d("caltech101", "Caltech 101", "tfds:caltech101", 102, 3, "object", 9144),
        _d("umist", "UMIST", "nevis:umist", 20, 1, "face", 1012),
        _d("cmu_amp_expression", "CMU AMP expression", "nevis:cmu_amp_expression", 13, 1, "face", 975),
        _d("pascal_voc2005", "Pascal 2005", "nevis:pascal_voc2005", 4, 3, "object", 1578),
        _d("caltech_categories", "Caltech cars, motorbikes", "nevis:caltech_categories", 2, 3, "object", 3500),  # car, motorcycle
        _d("uiuc_cars", "UIUC cars", "nevis:uiuc_cars", 2, 1, "object", 1328),
        _d("aloi", "ALOI", "nevis:aloi", 1000, 3, "object", 110250, family="viewpoint"),
        _d("scenes8", "8 Scene Dataset", "nevis:scenes8", 8, 3, "scene", 2688),
        _d("scenes15", "15 Scenes", "nevis:scenes15", 15, 1, "scene", 4485),
        _d("pascal_voc2006", "Pascal 2006", "nevis:pascal_voc2006", 10, 3, "object", 5304),
        _d("extended_yaleb", "Extended YaleB", "nevis:extended_yaleb", 28, 1, "face", 16128),
        _d("pascal_2007", "Pascal 2007", "tfds:voc/2007", 20, 3, "object", 9963, _ML, family="multi_label"),
        _d("ig02", "Graz-02", "nevis:ig02", 3, 3, "object", 1476),
        _d("ppmi", "PPMI", "nevis:ppmi", 24, 3, "object", 4800),
        _d("caltech256", "Caltech 256", "nevis:caltech256", 257, 3, "object", 30607),
        _d("imagenet", "ImageNet", "tfds:imagenet2012", 1000, 3, "object", 1331167),
        _d("lfw", "LFW", "nevis:lfw", 423, 3, "face", 5985),
        _d("oxford_flowers", "Oxford Flowers", "nevis:oxford_flowers_17", 17, 3, "object", 1360),
        _d("flicker_material_dataset", "Flicker Material Dataset", "nevis:flickr_material_database", 10, 3, "texture", 1000),
        _d("oxford_flowers_102", "Oxford Flowers 102", "tfds:oxford_flowers102", 102, 3, "object", 8189),
        _d("belgium_traffic_sign_dataset", "Belgium Traffic Sign Dataset", "nevis:belgium_tsc", 62, 3, "object", 7095, family="shape", style="signs"),
        _d("german_traffic_sign_recognition_benchmark", "German Traffic Sign Recognition Benchmark", "nevis:german_tsr", 43, 3, "object", 51839, family="shape", style="signs"),
        _d("vistex", "VisTex", "nevis:vistex", 54, 3, "texture", 864),
        _d("umd", "UMD", "nevis:umd", 25, 1, "texture", 1000),
        _d("kth_tips", "KTH-TIPS", "nevis:kth_tips", 10, 3, "texture", 810),
        _d("uiuc_texture", "UIUC texture", "nevis:uiuc_texture", 25, 1, "texture", 1000),
        _d("kth_tips2_b", "KTH-TIPS2-b", "nevis:kth_tips_2b", 11, 3, "texture", 4752),
        _d("cvc_muscima", "CVC-MUSCIMA", "nevis:cvc_muscima", 50, 1, "ocr", 1000, style="symbols"),
        _d("iaprtc_12", "IAPRTC-12", "nevis:iaprtc12", 276, 3, "scene", 20000, _ML, family="multi_label"),
        _d("sketch_dataset", "sketch dataset", "nevis:sketch", 250, 1, "shape", 20000, family="shape", style="sketch"),
        _d("kth_tips2_a", "KTH-TIPS2-a", "nevis:kth_tips_2a", 11, 3, "texture", 4608),
        _d("pascal_2012", "Pascal 2012", "tfds:voc/2012", 20, 3, "object", 11540, _ML, family="multi_label"),
        _d("norb", "NORB", "tfds:smallnorb", 5, 1, "object", 48600, family="viewpoint"),
        _d("wikipaintings", "Wikipaintings", "nevis:wiki_paintings_style", 27, 3, "scene", 81444),
        _d("mit_scenes", "MIT Scenes", "nevis:mit_scenes", 67, 3, "scene", 15620),
        _d("sun_397", "SUN 397", "tfds:sun397", 397, 3, "scene", 108754),
        _d("cifar_10", "CIFAR 10", "tfds:cifar10", 10, 3, "object", 60000),
        _d("cub_200", "CUB 200", "tfds:caltech_birds2011", 200, 3, "object", 11788),
        _d("stanford_cars", "Stanford Cars", "nevis:stanford_cars", 196, 3, "object", 16185),
        _d("fgvc_aircraft", "FGVC Aircraft", "nevis:fgvc_aircraft_family", 70, 3, "object", 10000),
        _d("dtd", "DTD", "tfds:dtd", 47, 3, "texture", 5640),
        _d("ms_coco", "MS COCO", "nevis:coco_single_label", 90, 3, "object", 120000),
        _d("oxford_iiit_pets", "Oxford IIIT Pets", "tfds:oxford_iiit_pet", 37, 3, "object", 7349),
        _d("stanford_dogs", "Stanford Dogs", "tfds:stanford_dogs", 120, 3, "object", 20580),
        _d("animal", "ANIMAL", "nevis:animal", 10, 3, "object", 5000),
        _d("caltech_101_silhouettes", "Caltech 101 Silhouettes", "nevis:silhouettes_28", 101, 1, "shape", 8671, family="shape"),
        _d("interact", "Interact", "nevis:interact", 60, 3, "object", 2000),
        _d("voc_actions", "VOC Actions", "nevis:voc_actions", 11, 3, "object", 4588, _ML, family="multi_label"),
        _d("svhn", "SVHN", "tfds:svhn_cropped", 10, 3, "ocr", 99289, style="digits"),
        _d("chars74k", "Chars74K", "nevis:chars74k", 62, 3, "ocr", 7705, style="alphanumeric"),
        _d("celeba", "CelebA", "tfds:celeb_a", 40, 3, "face", 202599, _ML, family="multi_label", style="faces"),
        _d("lfwa", "LFWA", "nevis:lfwa", 423, 1, "face", 5985),
        _d("sun_attribute", "SUN Attribute", "nevis:sun_attributes", 102, 3, "scene", 14340, _ML, family="multi_label"),
        _d("cifar_100", "CIFAR 100", "tfds:cifar100", 100, 3, "object", 60000),
        _d("tid2008", "TID2008", "nevis:tid2008", 5, 3, "quality", 1700, family="quality"),
        _d("tid2013", "TID2013", "nevis:tid2013", 5, 3, "quality", 3000, family="quality"),
        _d("usps", "USPS", "nevis:usps", 10, 1, "ocr", 9298, style="digits"),
        _d("semeion", "Semeion", "nevis:semeion", 10, 1, "ocr", 1593, style="digits"),
        _d("mnist_m", "MNIST-m", "nevis:mnist_m", 10, 3, "ocr", 68002, style="digits"),
        _d("office_caltech", "Office Caltech", "nevis:office_caltech_10", 10, 3, "object", 2533),
        _d("pacs", "PACS", "nevis:pacs", 7, 3, "object", 9991),
        _d("caltech_camera_traps", "Caltech Camera Traps", "nevis:caltech_camera_traps", 16, 3, "object", 57000),
        _d("emnist_balanced", "EMNIST Balanced", "tfds:emnist/balanced", 47, 1, "ocr", 131600, style="alphanumeric"),
        _d("casia_hwdb1_1", "CASIA-HWDB1.1", "nevis:casia_hwdb", 3926, 1, "ocr", 1121749, style="strokes"),
        _d("isbi_isic_2017_melanoma_classification_challenge", "ISBI-ISIC 2017 melanoma classification challenge", "nevis:melanoma", 3, 3, "medical", 2750, family="medical", style="skin"),
        _d("trancos", "Trancos", "nevis:trancos", 10, 3, "counting", 1244, family="counting"),
        _d("mall_dataset", "Mall dataset", "nevis:mall", 10, 3, "counting", 2000, family="counting"),
        _d("fashion_mnist", "Fashion MNIST", "tfds:fashion_mnist", 10, 1, "object", 70000, family="shape", style="garments"),
        _d("notmnist", "NotMNIST", "nevis:not_mnist", 10, 1, "ocr", 18724, style="letters"),
        _d("tiny_imagenet", "Tiny Imagenet", "nevis:tiny_imagenet", 200, 3, "object", 110000),
        _d("stl10", "STL10", "tfds:stl10", 10, 3, "object", 13000),
        _d("food_101", "Food 101", "nevis:food101", 101, 3, "object", 101000),
        _d("mnist_rot", "MNIST-rot", "nevis:mnist_rotation", 10, 1, "ocr", 62000, style="digits_rotated"),
        _d("awa2", "AWA2", "nevis:awa2", 85, 3, "object", 37322, _ML, family="multi_label"),
        _d("food_101_n", "Food 101 N", "nevis:food101n", 101, 3, "object", 310000),
        _d("shanghaitech", "ShanghaiTech", "nevis:shanghai_tech", 10, 3, "counting", 1198, family="counting"),
        _d("animalweb", "AnimalWeb", "nevis:animal_web", 352, 3, "face", 21921),
        _d("biwi", "BIWI", "nevis:biwi", 15, 3, "face", 15678, _ML, family="multi_label", style="faces"),
        _d("domainnet_real", "DomainNet-Real", "tfds:domainnet", 345, 3, "object", 586575),
        _d("pneumonia_chest_x_ray", "Pneumonia Chest X-ray", "nevis:pneumonia_chest_xray", 2, 1, "xray", 5856, family="xray"),
        _d("path_mnist", "Path MNIST", "nevis:path_mnist", 8, 3, "medical", 107180, family="medical", style="tissue"),
        _d("nih_chest_x_ray", "NIH Chest X-ray", "nevis:nih_chest_xray", 15, 1, "xray", 112120, _ML, family="multi_label", style="xray"),
        _d("tubercolosis", "Tubercolosis", "nevis:tubercolosis", 2, 1, "xray", 4200, family="xray"),
        _d("covid_19_x_ray", "covid-19 x-ray", "nevis:covid_19_xray", 4, 1, "xray", 905, family="xray"),
        _d("patchcamelyon", "PatchCamelyon", "tfds:patch_camelyon", 2, 3, "medical", 327680, family="medical", style="tissue"),
        _d("ddsm", "DDSM", "nevis:ddsm", 3, 1, "xray", 55890, family="xray"),
        _d("synthetic_covid_19_chest_x_ray_dataset", "Synthetic COVID-19 Chest X-ray Dataset", "nevis:synthetic_covid19_xray", 2, 1, "xray", 21295, family="xray"),
    ]
}

# The FULL stream: (year, dataset key) in reference order; repeats keep their key.
FULL: tuple[tuple[int, str], ...] = (
    (1992, "magellan_venus_volcanoes"), (1992, "aberdeen"),
    (1998, "landsat"), (1998, "brodatz"), (1998, "olivetti_face"),
    (2000, "coil20"),
    (2001, "coil100"), (2001, "mpeg7"),
    (2004, "butterflies"), (2004, "mnist"),
    (2005, "caltech101"), (2005, "umist"), (2005, "cmu_amp_expression"),
    (2006, "pascal_voc2005"), (2006, "caltech_categories"), (2006, "uiuc_cars"), (2006, "aloi"),
    (2007, "scenes8"),
    (2008, "scenes15"),
    (2009, "pascal_voc2006"), (2009, "extended_yaleb"),
    (2010, "pascal_2007"), (2010, "ig02"), (2010, "olivetti_face"), (2010, "ppmi"),
    (2011, "caltech256"), (2011, "imagenet"), (2011, "lfw"), (2011, "oxford_flowers"),
    (2011, "flicker_material_dataset"), (2011, "oxford_flowers_102"), (2011, "belgium_traffic_sign_dataset"),
    (2011, "german_traffic_sign_recognition_benchmark"), (2011, "brodatz"), (2011, "vistex"),
    (2012, "umd"), (2012, "kth_tips"), (2012, "uiuc_texture"), (2012, "kth_tips2_b"), (2012, "cvc_muscima"),
    (2013, "iaprtc_12"), (2013, "sketch_dataset"), (2013, "kth_tips2_a"), (2013, "pascal_2012"), (2013, "norb"),
    (2014, "wikipaintings"),
    (2015, "mnist"), (2015, "mit_scenes"), (2015, "sun_397"), (2015, "cifar_10"),
    (2016, "cub_200"), (2016, "stanford_cars"), (2016, "fgvc_aircraft"), (2016, "dtd"), (2016, "ms_coco"),
    (2016, "caltech101"), (2016, "oxford_iiit_pets"), (2016, "stanford_dogs"), (2016, "animal"),
    (2016, "caltech_101_silhouettes"), (2016, "interact"), (2016, "voc_actions"), (2016, "svhn"),
    (2016, "chars74k"),
    (2017, "celeba"), (2017, "lfwa"), (2017, "sun_attribute"), (2017, "cifar_100"),
    (2018, "tid2008"), (2018, "tid2013"), (2018, "usps"), (2018, "semeion"), (2018, "mnist_m"),
    (2018, "office_caltech"), (2018, "pacs"), (2018, "caltech_camera_traps"), (2018, "emnist_balanced"),
    (2018, "casia_hwdb1_1"), (2018, "isbi_isic_2017_melanoma_classification_challenge"),
    (2019, "trancos"), (2019, "mall_dataset"), (2019, "fashion_mnist"), (2019, "notmnist"),
    (2019, "tiny_imagenet"), (2019, "stl10"), (2019, "food_101"), (2019, "mnist_rot"), (2019, "awa2"),
    (2019, "scenes15"), (2019, "food_101_n"), (2019, "coil20"), (2019, "coil100"),
    (2020, "shanghaitech"), (2020, "animalweb"), (2020, "biwi"),
    (2021, "imagenet"), (2021, "oxford_flowers_102"), (2021, "domainnet_real"), (2021, "pneumonia_chest_x_ray"),
    (2021, "path_mnist"), (2021, "nih_chest_x_ray"), (2021, "tubercolosis"), (2021, "covid_19_x_ray"),
    (2021, "patchcamelyon"), (2021, "ddsm"), (2021, "synthetic_covid_19_chest_x_ray_dataset"),
)

SHORT: tuple[tuple[int, str], ...] = (
    (2004, "coil100"), (2004, "mnist"),
    (2006, "pascal_voc2005"), (2006, "caltech_categories"), (2006, "uiuc_cars"),
    (2009, "pascal_voc2006"),
    (2010, "caltech101"),
    (2011, "ig02"), (2011, "scenes15"), (2011, "pascal_2007"), (2011, "lfw"),
    (2013, "sketch_dataset"), (2013, "brodatz"),
    (2014, "imagenet"), (2014, "pascal_2012"), (2014, "caltech256"),
    (2018, "cifar_100"), (2018, "cifar_10"), (2018, "usps"), (2018, "mnist"), (2018, "mnist_m"),
    (2018, "office_caltech"), (2018, "pacs"), (2018, "isbi_isic_2017_melanoma_classification_challenge"),
    (2019, "fashion_mnist"),
    (2020, "stanford_dogs"), (2020, "cub_200"), (2020, "stanford_cars"), (2020, "fgvc_aircraft"),
)

TINY: tuple[tuple[int, str], ...] = (
    (2004, "mnist"),
    (2010, "caltech101"),
    (2014, "pascal_2012"),
    (2018, "cifar_100"), (2018, "mnist"), (2018, "isbi_isic_2017_melanoma_classification_challenge"),
    (2020, "cub_200"),
)

# The reference's DEBUG stream uses COIL 20 (its README says COIL 100).
DEBUG: tuple[tuple[int, str], ...] = ((1999, "pascal_2007"), (2000, "coil20"))

IMAGENET_ONLY: tuple[tuple[int, str], ...] = ((2014, "imagenet"),)

# 2019-2021 of FULL; the two reduced variants below keep all of it.
_FULL_FROM_2019 = tuple(entry for entry in FULL if entry[0] >= 2019)

# MAJOR_DOMAIN_ONLY: drops satellite, face, texture, shape, OCR, quality and medical datasets before
# 2019 (70 entries: 43 before 2019 + the 27 of 2019-2021). Membership as in the reference's table.
MAJOR_DOMAIN_ONLY: tuple[tuple[int, str], ...] = (
    (2000, "coil20"), (2001, "coil100"), (2004, "butterflies"), (2005, "caltech101"),
    (2006, "pascal_voc2005"), (2006, "caltech_categories"), (2006, "uiuc_cars"), (2006, "aloi"),
    (2007, "scenes8"), (2008, "scenes15"), (2009, "pascal_voc2006"),
    (2010, "pascal_2007"), (2010, "ig02"), (2010, "ppmi"),
    (2011, "caltech256"), (2011, "imagenet"), (2011, "oxford_flowers"), (2011, "oxford_flowers_102"),
    (2011, "belgium_traffic_sign_dataset"), (2011, "german_traffic_sign_recognition_benchmark"),
    (2013, "iaprtc_12"), (2013, "sketch_dataset"), (2013, "pascal_2012"), (2013, "norb"),
    (2014, "wikipaintings"),
    (2015, "mit_scenes"), (2015, "sun_397"), (2015, "cifar_10"),
    (2016, "cub_200"), (2016, "stanford_cars"), (2016, "fgvc_aircraft"), (2016, "ms_coco"),
    (2016, "caltech101"), (2016, "oxford_iiit_pets"), (2016, "stanford_dogs"), (2016, "interact"),
    (2016, "voc_actions"), (2016, "svhn"),
    (2017, "sun_attribute"), (2017, "cifar_100"),
    (2018, "office_caltech"), (2018, "pacs"), (2018, "caltech_camera_traps"),
) + _FULL_FROM_2019

# LARGE_DATASET_ONLY: drops datasets with fewer than 10,000 examples (all splits) before 2019
# (67 entries: 40 before 2019 + the 27 of 2019-2021). Membership as in the reference's table.
LARGE_DATASET_ONLY: tuple[tuple[int, str], ...] = (
    (2004, "mnist"), (2005, "caltech101"), (2006, "aloi"), (2009, "extended_yaleb"), (2010, "pascal_2007"),
    (2011, "caltech256"), (2011, "imagenet"), (2011, "lfw"), (2011, "belgium_traffic_sign_dataset"),
    (2011, "german_traffic_sign_recognition_benchmark"),
    (2013, "iaprtc_12"), (2013, "sketch_dataset"), (2013, "pascal_2012"), (2013, "norb"),
    (2014, "wikipaintings"),
    (2015, "mnist"), (2015, "mit_scenes"), (2015, "sun_397"), (2015, "cifar_10"),
    (2016, "cub_200"), (2016, "stanford_cars"), (2016, "fgvc_aircraft"), (2016, "ms_coco"),
    (2016, "caltech101"), (2016, "oxford_iiit_pets"), (2016, "stanford_dogs"), (2016, "caltech_101_silhouettes"),
    (2016, "voc_actions"), (2016, "svhn"), (2016, "chars74k"),
    (2017, "celeba"), (2017, "lfwa"), (2017, "sun_attribute"), (2017, "cifar_100"),
    (2018, "usps"), (2018, "mnist_m"), (2018, "pacs"), (2018, "caltech_camera_traps"),
    (2018, "emnist_balanced"), (2018, "casia_hwdb1_1"),
) + _FULL_FROM_2019

VARIANTS: dict[str, tuple[tuple[int, str], ...]] = {
    "full": FULL,
    "short": SHORT,
    "tiny": TINY,
    "debug": DEBUG,
    "imagenet-only": IMAGENET_ONLY,
    "major-domain-only": MAJOR_DOMAIN_ONLY,
    "large-dataset-only": LARGE_DATASET_ONLY,
}

DEFAULT_STOP_YEAR = 2020  # development protocol: years >= 2020 are held out, predict on dev_test
FINAL_STOP_YEAR = 2022  # final protocol: every year, predict on test


def catalogue_key(name: str, option: str = "dataset") -> str:
    """``name`` as a key of :data:`DATASETS`; a ValueError naming close matches otherwise (``option``: what
    the user set, for the message)."""
    import difflib

    if name in DATASETS:
        return name
    if not name:
        raise ValueError(f"option {option} is required: a catalogue dataset key such as mnist or coil100 "
                         "(the keys: `nevis-bench streams describe synthetic-full`)")
    close = difflib.get_close_matches(name, list(DATASETS), n=4)
    hint = f"; did you mean {', '.join(close)}?" if close else "; the keys: `nevis-bench streams describe synthetic-full`"
    raise ValueError(f"option {option}: {name!r} is not a catalogue dataset key{hint}")
