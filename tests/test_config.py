"""Config: every setting comes from its environment variable, and the README table lists them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.config import Config, Env

README = Path(__file__).resolve().parent.parent / "README.md"
SETTINGS = {name: env for name, env in vars(Config).items() if isinstance(env, Env)}


def test_every_variable_is_in_the_readme_table_with_its_default():
    rows = dict(re.findall(r"^\| `(SNIPPETS_\w+)` \| ([^|]+) \|", README.read_text("utf-8"),
                           re.MULTILINE))
    for env in SETTINGS.values():
        assert env.variable in rows, env.variable
        shown = rows[env.variable].strip()
        if shown.startswith("`"):
            assert shown == f"`{env.default}`", env.variable


def test_settings_are_read_when_looked_up(monkeypatch):
    monkeypatch.setenv("SNIPPETS_WORKER_TIMEOUT", "45")
    monkeypatch.setenv("SNIPPETS_INDEX_DIR", "/srv/index")
    assert Config.WORKER_TIMEOUT == 45
    assert Config.INDEX_DIR == "/srv/index"
    monkeypatch.delenv("SNIPPETS_WORKER_TIMEOUT")
    assert Config.WORKER_TIMEOUT == 30


def test_empty_means_the_default_except_where_empty_means_something(monkeypatch):
    monkeypatch.setenv("SNIPPETS_INDEX_DIR", "")
    monkeypatch.setenv("SNIPPETS_WORKERS", "")
    monkeypatch.setenv("SNIPPETS_RATE_LIMIT", "")  # empty: rate limits off
    assert (Config.INDEX_DIR, Config.WORKERS, Config.RATE_LIMIT) == ("var/index", 2, "")


def test_bad_integer_names_the_variable(monkeypatch):
    monkeypatch.setenv("SNIPPETS_MAX_REPEATED", "twenty")
    with pytest.raises(ValueError, match="^environment variable SNIPPETS_MAX_REPEATED must be "
                                         "an integer, got 'twenty'$"):
        _ = Config.MAX_REPEATED
