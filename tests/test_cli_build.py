"""The `snippets build` and `snippets check` commands as an operator runs them."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from index import store
from index.build import build_lock, current_generation
from service.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def serving_index(tmp_path, built_index) -> Path:
    """A private copy of a good index, standing in for the one in service."""
    target = tmp_path / "index"
    shutil.copytree(built_index, target, symlinks=True)
    return target


def test_build_prints_counts_and_build_time(runner, tmp_path, seeds_dir):
    index_dir = tmp_path / "index"
    result = runner.invoke(cli, ["build", "--seeds", str(seeds_dir), "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    manifest = store.read_json(current_generation(index_dir) / store.MANIFEST)
    assert f"index version {manifest['version']}  generation {manifest['generation']}" in out
    assert re.search(rf"built at {re.escape(manifest['built_at'])} in \d+\.\d\ds", out)
    assert "sources 5  snippets 45" in out
    for slug, count in manifest["counts"]["per_condition"].items():
        assert re.search(rf"^  {re.escape(slug)} +{count}$", out, re.MULTILINE), slug
    assert re.search(r"^  fibromyalgia +10$", out, re.MULTILINE)
    for caveat_id, count in manifest["counts"]["per_caveat"].items():
        assert re.search(rf"^  {re.escape(caveat_id)} +{count}$", out, re.MULTILINE), caveat_id


def test_piped_build_prints_no_progress_line(runner, tmp_path, seeds_dir, monkeypatch):
    monkeypatch.setenv("SNIPPETS_INDEX_DIR", str(tmp_path / "index"))
    result = runner.invoke(cli, ["build", "--seeds", str(seeds_dir)])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    assert "documents read" not in result.output
    assert result.stderr == ""
    # SNIPPETS_INDEX_DIR is where the build went, since --index was not given.
    assert current_generation(tmp_path / "index").is_dir()


def test_build_with_broken_seed_exits_1_and_leaves_index_in_service(runner, seeds_copy,
                                                                    serving_index):
    caveats = seeds_copy / "caveats.yaml"
    text = caveats.read_text(encoding="utf-8")
    caveats.write_text(text.replace("conditions: [ptsd]", "conditions: [ptsd, ptsd-typo]"),
                       encoding="utf-8")
    line = text.splitlines().index("      conditions: [ptsd]") + 1
    current_before = os.readlink(serving_index / "CURRENT")

    result = runner.invoke(cli, ["build", "--seeds", str(seeds_copy),
                                 "--index", str(serving_index)])

    assert result.exit_code == 1
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert errors[0] == (f"error: {caveats}:{line}: caveat 'investigational-ptsd': "
                         "unknown condition 'ptsd-typo' (not in conditions.yaml)")
    assert errors[-1] == ("build failed: 1 problem(s) in the inputs; "
                          "the index in service is unchanged")
    assert os.readlink(serving_index / "CURRENT") == current_before


def test_build_refuses_while_another_build_is_running(runner, tmp_path, seeds_dir):
    index_dir = tmp_path / "index"
    with build_lock(index_dir):
        result = runner.invoke(cli, ["build", "--seeds", str(seeds_dir),
                                     "--index", str(index_dir)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: another build is running in ")
    assert "--wait" in result.stderr
    assert not (index_dir / "CURRENT").exists()


def test_check_prints_the_manifest_json(runner, built_index):
    result = runner.invoke(cli, ["check", "--index", str(built_index)])
    assert result.exit_code == 0, result.output
    manifest = store.read_json(current_generation(built_index) / store.MANIFEST)
    assert json.loads(result.stdout) == manifest
    assert result.stderr == f"ok: 45 snippets in {manifest['generation']}\n"


def test_check_on_empty_dir_says_no_index_built_yet(runner, tmp_path):
    result = runner.invoke(cli, ["check", "--index", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no index built yet")


def test_check_on_damaged_index_exits_1_and_names_the_damage(runner, serving_index):
    (current_generation(serving_index) / "sources.json").unlink()
    result = runner.invoke(cli, ["check", "--index", str(serving_index)])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["counts"]["snippets"] == 45
    assert result.stderr == "error: sources.json is missing\n"


def test_check_defaults_to_snippets_index_dir(runner, built_index, monkeypatch):
    monkeypatch.setenv("SNIPPETS_INDEX_DIR", str(built_index))
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["generation"] == current_generation(built_index).name


@pytest.mark.parametrize("unset", [None, ""], ids=["absent", "empty"])
def test_index_dir_falls_back_to_var_index(runner, tmp_path, monkeypatch, unset):
    monkeypatch.chdir(tmp_path)
    if unset is None:
        monkeypatch.delenv("SNIPPETS_INDEX_DIR", raising=False)
    else:
        monkeypatch.setenv("SNIPPETS_INDEX_DIR", unset)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 1
    assert "var/index/CURRENT does not exist" in result.stderr


def test_bad_integer_in_the_environment_is_an_error_naming_the_variable(runner, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "execve", lambda *args: pytest.fail("serve started gunicorn"))
    monkeypatch.setenv("SNIPPETS_WORKERS", "two")
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "environment variable SNIPPETS_WORKERS must be an integer, got 'two'" in result.stderr
    monkeypatch.delenv("SNIPPETS_WORKERS")
    monkeypatch.setenv("SNIPPETS_WORKER_TIMEOUT", "30s")
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert result.stderr == ("error: environment variable SNIPPETS_WORKER_TIMEOUT must be an "
                             "integer, got '30s'\n")


def test_serve_help_shows_the_variables_behind_its_defaults(runner):
    text = runner.invoke(cli, ["serve", "--help"], terminal_width=200).stdout
    for shown in ("$SNIPPETS_BIND or 127.0.0.1:8000", "$SNIPPETS_WORKERS or 2",
                  "$SNIPPETS_SEEDS_DIR or seeds", "$SNIPPETS_INDEX_DIR or var/index"):
        assert shown in text
