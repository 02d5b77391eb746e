"""The seed schemas: each problem on its line, every problem of an entry at once, and what a
wrong entry still lets through (a condition with a bad code still tags, so caveats naming it
are not reported too). Lines are looked up in the edited file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from marshmallow import Schema, ValidationError

from index.errors import SeedError
from index.seed_fields import Choice, Date, Text, TextList
from index.seed_lines import LineLoader, locate
from index.seeds import load


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path.name}")


def problems(seeds: Path, **kwargs) -> list[tuple[str, int | None, str]]:
    with pytest.raises(SeedError) as raised:
        load(seeds, **kwargs)
    return [(Path(p.path).name, p.line, p.reason) for p in raised.value.problems]


FIBRO_CAVEAT = ("caveat 'investigational-fibromyalgia': unknown condition 'fibromyalgia' "
                "(not in conditions.yaml)")
PTSD_HEAD = "  - id: investigational-ptsd\n    kind: regulatory\n    severity: warning\n"
PTSD_RULES = ("    applies_to:\n      conditions: [ptsd]\n"
              "      context_patterns: ['\\b(?:vagus|VNS)\\b']\n")


def test_a_bad_code_leaves_the_condition_in_the_vocabulary(seeds_copy):
    conditions = seeds_copy / "conditions.yaml"
    edit(conditions, 'snomed: ["203082005"]', "snomed: [203082005]")
    assert problems(seeds_copy) == [
        ("conditions.yaml", line_of(conditions, "snomed: [203082005]"),
         "condition 'fibromyalgia': snomed codes must be a list of quoted text")]


def test_a_bad_label_takes_the_condition_out_and_caveats_naming_it_say_so(seeds_copy):
    conditions, caveats = seeds_copy / "conditions.yaml", seeds_copy / "caveats.yaml"
    edit(conditions, "label: Fibromyalgia", "label: ''")
    assert problems(seeds_copy) == [
        ("conditions.yaml", line_of(conditions, "- slug: fibromyalgia"),
         "condition 'fibromyalgia': label must be text"),
        ("caveats.yaml", line_of(caveats, "conditions: [fibromyalgia]"), FIBRO_CAVEAT)]


def test_an_unknown_field_alone_leaves_the_condition_in(seeds_copy):
    conditions = seeds_copy / "conditions.yaml"
    edit(conditions, "    abbreviations: [FMS]\n", "    abbreviations: [FMS]\n    synonym: x\n")
    assert problems(seeds_copy) == [
        ("conditions.yaml", line_of(conditions, "- slug: fibromyalgia"),
         "condition 'fibromyalgia': unknown field(s) ['synonym']")]


def test_terms_and_abbreviations_share_one_message(seeds_copy):
    conditions = seeds_copy / "conditions.yaml"
    edit(conditions, "terms: [fibromyalgia, fibromyalgia syndrome]", "terms: fibromyalgia")
    edit(conditions, "abbreviations: [FMS]", "abbreviations: [5]")
    assert problems(seeds_copy)[0] == (
        "conditions.yaml", line_of(conditions, "- slug: fibromyalgia"),
        "condition 'fibromyalgia': terms and abbreviations must be lists of text")
    assert len(problems(seeds_copy)) == 2  # and the caveat naming it


def test_a_catalog_entry_missing_fields_counts_as_no_entry(seeds_copy):
    catalog = seeds_copy / "catalog.yaml"
    edit(catalog, "    url: null\n", "")
    edit(catalog, "    license: null\n", "")
    source = "000_e120aca91647fdde"
    assert problems(seeds_copy) == [
        ("catalog.yaml", line_of(catalog, f"  {source}:"),
         f"source '{source}': missing field(s) ['url', 'license'] "
         "(write null where the value is unknown)"),
        ("catalog.yaml", None, f"no entry for source '{source}' ({source}.txt)")]


def test_a_catalog_entry_with_a_wrong_value_is_still_an_entry(seeds_copy):
    catalog = seeds_copy / "catalog.yaml"
    edit(catalog, "    publisher: null\n", "    publisher: 5\n")
    assert problems(seeds_copy) == [
        ("catalog.yaml", line_of(catalog, "publisher: 5"),
         "source '000_e120aca91647fdde': publisher must be text or null")]


def test_every_problem_of_a_caveat_at_once_each_on_its_line(seeds_copy):
    caveats = seeds_copy / "caveats.yaml"
    edit(caveats, PTSD_HEAD, "  - id: investigational-ptsd\n    kind: legal\n    severity: ~\n"
                             "    scope: wide\n    author: me\n")
    edit(caveats, PTSD_RULES, "    applies_to: [ptsd]\n")
    name = "caveat 'investigational-ptsd'"
    assert problems(seeds_copy) == [
        ("caveats.yaml", line_of(caveats, "- id: investigational-ptsd"),
         f"{name}: unknown field(s) ['author']"),
        ("caveats.yaml", line_of(caveats, "kind: legal"), f"{name}: kind 'legal' is not one of "
         "['disclaimer', 'evidence', 'regulatory', 'safety', 'conflict', 'wording']"),
        ("caveats.yaml", line_of(caveats, "severity: ~"),
         f"{name}: severity None is not one of ['info', 'warning']"),
        ("caveats.yaml", line_of(caveats, "scope: wide"),
         f"{name}: scope must be 'snippet' or 'response'"),
        ("caveats.yaml", line_of(caveats, "applies_to: [ptsd]"),
         f"{name}: applies_to must be a mapping")]


def test_missing_caveat_fields_are_listed_in_name_order(seeds_copy):
    caveats = seeds_copy / "caveats.yaml"
    edit(caveats, PTSD_HEAD, "  - id: investigational-ptsd\n")
    assert problems(seeds_copy) == [
        ("caveats.yaml", line_of(caveats, "- id: investigational-ptsd"),
         "caveat 'investigational-ptsd': missing field(s) ['kind', 'severity']")]


def test_a_caveat_whose_only_rules_are_wrong_has_no_rules(seeds_copy):
    caveats = seeds_copy / "caveats.yaml"
    edit(caveats, "snippets: [001_38169ab113aa31ef-3488054e3355]", "snippets: one\n"
                                                                   "      keywords: [x]")
    name = "caveat 'conflict-non-invasive-option'"
    assert problems(seeds_copy) == [
        ("caveats.yaml", line_of(caveats, "snippets: one") - 1,  # the applies_to line
         f"{name}: applies_to has unknown key(s) ['keywords']"),
        ("caveats.yaml", line_of(caveats, "snippets: one"),
         f"{name}: applies_to.snippets must be a list of text"),
        ("caveats.yaml", line_of(caveats, "- id: conflict-non-invasive-option"),
         f"{name}: a snippet caveat needs at least one applies_to rule (or scope: response)")]


def test_a_caveat_with_an_unknown_condition_still_has_its_rule(seeds_copy):
    caveats = seeds_copy / "caveats.yaml"
    edit(caveats, "conditions: [ptsd]\n      context_patterns: ['\\b(?:vagus|VNS)\\b']",
         "conditions: [ptsd-typo]")
    assert problems(seeds_copy) == [
        ("caveats.yaml", line_of(caveats, "conditions: [ptsd-typo]"),
         "caveat 'investigational-ptsd': unknown condition 'ptsd-typo' (not in conditions.yaml)")]


def test_a_bad_synonym_group_is_named_by_its_number(seeds_copy):
    synonyms = seeds_copy / "synonyms.yaml"
    edit(synonyms, "  - [vagus, vagal]", "  - [vagus]")
    assert problems(seeds_copy) == [
        ("synonyms.yaml", line_of(synonyms, "groups:"),
         "group 3: needs a list of at least two phrases")]


def test_a_lay_term_needs_its_phrases_and_a_source(seeds_copy):
    terms = seeds_copy / "lay_terms.yaml"
    edit(terms, "    lay: [gadget]\n", "    lay: []\n")
    text = terms.read_text(encoding="utf-8")
    start = text.index("  - id: everybody")
    terms.write_text(text[:start] + "  - id: everybody\n    lay: [everybody]\n"
                     "    clinical: [everyone]\n", encoding="utf-8")
    found = problems(seeds_copy)
    assert [(name, reason) for name, _, reason in found] == [
        ("lay_terms.yaml", "term 'gadget': lay needs a list of phrases"),
        ("lay_terms.yaml", "term 'everybody': missing field(s) ['source']")]


def test_pages_are_checked_line_by_line(tmp_path, seeds_dir):
    good = {"id": "p1", "title": " ", "url": None, "publisher": 5, "license": None,
            "text": "Page one\n\nSome text.", "extra": "ignored"}
    lines = [good, {k: v for k, v in good.items() if k != "url"}, good | {"id": "a b"},
             good | {"id": "p2", "text": " "}, good]
    pages = tmp_path / "pages.jsonl"
    pages.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    assert problems(seeds_dir, pages=pages) == [
        ("pages.jsonl", 2, "missing field(s) ['url']"),
        ("pages.jsonl", 3, "id 'a b' is not a valid source id"),
        ("pages.jsonl", 4, "document is empty"),
        ("pages.jsonl", 5, "duplicate id 'p1' (first on line 1)")]
    pages.write_text(json.dumps(good) + "\n", encoding="utf-8")
    [page] = load(seeds_dir, pages=pages).sources
    assert (page.id, page.title, page.publisher, page.path) == ("p1", "p1", 5, f"{pages}:1")


def test_fields_say_what_a_value_must_be():
    schema = Schema.from_dict({"day": Date(), "name": Text(), "names": TextList(),
                               "kind": Choice(("a", "b"))})()
    assert schema.load({"day": dt.date(2026, 11, 21), "names": None}) == {
        "day": "2026-11-21", "names": ()}
    assert schema.load({"day": "2026-11-21"})["day"] == "2026-11-21"
    with pytest.raises(ValidationError) as raised:
        schema.load({"day": "21/11/2026", "name": "  ", "names": ["x", 5], "kind": ["a"]})
    assert raised.value.messages == {
        "day": ["day must be a date (YYYY-MM-DD)"], "name": ["name must be text"],
        "names": ["names must be a list of text"], "kind": ["kind ['a'] is not one of ['a', 'b']"]}
    with pytest.raises(ValidationError) as raised:
        schema.load({"kind": None})
    assert raised.value.messages == {"kind": ["kind None is not one of ['a', 'b']"]}


def test_locate_puts_each_message_on_its_key_line():
    data = yaml.load("a: 1\nb:\n  c: 2\nd: [x]\n", Loader=LineLoader)  # noqa: S506
    errors = {"a": ["bad a"], "b": {"c": ["bad c"], "_schema": ["bad b"]}, "e": ["no e"],
              "_schema": ["bad file"]}
    assert list(locate(errors, data, 1)) == [
        (1, "bad a"), (3, "bad c"), (2, "bad b"), (1, "no e"), (1, "bad file")]
