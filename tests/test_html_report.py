"""The HTML report as a reader sees it: reference metric columns, scrolling wide tables, readable heatmaps,
sortable columns. Structure is checked always; layout and sorting in a headless Chromium where one is
installed (``apt-get install chromium``; pip's and npm's browser packages download their browsers from
outside the package registries, so the suite cannot fetch one), skipped otherwise."""

import importlib.util
import io
import re

import numpy as np
import pandas as pd
import pytest

from nevis_bench.cli import main
from nevis_bench.reports import figures
from nevis_bench.reports.html import Section, render
from tests.helpers import REPO

SCHEMA_1_RUN = REPO / "tests" / "data" / "schema1_run" / "independent"
_spec = importlib.util.spec_from_file_location("screenshot_report", REPO / "scripts" / "screenshot_report.py")
screenshot_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screenshot_report)
BROWSER = screenshot_report.find_browser()
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium here (apt-get install chromium)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(SCHEMA_1_RUN), "--output", str(out)]) == 0
    return out / "report.html"


def test_every_table_scrolls_sorts_and_shows_the_reference_metrics(report):
    page = report.read_text()
    tables = re.findall(r'(<div class="scroll">)?<table( class="sortable")?>', page)
    assert tables and all(wrapper and sortable for wrapper, sortable in tables)
    assert all('<div class="scroll"><img' in figure for figure in re.findall(r"<figure>.*?</figure>", page, re.S))
    header = re.search(r"<h2>Leaderboard</h2>.*?<thead><tr>(.*?)</tr>", page, re.S).group(1)
    for column in ("average_error", "average_single_label_accuracy", "weighted_single_label_accuracy",
                   "average_multi_label_map", "headline_flops", "reference_flops"):
        assert f"<th>{column}</th>" in header
    assert "<script>" in page and "sortTable" in page and "src=\"http" not in page  # nothing fetched


def test_accuracy_matrix_cells_are_large_enough_to_read_task_names():
    from PIL import Image

    tasks = [f"task_number_{i}_with_a_long_name" for i in range(29)]
    rows = [f"{i + 1}. after {t}" for i, t in enumerate(tasks)] + ["final"]
    matrix = pd.DataFrame(np.random.default_rng(0).uniform(size=(30, 29)), index=rows, columns=tasks)
    png = figures.accuracy_matrix(matrix, "29 tasks")
    width, height = Image.open(io.BytesIO(png)).size
    assert width >= 29 * 45 and height >= 30 * 34  # at least 45 x 34 px a cell at the report's 110 dpi


def _sort_fixture(tmp_path):
    table = pd.DataFrame({"learner": ["a", "b", "c", "d"], "average_error": [0.3, 0.1, float("nan"), 0.2]})
    path = tmp_path / "sort.html"
    path.write_text(render("sort", [], [Section("Leaderboard", tables=[("", table)])]))
    return path


@needs_browser
def test_a_click_or_the_address_sorts_a_column_in_a_browser(tmp_path):
    page = _sort_fixture(tmp_path)

    def order(fragment):
        dom = screenshot_report.dump_dom(page, fragment)
        return re.findall(r"<tr><td>([a-d])</td>", dom)

    assert order("sort=average_error") == ["b", "d", "a", "c"]  # n/a last
    assert order("sort=-average_error") == ["a", "d", "b", "c"]
    # two clicks on the average_error header: ascending, then descending
    page.write_text(page.read_text().replace("</body>", "<script>const th = document.querySelectorAll('th')[1];"
                                                         "th.click(); th.click();</script></body>"))
    assert order("") == ["a", "d", "b", "c"]


@needs_browser
def test_in_a_1400_px_window_the_page_keeps_its_width_and_wide_tables_scroll(report, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", """<script>
document.body.setAttribute("data-page-width", document.documentElement.scrollWidth);
document.body.setAttribute("data-scrolling", Array.from(document.querySelectorAll("div.scroll"))
  .filter(d => d.scrollWidth > d.clientWidth).length);
</script></body>"""))
    dom = screenshot_report.dump_dom(probe, width=1400)
    assert int(re.search(r'data-page-width="(\d+)"', dom).group(1)) <= 1400  # nothing is cut at the edge
    assert int(re.search(r'data-scrolling="(\d+)"', dom).group(1)) >= 1  # the wide tables scroll instead
    shot = screenshot_report.screenshot(report, tmp_path / "report.png", width=1400, height=1200)
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (1200, 1400) and image.min() < 100  # rendered, not blank
