"""Synthetic NEVIS-shaped streams: the embedded, offline default (see ``streams.py``)."""

from nevis_bench.streams.synthetic import streams as _streams  # noqa: F401  (registers the streams)
