"""Bad seed input is refused with file, line and reason, and the index in service keeps working.

Each case breaks a private copy of the seeds in one way and returns the problem it expects:
(path, line or None, a fragment of the reason). Lines are looked up in the edited file, so the
cases keep working when the seeds gain or lose lines elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from index import store
from index.build import build, current_generation
from index.errors import SeedError


def edit(path: Path, old: str, new: str, *, first_only: bool = False) -> None:
    text = path.read_bytes().decode("utf-8")
    if not first_only:
        assert text.count(old) == 1, f"{old!r} is not unique in {path.name}"
    assert old in text, f"{old!r} not in {path.name}"
    path.write_bytes(text.replace(old, new, 1).encode("utf-8"))


def line_of(path: Path, needle: str) -> int:
    """The 1-based number of the first line of `path` containing `needle`."""
    for number, line in enumerate(path.read_bytes().decode("utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path.name}")


def article(seeds: Path, prefix: str) -> Path:
    return next(seeds.glob(f"{prefix}_*.txt"))


PTSD_CAVEAT_HEAD = "  - id: investigational-ptsd\n    kind: regulatory\n    severity: warning\n"


# -- the ways to break the seeds ------------------------------------------------------------


def invalid_yaml_syntax(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, PTSD_CAVEAT_HEAD,
         PTSD_CAVEAT_HEAD.replace("kind: regulatory", "kind: regulatory: legal"))
    return caveats, line_of(caveats, "kind: regulatory: legal"), "invalid YAML"


def yaml_duplicate_key(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, PTSD_CAVEAT_HEAD, PTSD_CAVEAT_HEAD + "    severity: info\n")
    line = line_of(caveats, "- id: investigational-ptsd") + 3
    return caveats, line, "duplicate key 'severity'"


def unknown_condition_in_caveat(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, "conditions: [ptsd]", "conditions: [ptsd, ptsd-typo]")
    return (caveats, line_of(caveats, "conditions: [ptsd, ptsd-typo]"),
            "caveat 'investigational-ptsd': unknown condition 'ptsd-typo'")


def duplicate_caveat_id(seeds: Path):
    caveats = seeds / "caveats.yaml"
    first = line_of(caveats, "- id: investigational-fibromyalgia")
    line = line_of(caveats, "- id: investigational-ptsd")
    edit(caveats, "- id: investigational-ptsd", "- id: investigational-fibromyalgia")
    return (caveats, line, f"duplicate caveat id 'investigational-fibromyalgia' "
                           f"(first defined on line {first})")


def duplicate_condition_slug(seeds: Path):
    conditions = seeds / "conditions.yaml"
    first = line_of(conditions, "- slug: fibromyalgia")
    line = line_of(conditions, "- slug: migraine")
    edit(conditions, "- slug: migraine", "- slug: fibromyalgia")
    return (conditions, line, f"duplicate condition slug 'fibromyalgia' "
                              f"(first defined on line {first})")


def missing_caveat_field(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, PTSD_CAVEAT_HEAD, PTSD_CAVEAT_HEAD.replace("    severity: warning\n", ""))
    return (caveats, line_of(caveats, "- id: investigational-ptsd"),
            "caveat 'investigational-ptsd': missing field(s) ['severity']")


def bad_severity(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, PTSD_CAVEAT_HEAD, PTSD_CAVEAT_HEAD.replace("warning", "critical"))
    return (caveats, line_of(caveats, "severity: critical"),
            "severity 'critical' is not one of ['info', 'warning']")


def bad_kind(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, PTSD_CAVEAT_HEAD, PTSD_CAVEAT_HEAD.replace("regulatory", "legal"))
    return caveats, line_of(caveats, "kind: legal"), "kind 'legal' is not one of"


def invalid_regex_pattern(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, r"patterns: ['\bminimally invasive\b']",
         r"patterns: ['\bminimally (invasive\b']")
    return (caveats, line_of(caveats, "minimally (invasive"),
            "caveat 'wording-minimally-invasive': pattern '\\\\bminimally (invasive\\\\b' "
            "is not a valid regular expression")


def non_utf8_article(seeds: Path):
    path = article(seeds, "000")
    lines = path.read_bytes().split(b"\n")
    lines[4] = b"\xff" + lines[4]
    path.write_bytes(b"\n".join(lines))
    return path, 5, "not valid UTF-8 (byte 0xff"


def empty_article(seeds: Path):
    path = article(seeds, "003")
    path.write_bytes(b"")
    return path, None, "document is empty"


def blank_article(seeds: Path):
    path = article(seeds, "003")
    path.write_bytes(b"\n  \n\t\n")
    return path, None, "document is empty"


def catalog_entry_without_article(seeds: Path):
    path = article(seeds, "004")
    path.unlink()
    catalog = seeds / "catalog.yaml"
    return (catalog, line_of(catalog, f"  {path.stem}:"),
            f"source '{path.stem}' has no article file {path.name}")


def article_without_catalog_entry(seeds: Path):
    (seeds / "005_new_article.txt").write_text("A new article\n\nIts only paragraph.\n",
                                               encoding="utf-8")
    return (seeds / "catalog.yaml", None,
            "no entry for source '005_new_article' (005_new_article.txt)")


def snippet_rule_pointing_at_edited_snippet(seeds: Path):
    edit(article(seeds, "001"), "Non-Invasive Option: Although VNS requires a surgical",
         "Non-Invasive Option: Although VNS needs a surgical")
    caveats = seeds / "caveats.yaml"
    return (caveats, line_of(caveats, "- id: conflict-non-invasive-option"),
            "caveat 'conflict-non-invasive-option': snippet '001_38169ab113aa31ef-3488054e3355' "
            "does not exist")


def bad_date_in_catalog(seeds: Path):
    catalog = seeds / "catalog.yaml"
    edit(catalog, "last_reviewed: 2026-11-21", "last_reviewed: 21/11/2026", first_only=True)
    return (catalog, line_of(catalog, "last_reviewed: 21/11/2026"),
            "last_reviewed must be a date (YYYY-MM-DD) or null")


def bad_date_in_caveat(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, "last_reviewed: 2026-11-21", "last_reviewed: soon", first_only=True)
    return (caveats, line_of(caveats, "last_reviewed: soon"),
            "caveat 'general-disclaimer': last_reviewed must be a date (YYYY-MM-DD)")


def caveat_source_naming_a_repository_file(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, "source: Policy of this service for every answer; it makes no clinical claim.",
         "source: Service policy (../shared/docs/product.md).")
    return (caveats, line_of(caveats, "source: Service policy (../shared/docs/product.md)."),
            "caveat 'general-disclaimer': source must name the public source itself")


def caveat_source_naming_a_seed_file(seeds: Path):
    caveats = seeds / "caveats.yaml"
    edit(caveats, "PMC2990624 (table 1); PMC5024045 (table 1); Kalagara",
         "clinical-facts.md: PMC2990624 (table 1); PMC5024045 (table 1); Kalagara",
         first_only=True)
    return (caveats, line_of(caveats, "clinical-facts.md: PMC2990624") - 1,
            "caveat 'safety-implanted-side-effects': source must name the public source")


BREAKAGES = [
    invalid_yaml_syntax, yaml_duplicate_key, unknown_condition_in_caveat, duplicate_caveat_id,
    duplicate_condition_slug, missing_caveat_field, bad_severity, bad_kind, invalid_regex_pattern,
    non_utf8_article, empty_article, blank_article, catalog_entry_without_article,
    article_without_catalog_entry, snippet_rule_pointing_at_edited_snippet, bad_date_in_catalog,
    bad_date_in_caveat, caveat_source_naming_a_repository_file, caveat_source_naming_a_seed_file,
]


# -- the index in service -----------------------------------------------------------------------


@pytest.fixture
def serving_index(tmp_path, built_index) -> Path:
    """A private copy of a good index, standing in for the one in service."""
    target = tmp_path / "index"
    shutil.copytree(built_index, target, symlinks=True)
    return target


def assert_index_unchanged(index_dir: Path, entries_before: list[str], current_before: str):
    assert os.readlink(index_dir / "CURRENT") == current_before
    entries = sorted(p.name for p in index_dir.iterdir())
    assert entries == entries_before, "a failed build left something behind"
    assert not [name for name in entries if name.startswith(".tmp-")]
    ix = store.open_whoosh(current_generation(index_dir))
    try:
        with ix.searcher() as searcher:
            assert searcher.doc_count() == 45
    finally:
        ix.close()


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda f: f.__name__)
def test_bad_seeds_are_refused_and_index_in_service_keeps_working(breakage, seeds_copy,
                                                                  serving_index):
    path, line, reason = breakage(seeds_copy)
    current_before = os.readlink(serving_index / "CURRENT")
    entries_before = sorted(p.name for p in serving_index.iterdir())

    with pytest.raises(SeedError) as raised:
        build(seeds_copy, serving_index)

    matching = [p for p in raised.value.problems if reason in p.reason]
    assert [(p.path, p.line) for p in matching] == [(str(path), line)], raised.value.problems
    where = f"{path}:{line}" if line else str(path)
    assert f"{where}: " in str(raised.value)
    assert_index_unchanged(serving_index, entries_before, current_before)


def test_every_problem_is_reported_in_one_run(seeds_copy, serving_index):
    unknown_condition_in_caveat(seeds_copy)
    bad_severity(seeds_copy)
    empty_article(seeds_copy)
    with pytest.raises(SeedError) as raised:
        build(seeds_copy, serving_index)
    reasons = [p.reason for p in raised.value.problems]
    assert len(reasons) == 3, reasons
    assert any("unknown condition 'ptsd-typo'" in r for r in reasons)
    assert any("severity 'critical'" in r for r in reasons)
    assert any("document is empty" in r for r in reasons)


def test_missing_seeds_directory_is_refused(tmp_path, serving_index):
    missing = tmp_path / "no-seeds"
    with pytest.raises(SeedError, match="seeds directory not found"):
        build(missing, serving_index)


def test_impossible_unquoted_date_is_refused_with_file_and_line(seeds_copy, serving_index):
    catalog = seeds_copy / "catalog.yaml"
    edit(catalog, "last_reviewed: 2026-11-21", "last_reviewed: 2026-02-30", first_only=True)
    with pytest.raises(SeedError) as raised:
        build(seeds_copy, serving_index)
    line = line_of(catalog, "last_reviewed: 2026-02-30")
    assert [(p.path, p.line) for p in raised.value.problems] == [(str(catalog), line)]


def test_invalid_context_pattern_names_the_context_patterns_line(seeds_copy, serving_index):
    caveats = seeds_copy / "caveats.yaml"
    good = "      conditions: [ptsd]\n      context_patterns: ['\\b(?:vagus|VNS)\\b']\n"
    edit(caveats, good, good.replace("VNS)", "VNS"))
    with pytest.raises(SeedError) as raised:
        build(seeds_copy, serving_index)
    line = line_of(caveats, "context_patterns: ['\\b(?:vagus|VNS\\b']")
    assert [(p.path, p.line) for p in raised.value.problems] == [(str(caveats), line)]
