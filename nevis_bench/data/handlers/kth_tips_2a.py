"""KTH-TIPS2-a (``nevis:kth_tips_2a``): 11 material classes, colour images.

Archive: ``kth-tips2-a_col_200x200.tar`` with ``KTH-TIPS2-a/<class>/sample_<x>/<image>.png``. Class
ids: sorted class names. Order: archive order.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images. Whole images by default; ``NEVIS_TEXTURE_CROPS=1`` gives the reference's intended random
64 x 64 crops (see ``kth_tips.py`` for the rule and why whole images are the default).
"""

from __future__ import annotations

from nevis_bench.data.handlers.kth_tips import texture_handlers

HANDLER, HANDLER_WITH_CROPS = texture_handlers(
    "kth_tips_2a",
    "kth-tips2-a_col_200x200.tar",
    "911eb17220748fa36e6524aea71db7d7",
    dataset_key="kth_tips2_a",
    citation="B. Caputo, E. Hayman, P. Mallikarjuna, Class-specific material categorisation, ICCV 2005",
)
