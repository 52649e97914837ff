"""A self-contained HTML report: tables inline, figures embedded as base64 PNG data URIs.

Made to be read in a browser window of any width: every table and figure sits in a container that
scrolls horizontally instead of being cut at the window edge (or shrunk until its labels are
unreadable); figures are shown at their own size. Every table is sortable: a click on a column
header sorts by that column (numbers as numbers, ``n/a`` last; a second click reverses), and
``report.html#sort=COLUMN`` (``#sort=-COLUMN`` descending) opens with the first table holding that
column sorted by it. The script is a few lines inline; nothing is fetched.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

import pandas as pd

from nevis_bench.reports.formatting import to_html

_CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 1400px; color: #222; }
div.scroll { overflow-x: auto; max-width: 100%; margin: 0.5em 0 1.5em; border-left: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.85em; white-space: nowrap; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
figure { margin: 1em 0 2em; }
figure img { max-width: none; display: block; }
figcaption, p.note { font-size: 0.85em; color: #555; max-width: 60em; }
"""

# Sorting by a click on a column header, or by #sort=COLUMN / #sort=-COLUMN in the address.
_JS = """
function cellValue(row, index) {
  const text = row.cells[index].textContent.trim();
  if (text === "n/a" || text === "") return null;
  const number = Number(text);
  return Number.isNaN(number) ? text : number;
}
function sortTable(table, index, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, index), y = cellValue(b, index);
    if (x === null || y === null) return (x === null) - (y === null);
    const order = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
    return descending ? -order : order;
  });
  rows.forEach(row => body.appendChild(row));
  Array.from(table.tHead.rows[0].cells).forEach((th, i) =>
    th.setAttribute("aria-sort", i === index ? (descending ? "descending" : "ascending") : "none"));
}
document.querySelectorAll("table.sortable").forEach(table => {
  Array.from(table.tHead.rows[0].cells).forEach((th, index) => th.addEventListener("click", () =>
    sortTable(table, index, th.getAttribute("aria-sort") === "ascending")));
});
const wanted = decodeURIComponent((location.hash.match(/sort=(-?)([^&]+)/) || []).slice(1).join(""));
if (wanted) {
  const descending = wanted.startsWith("-"), column = wanted.replace(/^-/, "");
  for (const table of document.querySelectorAll("table.sortable")) {
    const index = Array.from(table.tHead.rows[0].cells).findIndex(th => th.textContent === column);
    if (index >= 0) { sortTable(table, index, descending); break; }
  }
}
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
            parts.append(f'<div class="scroll">{to_html(table, sortable=True)}</div>' if len(table)
                         else '<p class="note">None.</p>')
        for name, caption, png in section.figures:
            parts.append(
                f'<figure><div class="scroll"><img alt="{html.escape(name)}" src="{_data_uri(png)}"></div>'
                f"<figcaption>{html.escape(caption)} ({html.escape(name)})</figcaption></figure>"
            )
    parts += [f"<script>{_JS}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
