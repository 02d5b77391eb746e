"""A real browser for the page tests: Playwright (PyPI) driving Debian's chromium, and axe-core
(the npm package) to inject into pages.

Playwright never downloads a browser here: it launches /usr/bin/chromium (SNIPPETS_CHROMIUM to
point elsewhere). axe-core is installed once with npm into var/test-cache/ (gitignored), then
reused. Without a browser, npm or Playwright the browser tests are skipped, unless
SNIPPETS_REQUIRE_BROWSER=1 (as .ci/run sets), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SNIPPETS_CHROMIUM", "/usr/bin/chromium")
REQUIRE_ENV = "SNIPPETS_REQUIRE_BROWSER"
AXE_SPEC = "axe-core@4"
AXE_CACHE = ROOT / "var" / "test-cache" / "axe"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def unavailable(reason: str):
    """Skip, or fail where the browser is required (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    if not Path(CHROMIUM).is_file():
        unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


def axe_script() -> Path:
    """axe.min.js from the npm package, installed into the cache directory on first use."""
    script = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if script.is_file():
        return script
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is not installed (apt-get install npm), so axe-core cannot be")
    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--prefix", str(AXE_CACHE), "--no-audit", "--no-fund",
         "--no-package-lock", "--loglevel=error", AXE_SPEC],
        capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not script.is_file():
        unavailable(f"npm install {AXE_SPEC} failed: {result.stderr.strip()[-500:]}")
    return script
