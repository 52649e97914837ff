"""A self-contained HTML report: tables inline, figures embedded as base64 PNG data URIs."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

import pandas as pd

from nevis_bench.reports.formatting import to_html

_CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 1400px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; }
figcaption, p.note { font-size: 0.85em; color: #555; max-width: 60em; }
"""


@dataclass
class Section:
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (caption, table)
    figures: list[tuple[str, str, bytes]] = field(default_factory=list)  # (file name, caption, PNG bytes)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render(title: str, intro: list[str], sections: list[Section]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f'<p class="note">{html.escape(line)}</p>' for line in intro]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f'<p class="note">{html.escape(line)}</p>' for line in section.notes]
        for caption, table in section.tables:
            if caption:
                parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append(to_html(table) if len(table) else '<p class="note">None.</p>')
        for name, caption, png in section.figures:
            parts.append(
                f'<figure><img alt="{html.escape(name)}" src="{_data_uri(png)}">'
                f"<figcaption>{html.escape(caption)} ({html.escape(name)})</figcaption></figure>"
            )
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
