"""Shared helpers for the HTTP API tests (tests/test_api_*.py)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from index.build import current_generation
from service import create_app

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SPEC_FILE = ROOT / "openapi.yaml"
PROBLEM_JSON = "application/problem+json"

ACCEPTANCE = {"q": "sleep", "condition": "fibromyalgia"}
SLEEP_SOURCE = "003_c10700c13901ee51"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"


def make_app(index_dir: Path | str, **config) -> Flask:
    # Feedback counts go to a private directory, never the working tree's var/data.
    return create_app({"INDEX_DIR": str(index_dir), "TESTING": True,
                       "DATA_DIR": tempfile.mkdtemp(prefix="snippets-data-"), **config})


@contextmanager
def app_for(index_dir: Path | str) -> Iterator[Flask]:
    """An app over `index_dir` whose open index files are closed afterwards."""
    app = make_app(index_dir)
    try:
        yield app
    finally:
        app.extensions["snippets_index"].close()


def manifest(index_dir: Path | str) -> dict[str, Any]:
    """The manifest of the generation CURRENT points at."""
    return json.loads((current_generation(index_dir) / "manifest.json").read_text("utf-8"))


def source_text(seeds_dir: Path, source_id: str) -> str:
    # Decoded from bytes exactly as the build reads it (no newline translation).
    return (seeds_dir / f"{source_id}.txt").read_bytes().decode("utf-8")


def assert_citation_matches(snippet: dict[str, Any], seeds_dir: Path = SEEDS) -> None:
    """The citation points at the exact characters of the snippet in its source file."""
    citation = snippet["citation"]
    text = source_text(seeds_dir, citation["source_id"])
    assert text[citation["char_start"]:citation["char_end"]] == snippet["text"]
    assert citation["text_sha256"] == hashlib.sha256(snippet["text"].encode()).hexdigest()


def assert_problem(response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with our shape; returns the parsed body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = json.loads(response.get_data(as_text=True))
    assert {"type", "title", "status", "detail"} <= set(body)
    assert set(body) <= {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if "errors" in body:
        assert body["errors"], "errors, when present, is not empty"
        for error in body["errors"]:
            assert set(error) == {"location", "parameter", "detail"}
            assert all(isinstance(v, str) and v for v in error.values())
    return body


def assert_bad_parameter(response, parameter: str, status: int = 400) -> dict[str, Any]:
    """A 4xx problem (400 unless given) whose field errors name `parameter` (in the query)."""
    body = assert_problem(response, status)
    assert "errors" in body, body
    named = [e for e in body["errors"] if e["parameter"] == parameter]
    assert named, body
    assert all(e["location"] == "query" for e in named)
    return body


def add_article(seeds_dir: Path, source_id: str, title: str, body: str) -> None:
    """Add one article file and its catalogue entry to a seeds directory."""
    (seeds_dir / f"{source_id}.txt").write_text(f"{title}\n\n{body}\n", encoding="utf-8")
    catalog = seeds_dir / "catalog.yaml"
    text = catalog.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    text += (f"  {source_id}:\n"
             f"    title: {json.dumps(title)}\n"
             "    publisher: null\n"
             "    url: null\n"
             "    retrieved: null\n"
             "    license: null\n"
             "    last_reviewed: 2026-11-21\n")
    catalog.write_text(text, encoding="utf-8")


PUBLIC_URL = "http://127.0.0.1:8000"  # SNIPPETS_PUBLIC_URL's default (from SNIPPETS_BIND)


def follow(client, url: str, base: str = PUBLIC_URL):
    """GET one of our own absolute URLs (as links in answers give them, under the configured
    public URL, never the Host the request came to) through a test client."""
    assert url.startswith(base + "/"), url
    return client.get(urlsplit(url).path)
