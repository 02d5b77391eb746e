"""The seed files as marshmallow schemas, one per kind of file.

A schema loads one entry: a catalog source, a condition, a caveat, a page (synonyms.yaml, whose
groups have nothing to name them by but their number, is loaded whole). One entry at a time, so
a bad entry leaves the others usable: a caveat naming a good condition is not reported because
another condition is broken. `EntrySchema.check` turns marshmallow's errors into problems on
the lines the YAML loader recorded; the reader adds the file and the entry's name.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validates_schema

from .caveat_rules import AppliesTo
from .seed_fields import Choice, Date, Identifier, SeedField, Text, TextList, one_line
from .seed_lines import SCHEMA, locate

CAVEAT_KINDS = ("disclaimer", "evidence", "regulatory", "safety", "conflict", "wording")
SEVERITIES = ("info", "warning")
SCOPES = ("snippet", "response")  # response: shown once per answer
CODE_SYSTEMS = ("icd10cm", "snomed")
SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DOCUMENT_EMPTY = "document is empty"
# What reads like a file of this repository (or the shared docs beside it) rather than the
# public source a clinician can check: a relative path, a project folder, a file name.
REPOSITORY_PATH = re.compile(
    r"\.\./|\b(?:seeds|shared|docs|index|service|tests|bench)/"
    r"|\b[\w-]+\.(?:md|ya?ml|txt|py|jsonl?|toml|cfg|ini|csv)\b", re.IGNORECASE)
MISSING = fields.Field.default_error_messages["required"]

Problem = tuple[int | None, str]  # (line, reason)


class EntrySchema(Schema):
    """One entry of a seed file. `identity` names the field an entry is known by."""

    class Meta:
        unknown = EXCLUDE  # check() reports unknown fields; the entry still loads

    error_messages = {"type": "expected a mapping"}
    identity: ClassVar[str] = "id"
    reports_unknown: ClassVar[bool] = True
    # Fields whose problems are about the entry as a whole: reported on its first line.
    entry_line_fields: ClassVar[frozenset[str]] = frozenset()

    def identify(self, entry: Mapping[str, Any]) -> Any:
        """The entry's identity; ValidationError when it is wrong or absent."""
        return self.fields[self.identity].deserialize(entry.get(self.identity))

    def complete(self, entry: Any) -> bool:
        """Whether `entry` is a mapping with every required field, whatever their values."""
        return isinstance(entry, Mapping) and all(
            name in entry for name, field in self.load_fields.items() if field.required)

    def unknown_message(self, names: list[str]) -> str:
        return f"unknown field(s) {names}"

    def missing_message(self, names: list[str]) -> str:
        return f"missing field(s) {names}"

    def check(self, entry: Any, line: int | None) -> tuple[dict[str, Any] | None, list[Problem]]:
        """The loaded entry and its problems, in field order after the unknown and the missing
        fields. The entry is None when it is wrong, but not for unknown fields, nor for a value
        that is partly right (one bad code list among good ones): the good part is loaded,
        without post_load, so that the rest of the entry is still used (a condition with a bad
        code still tags snippets, and caveats may name it)."""
        problems: list[Problem] = []
        if self.reports_unknown and isinstance(entry, Mapping):
            unknown = sorted(set(entry) - set(self.load_fields))
            if unknown:
                problems.append((line, self.unknown_message(unknown)))
        try:
            return self.load(entry), problems
        except ValidationError as exc:
            errors, loaded = exc.messages, self._partly_right(exc.messages, exc.valid_data)
        missing = [name for name, messages in errors.items() if messages == [MISSING]]
        if missing:
            problems.append((line, self.missing_message(missing)))
        for name, messages in errors.items():
            if name in missing:
                continue
            if name in self.entry_line_fields:
                found = [(line, message) for message in messages]
            else:
                found = list(locate({name: messages}, entry, line))
            # Fields may share a message ("terms and abbreviations must be ..."): say it once.
            problems += [problem for problem in found if problem not in problems]
        return loaded, problems

    def _partly_right(self, errors: dict[str, Any], loaded: Any) -> dict[str, Any] | None:
        """What loaded of a wrong entry, when every error is inside a value that loaded in part
        (marshmallow keeps such a value, the `valid_data` of its error, among the loaded)."""
        if SCHEMA in errors or not isinstance(loaded, dict):
            return None
        for name in errors:
            field = self.fields.get(name)
            if field is None or (field.attribute or name) not in loaded:
                return None
        return loaded


class SourceSchema(EntrySchema):
    """An entry of catalog.yaml, keyed by source id: every field given, null where unknown."""

    title = Text(required=True)
    publisher = Text(required=True, allow_none=True, blank=True, what="text or null")
    url = Text(required=True, allow_none=True, blank=True, what="text or null")
    retrieved = Date(required=True, allow_none=True, what="a date (YYYY-MM-DD) or null")
    license = Text(required=True, allow_none=True, blank=True, what="text or null")
    last_reviewed = Date(required=True, allow_none=True, what="a date (YYYY-MM-DD) or null")

    def missing_message(self, names: list[str]) -> str:
        return f"{super().missing_message(names)} (write null where the value is unknown)"


class CodeLists(SeedField):
    """`codes`: a list of quoted codes per code system, loaded with every system (empty ones
    too); stripped, so " 123 " is 123."""

    default_error_messages = {"invalid": "{name} must map a code system to a list of codes"}

    def __init__(self, **kwargs):
        super().__init__(load_default=self.no_codes, allow_none=True,
                         pre_load=lambda value: value or {}, **kwargs)

    @staticmethod
    def no_codes() -> dict[str, tuple[str, ...]]:
        return {system: () for system in CODE_SYSTEMS}

    def _deserialize(self, value: Any, attr, data, **kwargs) -> dict[str, tuple[str, ...]]:
        if not isinstance(value, Mapping):
            raise self.make_error("invalid", input=value)
        codes, errors = self.no_codes(), {}
        for system, values in value.items():
            if system not in CODE_SYSTEMS:
                errors[system] = [f"unknown code system {system!r} "
                                  f"(expected one of {list(CODE_SYSTEMS)})"]
                continue
            try:
                codes[system] = tuple(v.strip() for v in TextList().deserialize(values))
            except ValidationError:
                errors[system] = [f"{system} codes must be a list of quoted text"]
        if errors:
            raise ValidationError(errors, valid_data=codes)
        return codes


TERMS_ARE_TEXT = "terms and abbreviations must be lists of text"


class ConditionSchema(EntrySchema):
    """An entry of conditions.yaml: a vocabulary condition with the terms that tag it."""

    identity = "slug"
    entry_line_fields = frozenset({"label", "terms", "abbreviations"})

    slug = Identifier(SLUG, "condition slug {input!r} must be lowercase words joined by '-'",
                      required=True, absent_as_null=True)
    label = Text(required=True, absent_as_null=True, post_load=str.strip)
    terms = TextList(error_messages={"invalid": TERMS_ARE_TEXT})
    abbreviations = TextList(error_messages={"invalid": TERMS_ARE_TEXT})
    codes = CodeLists()

    @validates_schema(skip_on_field_errors=False)
    def _needs_a_term(self, data: dict[str, Any], **kwargs) -> None:
        if not data.get("terms", True) and not data.get("abbreviations", True):
            raise ValidationError("needs at least one term")


def _public_source(source: str) -> None:
    found = REPOSITORY_PATH.search(source)
    if found:
        raise ValidationError(f"source must name the public source itself (organisation, page "
                              f"title, URL or PMC id), not a file of this repository "
                              f"({found.group(0)!r})")


class CaveatSchema(EntrySchema):
    """An entry of caveats.yaml. `conditions` are the vocabulary's slugs, which condition
    rules must name (None: the vocabulary is unreadable, and its own problem says so)."""

    id = Identifier(SLUG, "caveat id {input!r} must be lowercase words joined by '-'",
                    required=True, absent_as_null=True)
    kind = Choice(CAVEAT_KINDS, required=True)
    severity = Choice(SEVERITIES, required=True)
    scope = Choice(SCOPES, load_default="snippet",
                   error_messages={"invalid": "scope must be 'snippet' or 'response'"})
    text = Text(required=True, post_load=one_line)
    source = Text(required=True, post_load=one_line, validate=_public_source)
    plain_text = Text(load_default=None, what="text or absent", post_load=one_line)
    last_reviewed = Date(required=True)
    applies_to = AppliesTo(attribute="rules")

    def __init__(self, conditions: Collection[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.conditions = conditions

    def missing_message(self, names: list[str]) -> str:
        return super().missing_message(sorted(names))

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _check_rules(self, data: dict[str, Any], original: Mapping[str, Any], **kwargs) -> None:
        """Each rule's own checks (conditions in the vocabulary, patterns that compile), and
        that a snippet caveat has a rule."""
        # `rules` holds the rules that parsed, even when others did not (see AppliesTo).
        rules = data.get("rules", ())
        errors: dict[str, Any] = {}
        for rule in rules:
            if problems := rule.validate(self.conditions):
                errors.setdefault("applies_to", {})[rule.key] = problems
        # An applies_to that is not a mapping has its own problem: it is not "no rules".
        if (data.get("scope") == "snippet" and not rules
                and isinstance(original.get("applies_to") or {}, Mapping)):
            errors[SCHEMA] = ["a snippet caveat needs at least one applies_to rule "
                              "(or scope: response)"]
        if errors:
            raise ValidationError(errors)


class PhraseGroup(TextList):
    """A synonyms group: at least two phrases, each with its whitespace runs as one space."""

    default_error_messages = {"invalid": "needs a list of at least two phrases"}

    def accepts(self, value: Any) -> bool:
        return super().accepts(value) and len(value) >= 2

    def convert(self, value: list[str]) -> list[str]:
        return [one_line(phrase) for phrase in value]


class SynonymsSchema(Schema):
    """synonyms.yaml: curated groups of phrases that a query expands to each other."""

    class Meta:
        unknown = EXCLUDE

    groups = fields.List(PhraseGroup(), required=True)


class PhraseList(SeedField):
    """One or more phrases, each with its whitespace runs as one space."""

    default_error_messages = {"invalid": "{name} needs a list of phrases"}

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, list) and len(value) >= 1
                and all(isinstance(v, str) and v.strip() for v in value))

    def convert(self, value: list[str]) -> list[str]:
        return [one_line(phrase) for phrase in value]


class LayTermSchema(EntrySchema):
    """An entry of lay_terms.yaml: everyday phrases a query widens to clinical ones, and the
    public source that uses both for the same thing."""

    id = Identifier(SLUG, "term id {input!r} must be lowercase words joined by '-'",
                    required=True)
    lay = PhraseList(required=True)
    clinical = PhraseList(required=True)
    source = Text(required=True)

    @post_load
    def one_line_source(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        data["source"] = one_line(data["source"])
        return data


STRINGS = "title and text must be strings"


def not_empty(document: str) -> None:
    if not document.strip():
        raise ValidationError(DOCUMENT_EMPTY)


class PageSchema(EntrySchema):
    """A line of a pages JSONL file: one document. Other fields are ignored."""

    reports_unknown = False

    id = Identifier(SOURCE_ID, "id {input!r} is not a valid source id", required=True)
    title = Text(required=True, blank=True, error_messages={"invalid": STRINGS})
    url = fields.Raw(required=True, allow_none=True)
    publisher = fields.Raw(required=True, allow_none=True)
    license = fields.Raw(required=True, allow_none=True)
    text = Text(required=True, blank=True, validate=not_empty,
                error_messages={"invalid": STRINGS})

    @post_load
    def _title_or_id(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        data["title"] = data["title"].strip() or data["id"]
        return data
