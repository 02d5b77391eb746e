"""Take the README's screenshots of the pages from a running service (make serve), with
Playwright driving Debian's chromium:

    .venv/bin/python docs/screenshots.py [http://127.0.0.1:8000]

Writes docs/search.png (a question typed on /) and docs/handout.png (a handout of two results),
1000 px wide.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def main(base: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 1200})
        page.goto(f"{base}/")
        page.get_by_label("Question or words").fill("Can VNS improve sleep in fibromyalgia?")
        page.get_by_label("Condition").select_option("fibromyalgia")
        page.get_by_role("button", name="Search").click()
        page.wait_for_load_state()
        page.screenshot(path=HERE / "search.png")
        boxes = page.get_by_role("checkbox")
        boxes.nth(0).check()
        boxes.nth(1).check()
        page.get_by_role("button", name="Make a handout from the ticked paragraphs").click()
        page.wait_for_load_state()
        page.set_viewport_size({"width": 1000, "height": 600})
        page.screenshot(path=HERE / "handout.png", full_page=True)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
