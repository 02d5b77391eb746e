"""The kinds of `applies_to` rule a snippet caveat may have, and matching them at build time.

Each kind is one class, registered with @rule_kind under its key in applies_to; adding a kind
is adding a class. Values within `conditions`, `sources`, `snippets` and `patterns` are
alternatives (any may match); every one of `context_patterns` must be found; and the kinds
given must all match. So ``conditions: [fibromyalgia], context_patterns: ['\\bVNS\\b']`` means
"mentions fibromyalgia and VNS": a caveat about VNS stays off pages that never mention it.
Caveats are attached when the index is built, so serving does no rule matching.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from marshmallow import ValidationError, fields

from .seed_fields import TextList
from .seed_lines import SCHEMA

if TYPE_CHECKING:
    from .seeds import Caveat


class Snippet:
    """What rules look at in one snippet. `found` searches a regex once per snippet, for the
    context patterns that many caveats share."""

    __slots__ = ("id", "source_id", "conditions", "text", "_found")

    def __init__(self, id: str, source_id: str, conditions: Collection[str], text: str):
        self.id, self.source_id, self.conditions, self.text = id, source_id, conditions, text
        self._found: dict[re.Pattern[str], bool] = {}

    def found(self, regex: re.Pattern[str]) -> bool:
        if regex not in self._found:
            self._found[regex] = regex.search(self.text) is not None
        return self._found[regex]


@dataclass(frozen=True)
class Rule:
    """One applies_to entry: the values given under `key`, and what they ask of a snippet."""

    key: ClassVar[str]
    values: tuple[str, ...]

    @classmethod
    def parse(cls, raw: Any) -> Rule:
        """The rule from its YAML value (a list of text; null is empty); ValidationError when
        the value is not one."""
        message = f"applies_to.{cls.key} must be a list of text"
        return cls(TextList(error_messages={"invalid": message}).deserialize(raw))

    def validate(self, conditions: Collection[str] | None) -> list[str]:
        """Problems with the values; `conditions` are the vocabulary's slugs (None when the
        vocabulary could not be read)."""
        return []

    def matches(self, snippet: Snippet) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        """What the rule asks, completing "Attaches to snippets ..."."""
        raise NotImplementedError

    @cached_property
    def wanted(self) -> frozenset[str]:
        return frozenset(self.values)

    def listed(self, one: str, many: str, values: Iterable[str] | None = None) -> str:
        """`one` and the value, or `many` and the values (`values`: as shown, if not as given)."""
        values = list(self.values if values is None else values)
        return f"{one} {values[0]}" if len(values) == 1 else f"{many} {', '.join(values)}"


RULE_KINDS: dict[str, type[Rule]] = {}  # by key, in the order the catalogue lists them


def rule_kind(cls: type[Rule]) -> type[Rule]:
    RULE_KINDS[cls.key] = cls
    return cls


@rule_kind
class ConditionRule(Rule):
    key = "conditions"

    def validate(self, conditions: Collection[str] | None) -> list[str]:
        if conditions is None:
            return []
        return [f"unknown condition {slug!r} (not in conditions.yaml)"
                for slug in self.values if slug not in conditions]

    def matches(self, snippet: Snippet) -> bool:
        return not self.wanted.isdisjoint(snippet.conditions)

    def describe(self) -> str:
        return self.listed("tagged with the condition", "tagged with one of the conditions")


@rule_kind
class SourceRule(Rule):
    key = "sources"

    def matches(self, snippet: Snippet) -> bool:
        return snippet.source_id in self.wanted

    def describe(self) -> str:
        return self.listed("from the source", "from one of the sources")


@rule_kind
class SnippetRule(Rule):
    key = "snippets"

    def matches(self, snippet: Snippet) -> bool:
        return snippet.id in self.wanted

    def describe(self) -> str:
        return self.listed("with the id", "with one of the ids")


@rule_kind
class PatternRule(Rule):
    """Case-insensitive regular expressions searched in the snippet text; any may match."""

    key = "patterns"

    def validate(self, conditions: Collection[str] | None) -> list[str]:
        problems = []
        for pattern in self.values:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"pattern {pattern!r} is not a valid regular expression: {exc}")
        return problems

    @cached_property
    def regex(self) -> re.Pattern[str]:
        # The alternatives as one regex: one scan of the text instead of one each.
        return re.compile("|".join(f"(?:{p})" for p in self.values), re.IGNORECASE)

    def matches(self, snippet: Snippet) -> bool:
        return self.regex.search(snippet.text) is not None

    def describe(self) -> str:
        return self.listed("whose text matches", "whose text matches one of",
                           (f"/{p}/i" for p in self.values))


@rule_kind
class ContextPatternRule(PatternRule):
    """Like patterns, but every one must be found."""

    key = "context_patterns"

    @cached_property
    def regexes(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in self.values)

    def matches(self, snippet: Snippet) -> bool:
        return all(snippet.found(regex) for regex in self.regexes)

    def describe(self) -> str:
        return self.listed("whose text matches", "whose text matches each of",
                           (f"/{p}/i" for p in self.values))


class AppliesTo(fields.Raw):
    """A caveat's applies_to mapping, loaded as the rules given (in RULE_KINDS order); null or
    empty is no rules. When some rules are wrong, the error carries the good ones, so the
    caveat is not also reported as having none."""

    def __init__(self, **kwargs):
        super().__init__(load_default=(), allow_none=True, pre_load=lambda value: value or {},
                         **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> tuple[Rule, ...]:
        if not isinstance(value, Mapping):
            raise ValidationError("applies_to must be a mapping")
        errors: dict[str, Any] = {}
        unknown = sorted(set(value) - set(RULE_KINDS))
        if unknown:
            errors[SCHEMA] = [f"applies_to has unknown key(s) {unknown}"]
        rules = []
        for key, kind in RULE_KINDS.items():
            try:
                rule = kind.parse(value.get(key))
            except ValidationError as exc:
                errors[key] = exc.messages
                continue
            if rule.values:
                rules.append(rule)
        if errors:
            raise ValidationError(errors, valid_data=tuple(rules))
        return tuple(rules)


def describe(scope: str, rules: Iterable[Rule]) -> str:
    """Where a caveat attaches, as one sentence."""
    if scope == "response":
        return "Shown once per answer, not attached to snippets."
    return f"Attaches to snippets {' and '.join(rule.describe() for rule in rules)}."


class CaveatMatcher:
    def __init__(self, caveats: Iterable[Caveat]):
        self._rules = [(c.id, c.rules) for c in caveats if c.scope == "snippet"]

    def match(self, snippet_id: str, source_id: str, conditions: Iterable[str],
              text: str) -> list[str]:
        """Ids of the caveats that apply, in catalogue order."""
        snippet = Snippet(snippet_id, source_id, set(conditions), text)
        found = []
        for cid, rules in self._rules:
            for rule in rules:  # a loop, not all(): this runs for every rule of every snippet
                if not rule.matches(snippet):
                    break
            else:
                found.append(cid)
        return found
