"""AnimalWeb (``nevis:animal_web``): animal faces of 352 species, RGB.

Archive: ``animal_dataset_v1_c.rar`` (a RAR archive; see ``_rar.py`` for how it is read) holding
``<species>_<n>.jpg`` face crops (with landmark files, unused). As the reference (``unrar e``),
folders inside the archive are ignored: files are found by base name (for a name present twice, the
last copy wins). Label: the part of the base name before the first ``_``, mapped by the reference's
species list (:data:`CLASS_NAMES`, 352 names); a species outside it stops the conversion, as in the
reference. Images converted to RGB. Order: base names sorted.

Split rule (reference): exact duplicates (same RGB pixels, same label) dropped keeping the first, then
categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the unique images.
Deviation: images are taken in sorted name order (the reference used the unordered directory listing
of the unpacked files).
Catalogue note: the catalogue records 334 classes for AnimalWeb, the reference 352 (its species list);
preparing the real archive needs the catalogue's count raised to 352.
"""

from __future__ import annotations

import posixpath

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._rar import rar_archive
from nevis_bench.data.handlers._util import IGNORED, split_examples

ARCHIVE = "animal_dataset_v1_c.rar"
# The reference's species order (dm_nevis animal_web.py).
CLASS_NAMES = [
    "saluki", "kultarr", "bighornsheep", "bandedmongoose", "fox", "goat", "tasmaniandevil", "wallaroo",
    "whiptailwallaby", "feralhorse", "binturong", "geoffroyscat", "klipspringer", "vervetmonkey", "possum",
    "arcticwolf", "rustyspottedgenet", "capegraymongoose", "elk", "commonbrownlemur", "panda", "amurtiger",
    "quokka", "indri", "debrazzasmonkey", "collaredpeccary", "cloudedleopard", "emperorpenguin", "zebu",
    "wildcat", "lionpd", "walrus", "irishwolfhound", "hoodedseal", "camel", "patasmonkey", "commongenet",
    "italiangreyhound", "viverratangalungamalayancivet", "bullmastif", "blackbackedjackal", "pekingesedog",
    "lumholtzstreekangaroo", "komondor", "toquemacaque", "longnosedmongoose", "matschiestreekangaroo",
    "woodchuck", "slendermongoose", "gundi", "animal", "feralcat", "chamois", "borneanslowloris",
    "dachshund", "yelloweyedpenguin", "harpseal", "bharal", "blueeyedblacklemur", "treeshrew", "dallsheep",
    "brushtailedrockwallaby", "marmoset", "goldenbamboolemur", "greaterbamboolemur", "balinesecat",
    "californiansealion", "fallowdeer", "adeliepenguin", "waterbuck", "mareebarockwallaby", "horse", "zebra",
    "blackrhino", "australianterrier", "wildebeest", "monte", "oncilla", "armadillo", "frenchbulldog",
    "swamprabbit", "cheetah", "gentoopenguin", "greylangur", "mouflon", "alaskanmalamute", "amurleopard",
    "dhole", "baikalseal", "brownrat", "kingpenguin", "redpanda", "hamster", "echidna", "bushbaby",
    "fishingcat", "westernlesserbamboolemur", "beardedseal", "colo", "roanantelope", "harbourseal",
    "chinstrappenguin", "giantschnauzer", "collaredbrownlemur", "stripedhyena", "opossum", "guanaco",
    "wisent", "visayanwartypig", "barbarymacaque", "onager", "caiman", "feralgoat", "commonwarthog",
    "hartebeest", "arcticfox", "whiteheadedlemur", "spottedseal", "capebuffalo", "medraneanmonkseal",
    "jaguar", "wildass", "barbarysheep", "gibbons", "spottedhyena", "leopardcat", "hedgehog", "uc", "topi",
    "commonchimpanzee", "dunnart", "agilewallaby", "sundaslowloris", "wombat", "chinesegoral", "caribou",
    "weddellseal", "canadianlynx", "husky", "liger", "sharpesgrysbok", "graywolf", "hare", "caracal",
    "hyrax", "platypus", "capefox", "eurasianlynx", "oribi", "northernelephantseal", "centralchimpanzee",
    "dormouse", "gerbil", "cougar", "capybara", "ferret", "przewalskihorse", "crestedpenguin", "oryx",
    "steinbucksteenbok", "nilgai", "mangabey", "australianshepherd", "spidermonkey", "monkey", "brownhyena",
    "roedeer", "bull", "pardinegenet", "anoa", "leopard", "swampwallaby", "bonobo", "cottonrat", "vole",
    "humboldtpenguin", "africanpenguin", "goldenjackal", "gorilla", "commonkusimanse", "redtailmonkey",
    "aardwolf", "suni", "blackandwhiteruffedlemar", "chowchow", "raccoon", "bolognesedog", "kangaroo",
    "dalmatian", "gharial", "australiancattledog", "ruddymongoose", "nightmonkey", "swiftfox", "weasel",
    "easternchimpanzee", "bison", "yak", "chital", "titi", "woollymonkey", "reedbuck", "pallascat",
    "smallasianmongoose", "grizzlybear", "rustyspottedcat", "coatis", "redruffedlemur", "kinkajou",
    "parmawallaby", "coypu", "westernchimpanzee", "asianpalmcivet", "domesticcat", "giantotter",
    "pygmyrabbit", "grayfox", "kiang", "pademelon", "lemur", "wapiti", "asiangoldencat", "agouti",
    "bandedpalmcivet", "fieldmouse", "junglecat", "anteater", "mexicanwolf", "largespottedgenet",
    "beatingmongoose", "goodfellowstreekangaroo", "flyingsquirrel", "wolverine", "guineapig", "dassie",
    "orangutan", "greyseal", "ocelot", "howler", "germanpinscher", "koala", "bilby", "goldenretriever",
    "galagos", "leopardseal", "spottedneckedotter", "crownedlemur", "owstonspalmcivet", "donkey", "duiker",
    "pygmyslowloris", "cservalserval", "hippopotamus", "tamarin", "alaskanhare", "badger", "dingo", "boar",
    "goldenlangur", "greatdane", "jackrabbit", "uakari", "colobus", "fennecfox", "sandcat", "bamboolemur",
    "bengalslowloris", "dugong", "rhesusmonkey", "marshmongoose", "littlebluepenguin", "hogdeer",
    "redbelliedsquirrel", "commondwarfmongoose", "corsacfox", "whitewolf", "addax", "stripeneckedmongoose",
    "deermouse", "japanesemacaque", "giraffe", "babirusa", "hamadryasbaboon", "douclangur",
    "anatolianshepherddog", "bluemonkey", "muskox", "yellowfootedrockwallaby", "gerenuk", "doberman",
    "hawaiianmonkseal", "magellanicpenguin", "crabeaterseal", "bobcat", "feralcattle", "jaguarundi",
    "potoroo", "muntjacdeer", "geladababoon", "harvestmouse", "rhinoceros", "olivebaboon", "buffalo",
    "patagonianmara", "bushbuck", "blackbuck", "beaver", "zonkey", "bordercollie", "southernelephantseal",
    "tammarwallaby", "olingos", "quoll", "easternlesserbamboolemur", "bandicoot", "alpineibex",
    "redneckedwallaby", "bear", "japaneseserow", "galapagossealion", "muriqui", "blackfootedcat",
    "cacomistle", "ringtail", "germanshepherddog", "ribbonseal", "domesticdog", "lutung", "tarsiers",
    "margay", "bongo", "francoislangur", "potto", "whitetaileddeer", "australiansealion", "capuchinmonkey",
    "dikdik", "aardvark", "snowleopard", "banteng", "chihuahua", "proboscismonkey", "ayeaye", "pantanalcat",
    "ethiopianwolf", "africanwilddog", "deer", "alpaca", "servalinegenet", "chipmunk", "degu", "urial",
]
LABELS = {name: i for i, name in enumerate(CLASS_NAMES)}


def label_of(base: str) -> int:
    species = posixpath.splitext(base)[0].split("_")[0]
    if species not in LABELS:
        raise HandlerError(f"animal_web: {base}: species {species!r} is not in the reference's list")
    return LABELS[species]


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)
    notes: dict = {}

    def examples():
        with rar_archive(archive, "animal_web") as members:
            images = {}  # base name -> (member, read); the last copy wins
            for member, read in members:
                base = posixpath.basename(member)
                if base.endswith("jpg") and not IGNORED.search(member):
                    images[base] = (member, read)
            used = ((images[base][0], images[base][1]()) for base in sorted(images))
            decoded = ctx.decoded(used, archive.name)
            rows = ((example_id, image, label_of(posixpath.basename(member))) for member, example_id, image in decoded)
            yield from split_examples(rows, mode="RGB", dedup_notes=notes)

    return HandlerOutput(examples(), list(CLASS_NAMES), notes)


HANDLER = Handler(
    name="animal_web",
    dataset_key="animalweb",
    artefacts=(
        Artefact(
            ARCHIVE,
            "https://drive.google.com/uc?export=download&id=13PbHxUofhdJLZzql3TyqL22bQJ3HwDK4&confirm=y",
            "d2d7e0a584ee4bd9badc74a9f2ef3b82",
        ),
    ),
    convert=convert,
    split_rule="de-duplicated (RGB pixels+label), then categorical 0.56/0.12/0.12/0.20 (RandomState(0)), sorted base names",
    website="https://fdmaproject.wordpress.com/author/fdmaproject/",
    licence="research use (see the website; cite the paper)",
    citation="M. Khan et al., AnimalWeb: A Large-Scale Hierarchical Dataset of Annotated Animal Faces, CVPR 2020",
    manual_step=(
        "if the Google Drive link refuses the download, fetch animal_dataset_v1_c.rar from the website by hand; "
        "unpacking the compressed .rar needs unrar, 7z or bsdtar on PATH"
    ),
)
