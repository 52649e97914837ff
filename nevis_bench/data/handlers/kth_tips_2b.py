"""KTH-TIPS2-b (``nevis:kth_tips_2b``): 11 material classes, colour images.

Archive: ``kth-tips2-b_col_200x200.tar`` with ``KTH-TIPS2-b/<class>/sample_<x>/<image>.png``. Class
ids: sorted class names. Order: archive order.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images. Whole images by default; ``NEVIS_TEXTURE_CROPS=1`` gives the reference's intended random
64 x 64 crops (see ``kth_tips.py`` for the rule and why whole images are the default).
"""

from __future__ import annotations

from nevis_bench.data.handlers.kth_tips import texture_handlers

HANDLER, HANDLER_WITH_CROPS = texture_handlers(
    "kth_tips_2b",
    "kth-tips2-b_col_200x200.tar",
    "00470a104a57f5a5be22cc8a0f234c4e",
    dataset_key="kth_tips2_b",
    citation="B. Caputo, E. Hayman, P. Mallikarjuna, Class-specific material categorisation, ICCV 2005",
)
