"""Aberdeen faces (``nevis:aberdeen``, Stirling PICS collection): face identification, colour images.

Archive: ``Aberdeen.zip`` with one flat folder of images named ``<person><n>.jpg`` (e.g.
``neil1.jpg``). Order: archive order (the reference iterates the zip's entries as stored).

Label (reference): the person is the leading run of letters and underscores of the file name; eight
names are aliases of another person's pictures (``marieg`` -> ``marie``, ``heatherg``, ``kayg``,
``neilg``, ``graemeg``, ``dhawleyg``, ``jsheenang`` -> ``jsheenan``, ``clean_adrian`` -> ``adrian``).
Class ids are positions in the reference's fixed list of 92 names below, which still holds
``jsheenang`` (id 22, never produced because of its alias), so 91 ids are used.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images in archive order.
Deviation: a file whose name does not start with a known person is an error naming it (the reference
stopped with a KeyError); ``Thumbs.db``/``__MACOSX`` entries are skipped.
"""

from __future__ import annotations

import re

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples

ALIASES = {
    "marieg": "marie", "heatherg": "heather", "kayg": "kay", "neilg": "neil", "graemeg": "graeme",
    "dhawleyg": "dhawley", "clean_adrian": "adrian", "jsheenang": "jsheenan",
}

CLASS_NAMES = [
    "neil", "jenni", "chris_harbron", "john_mccal", "blaw", "dpearson", "ruth", "richard_hardwick", "olive",
    "dlow", "simon", "dougal_grant", "mnicholson", "hack", "caroline", "lynn", "adrian", "kay", "fiona_hogarth",
    "annanena", "heather", "barry", "jsheenang", "michael", "alister", "amellanby", "george", "graham_brown",
    "itaylor", "marie", "david", "jim", "alison", "trevor", "iroy", "scott", "louise", "dsmith", "gfindley",
    "irene", "tracy", "johannes", "chris_pin", "anon_one", "stewart", "lynn_james", "peter", "paul", "pkyle",
    "andrew", "mmanson", "graeme", "fiona", "ghall", "paol", "david_imray", "john_thom", "stephen", "gordon",
    "gillian", "dhands", "joanna", "nick", "bfegan", "grant_cumming", "alec", "milly", "merilyn", "kirsty",
    "peter_macgeorge", "dbell", "chris", "miranda", "johnny_page", "pat", "terry_johnstone", "tock", "catherine",
    "blair", "kieran", "martin", "hin", "meggan", "jsheenan", "brian_ho", "mark", "dhawley", "derek", "lisa",
    "ian", "kim", "dave_faquhar",
]
_IDS = {name: i for i, name in enumerate(CLASS_NAMES)}


def label_of(member: str) -> int:
    """Class id of an archive member such as ``neil1.jpg`` or ``marieg3.jpg``."""
    stem = member.rsplit(".", 1)[0]
    match = re.search(r"[a-zA-Z_]+", stem)
    person = ALIASES.get(match.group(0), match.group(0)) if match else ""
    if person not in _IDS:
        raise HandlerError(f"aberdeen: cannot tell the person of {member!r} (not one of the 92 known names)")
    return _IDS[person]


def convert(ctx: HandlerContext) -> HandlerOutput:
    examples = labelled_examples(ctx, [ctx.file("Aberdeen.zip")], label_of, sort=False)  # label_of raises on an unknown person
    return HandlerOutput(examples, list(CLASS_NAMES))


HANDLER = Handler(
    name="aberdeen",
    dataset_key="aberdeen",
    artefacts=(Artefact("Aberdeen.zip", "http://pics.stir.ac.uk/zips/Aberdeen.zip", "1f7044bd5f0bed01286263aa580a7a87"),),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images, zip entry order",
    website="http://pics.stir.ac.uk/",
    licence="Psychological Image Collection at Stirling (PICS): free for research use; see the website",
    citation="Psychological Image Collection at Stirling (PICS), Aberdeen set (I. Craw)",
)
