"""openapi.yaml lints clean: Redocly's recommended rules and Spectral's spectral:oas ruleset
report no error and no warning (the ruleset files are redocly.yaml, .spectral.yaml and the
reasoned exceptions in .redocly.lint-ignore.yaml).

Both linters run through npx (npm registry packages at pinned versions). Without npx they are
skipped, unless SNIPPETS_REQUIRE_NODE=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from api_helpers import ROOT, SPEC_FILE

REQUIRE_ENV = "SNIPPETS_REQUIRE_NODE"
REDOCLY = "@redocly/cli@2.77.0"
SPECTRAL = "@stoplight/spectral-cli@6.16.3"


def npx() -> str:
    found = shutil.which("npx")
    if found is None:
        reason = "npx is not installed (apt-get install nodejs npm): the spec linters cannot run"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    return found


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "REDOCLY_TELEMETRY": "off",
           "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    return subprocess.run([npx(), "--yes", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def test_redocly_recommended_reports_nothing():
    result = run(REDOCLY, "lint", SPEC_FILE.name, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == [], json.dumps(report["problems"], indent=1)[:3000]
    assert report["totals"]["errors"] == report["totals"]["warnings"] == 0


def test_spectral_oas_reports_nothing():
    result = run(SPECTRAL, "lint", SPEC_FILE.name, "--ruleset", ".spectral.yaml",
                 "--fail-severity", "hint")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No results with a severity of 'hint' or higher found!" in output, output
