"""Screenshots of each panel of ``prefloop dashboard`` for the README: docs/img/dashboard-<panel>.png.

Fills a store with the short simulated loop the browser tests use (``tests/loop/dashboard_kit.py``: three
simulated annotators, two or three model versions, held-out pairs scored by each), serves the page with
``prefloop dashboard`` and photographs every panel in Debian's Chromium at 1,280 px, plus the whole page
on a phone-sized screen. Run from the repository root:

    python docs/make_screenshots.py                # a fresh store in a temporary folder
    python docs/make_screenshots.py --workdir dash  # keep (and reuse) the store in dash/
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefloop.loop.dashboard import PANELS  # noqa: E402
from tests.loop.dashboard_kit import DashboardProcess, fill_loop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="Folder for the store (reused when it holds one).")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"), help="Folder for the PNG files.")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="prefloop-dashboard-"))
    if not (folder / "prefloop.db").exists():
        print(f"filling a store with a short simulated loop in {folder} (a few minutes)", file=sys.stderr)
        fill_loop(folder)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    server = DashboardProcess(folder)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            page.goto(server.url)
            for chart in page.locator("div.chart").all():
                page.wait_for_selector(f"#{chart.get_attribute('id')}[data-drawn='true'] svg")
            for name in PANELS:
                path = out / f"dashboard-{name}.png"
                page.locator(f"#panel-{name}").screenshot(path=str(path))
                print(path)
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            phone.goto(server.url)
            for chart in phone.locator("div.chart").all():
                phone.wait_for_selector(f"#{chart.get_attribute('id')}[data-drawn='true'] svg")
            phone.screenshot(path=str(out / "dashboard-phone.png"))
            print(out / "dashboard-phone.png")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
