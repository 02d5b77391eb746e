"""Caveat rule kinds: parsing, validating, matching and describing each one, and the registry."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from index.caveat_rules import (
    RULE_KINDS,
    CaveatMatcher,
    ConditionRule,
    ContextPatternRule,
    PatternRule,
    Rule,
    Snippet,
    SnippetRule,
    SourceRule,
)
from index.seeds import load
from service.schemas import CaveatRulesSchema


def snippet(text="", conditions=(), id="s1-abc", source_id="s1") -> Snippet:
    return Snippet(id, source_id, set(conditions), text)


def test_kinds_are_registered_in_catalogue_order():
    assert list(RULE_KINDS) == ["conditions", "sources", "snippets", "patterns",
                                "context_patterns"]
    assert set(RULE_KINDS) == set(CaveatRulesSchema().fields), "the API lists every kind"


@pytest.mark.parametrize("kind", list(RULE_KINDS.values()), ids=list(RULE_KINDS))
def test_every_kind_parses_a_list_of_text_and_nothing_else(kind):
    assert kind.parse(["a", "b"]).values == ("a", "b")
    assert kind.parse(None).values == ()
    for wrong in ("a", ["a", 5], ["a", "  "], {"a": 1}):
        with pytest.raises(ValidationError) as raised:
            kind.parse(wrong)
        assert raised.value.messages == [f"applies_to.{kind.key} must be a list of text"]


def test_condition_rule_names_only_vocabulary_conditions():
    rule = ConditionRule(("ptsd", "ptsd-typo", "ptsd-typo"))
    assert rule.validate({"ptsd"}) == [
        "unknown condition 'ptsd-typo' (not in conditions.yaml)"] * 2
    assert rule.validate(None) == [], "no vocabulary to check against"


@pytest.mark.parametrize("kind", [PatternRule, ContextPatternRule])
def test_pattern_rules_must_compile(kind):
    [problem] = kind(("ok", "(unclosed")).validate(set())
    assert problem.startswith("pattern '(unclosed' is not a valid regular expression: missing )")


def test_matching_each_kind():
    text = "VNS may help with Fibromyalgia."
    assert ConditionRule(("ptsd", "fibromyalgia")).matches(snippet(conditions={"fibromyalgia"}))
    assert not ConditionRule(("ptsd",)).matches(snippet(conditions={"fibromyalgia"}))
    assert SourceRule(("s0", "s1")).matches(snippet())
    assert not SourceRule(("s0",)).matches(snippet())
    assert SnippetRule(("s1-abc",)).matches(snippet())
    assert not SnippetRule(("s1-xyz",)).matches(snippet())
    # patterns: any one, ignoring case; context patterns: every one.
    assert PatternRule((r"\bnope\b", r"\bfibromyalgia\b")).matches(snippet(text))
    assert not PatternRule((r"\bnope\b",)).matches(snippet(text))
    assert ContextPatternRule((r"\bvns\b", "help")).matches(snippet(text))
    assert not ContextPatternRule((r"\bvns\b", "nope")).matches(snippet(text))


def test_matcher_needs_every_rule_of_a_caveat(seeds):
    matcher = CaveatMatcher(seeds.caveats)
    about_vns = "Vagus nerve stimulation is not for fibromyalgia."
    assert "investigational-fibromyalgia" in matcher.match(
        "x-1", "x", ["fibromyalgia"], about_vns)
    assert "investigational-fibromyalgia" not in matcher.match(
        "x-1", "x", ["fibromyalgia"], "Exercise helps with fibromyalgia.")
    assert "investigational-fibromyalgia" not in matcher.match("x-1", "x", [], about_vns)
    assert "general-disclaimer" not in matcher.match("x-1", "x", [], about_vns), \
        "response caveats attach to no snippet"


def test_describe_says_where_each_caveat_attaches(seeds):
    described = {c.id: c.describe() for c in seeds.caveats}
    assert described["general-disclaimer"] == "Shown once per answer, not attached to snippets."
    assert described["investigational-fibromyalgia"] == (
        "Attaches to snippets tagged with the condition fibromyalgia and whose text matches "
        r"/\b(?:vagus|VNS)\b/i.")
    assert described["conflict-non-invasive-option"] == (
        "Attaches to snippets with the id 001_38169ab113aa31ef-3488054e3355.")
    assert described["evidence-anecdotal"].startswith(
        r"Attaches to snippets whose text matches one of /\bpatient testimonials?\b/i, ")
    assert SourceRule(("a", "b")).describe() == "from one of the sources a, b"


def test_public_rules_list_every_kind_given_or_not(seeds):
    [caveat] = [c for c in seeds.caveats if c.id == "wording-minimally-invasive"]
    assert caveat.public()["applies_to"] == {
        "conditions": [], "sources": [], "snippets": [],
        "patterns": [r"\bminimally invasive\b"], "context_patterns": [r"\b(?:vagus|VNS)\b"]}
    assert caveat.context_patterns == (r"\b(?:vagus|VNS)\b",)


class NotFromSourceRule(Rule):
    """A kind the catalogue does not have, to show that a class is all a new kind needs."""

    key = "not_sources"

    def matches(self, snippet: Snippet) -> bool:
        return snippet.source_id not in self.wanted

    def describe(self) -> str:
        return self.listed("not from the source", "not from any of the sources")


def test_a_new_kind_is_one_registered_class(monkeypatch, seeds_copy):
    monkeypatch.setitem(RULE_KINDS, NotFromSourceRule.key, NotFromSourceRule)
    caveats = seeds_copy / "caveats.yaml"
    caveats.write_text(caveats.read_text(encoding="utf-8").replace(
        "      snippets: [001_38169ab113aa31ef-3488054e3355]\n",
        "      not_sources: [001_38169ab113aa31ef]\n"), encoding="utf-8")
    [caveat] = [c for c in load(seeds_copy).caveats if c.id == "conflict-non-invasive-option"]
    assert caveat.public()["applies_to"]["not_sources"] == ["001_38169ab113aa31ef"]
    assert caveat.describe() == "Attaches to snippets not from the source 001_38169ab113aa31ef."
    matcher = CaveatMatcher([caveat])
    assert matcher.match("a-1", "000_e120aca91647fdde", [], "text") == [caveat.id]
    assert matcher.match("a-1", "001_38169ab113aa31ef", [], "text") == []
