"""Shared fixtures: the real seeds, and one real index built from them per test run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from api_helpers import app_for

from index.build import build, make_snippets
from index.seeds import load
from service import create_app

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CORPUS = ROOT.parent / "shared" / "corpus" / "medquad-pages.jsonl"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return SEEDS


@pytest.fixture(scope="session")
def built_index(tmp_path_factory) -> Path:
    """An index directory built once from the real seeds; tests must not modify it."""
    index_dir = tmp_path_factory.mktemp("index")
    build(SEEDS, index_dir)
    return index_dir


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    """A private copy of the seeds that a test may break."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def seeds(seeds_dir):
    """The real seeds, loaded and validated."""
    return load(seeds_dir)


@pytest.fixture(scope="session")
def seed_snippets(seeds) -> list[dict]:
    """Every snippet the pipeline makes from the real seeds (no index written)."""
    snippets, _ = make_snippets(seeds)
    return snippets


@pytest.fixture
def make(built_index, tmp_path):
    """create_app over the test index with extra config; indexes closed afterwards."""
    apps = []

    def factory(**config):
        app = create_app({"INDEX_DIR": str(built_index), "TESTING": True,
                          "DATA_DIR": str(tmp_path / "data"), **config})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["snippets_index"].close()


@pytest.fixture(scope="module")
def client(built_index):
    """A test client of the app over the test index, one app per module (a module may define
    its own `client` with other settings)."""
    with app_for(built_index) as app:
        yield app.test_client()
