"""Reports and leaderboards built from run directories (see :mod:`nevis_bench.reports.build`).

Modules: ``tables`` (DataFrames), ``formatting`` (CSV / Markdown / LaTeX / HTML), ``figures`` (PNG),
``html`` (the self-contained page), ``build`` (putting them together), ``cli`` (subcommands).
"""
