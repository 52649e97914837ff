"""Look at a report.html the way a reader does: a headless Chromium screenshot, and the page after its script.

    python scripts/screenshot_report.py results/report.html --output report.png [--width 1400 --height 2400]
    python scripts/screenshot_report.py results/report.html --dump-dom --sort average_single_label_accuracy

Chromium comes from the system (Debian: ``apt-get install chromium``); Playwright's and Puppeteer's
pip/npm packages download their browsers from outside the package registries, which this project's
machines cannot reach. ``find_browser`` returns None where there is none, and the test that uses this
script (tests/test_html_report.py) then checks the page's structure only.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(browser: str, arguments: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="nevis-chromium-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(report: pathlib.Path, output: pathlib.Path, width: int = 1400, height: int = 2400,
               browser: str | None = None, timeout: float = 120.0) -> pathlib.Path:
    """A PNG of ``report`` in a ``width`` x ``height`` window."""
    browser = browser or find_browser()
    if browser is None:
        raise RuntimeError(f"no headless browser found (looked for {', '.join(BROWSERS)})")
    result = _run(browser, [f"--window-size={width},{height}", f"--screenshot={output.resolve()}",
                            report.resolve().as_uri()], timeout)
    if not output.exists():
        raise RuntimeError(f"{browser} wrote no screenshot:\n{result.stderr[-2000:]}")
    return output


def dump_dom(report: pathlib.Path, fragment: str = "", browser: str | None = None, timeout: float = 120.0,
             width: int = 1400, height: int = 900) -> str:
    """The page's HTML after its script ran in a ``width`` x ``height`` window (``fragment``: e.g.
    ``sort=-average_error``)."""
    browser = browser or find_browser()
    if browser is None:
        raise RuntimeError(f"no headless browser found (looked for {', '.join(BROWSERS)})")
    url = report.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    result = _run(browser, [f"--window-size={width},{height}", "--dump-dom", url], timeout)
    if result.returncode != 0 or "<html" not in result.stdout:
        raise RuntimeError(f"{browser} could not render {url}:\n{result.stderr[-2000:]}")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=pathlib.Path)
    parser.add_argument("--output", type=pathlib.Path, default=pathlib.Path("report.png"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--dump-dom", action="store_true", help="print the page after its script instead")
    parser.add_argument("--sort", default="", help="with --dump-dom: open with #sort=COLUMN (-COLUMN: descending)")
    args = parser.parse_args(argv)
    if args.dump_dom:
        print(dump_dom(args.report, f"sort={args.sort}" if args.sort else ""))
    else:
        print(screenshot(args.report, args.output, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
