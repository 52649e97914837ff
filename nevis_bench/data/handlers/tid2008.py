"""TID2008 (``nevis:tid2008``): 1,700 distorted images in 5 MSSIM quality bins; see ``_tid.py`` for the rule."""

from nevis_bench.data.handlers._tid import __doc__ as _RULE, make_handler

__doc__ = f"{__doc__}\n\n{_RULE}"
HANDLER = make_handler(2008)
