"""Read and validate everything under seeds/ (or a pages JSONL file).

Nothing here writes anything. Every problem found is collected with its file, line and reason,
and raised together as one SeedError, so an editor sees all mistakes in one run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from . import caveat_rules
from .caveat_rules import RULE_KINDS, Rule
from .errors import SeedError, SeedProblem
from .seed_lines import LineLoader, line_of

CAVEAT_KINDS = ("disclaimer", "evidence", "regulatory", "safety", "conflict", "wording")
SEVERITIES = ("info", "warning")
CODE_SYSTEMS = ("icd10cm", "snomed")
_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_SOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PAGE_FIELDS = ("id", "title", "url", "publisher", "license", "text")


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    publisher: str | None
    url: str | None
    retrieved: str | None
    license: str | None
    last_reviewed: str | None
    text: str
    path: str


@dataclass(frozen=True)
class Condition:
    slug: str
    label: str
    terms: tuple[str, ...]
    abbreviations: tuple[str, ...]
    codes: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Caveat:
    id: str
    kind: str
    severity: str
    scope: str  # "response" (shown once per answer) or "snippet"
    text: str
    plain_text: str | None
    source: str
    last_reviewed: str
    rules: tuple[Rule, ...] = ()  # the applies_to rules given, in caveat_rules.RULE_KINDS order
    line: int | None = None

    def values(self, key: str) -> tuple[str, ...]:
        """The values of the applies_to rule under `key`; empty when it is not given."""
        return next((rule.values for rule in self.rules if rule.key == key), ())

    conditions = property(lambda self: self.values("conditions"))
    sources = property(lambda self: self.values("sources"))
    snippets = property(lambda self: self.values("snippets"))
    patterns = property(lambda self: self.values("patterns"))
    context_patterns = property(lambda self: self.values("context_patterns"))

    def describe(self) -> str:
        """Where the caveat attaches, as a sentence for reviewers."""
        return caveat_rules.describe(self.scope, self.rules)

    def public(self) -> dict[str, Any]:
        """The catalogue entry as the API shows it, rules included so reviewers can audit them."""
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "scope": self.scope,
            "text": self.text,
            "plain_text": self.plain_text,
            "source": self.source,
            "last_reviewed": self.last_reviewed,
            "applies_to": {key: list(self.values(key)) for key in RULE_KINDS},
        }


@dataclass
class Seeds:
    sources: list[Source]
    conditions: list[Condition]
    caveats: list[Caveat]
    vocabulary_meta: dict[str, Any] = field(default_factory=dict)
    input_digest: str = ""
    caveats_path: str = "caveats.yaml"
    synonyms: list[list[str]] = field(default_factory=list)


class _Reader:
    """Collects problems while reading one directory of seeds."""

    def __init__(self) -> None:
        self.problems: list[SeedProblem] = []
        self.digest = hashlib.sha256()

    def problem(self, path: Path | str, line: int | None, reason: str) -> None:
        self.problems.append(SeedProblem(str(path), line, reason))

    def read_text(self, path: Path) -> str | None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.problem(path, None, f"cannot read file: {exc.strerror or exc}")
            return None
        self.digest.update(path.name.encode() + b"\0" + data + b"\0")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            self.problem(path, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
                                     f"{exc.start}); save the file as UTF-8")
            return None

    def read_yaml(self, path: Path) -> Any:
        text = self.read_text(path)
        if text is None:
            return None
        try:
            return yaml.load(text, Loader=LineLoader)  # noqa: S506 - SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            self.problem(path, line, f"invalid YAML: {exc.problem or exc.context}")
        except yaml.YAMLError as exc:
            self.problem(path, None, f"invalid YAML: {exc}")
        return None

    def read_mapping(self, path: Path, key: str, kind: type) -> dict[str, Any] | None:
        """The file's top-level mapping when its `key` holds a `kind` (list or dict); None when
        the file could not be read or is not shaped so (a problem says which)."""
        data = self.read_yaml(path)
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get(key), kind):
            shape = "list" if kind is list else "mapping"
            self.problem(path, line_of(data), f"expected a mapping with a '{key}' {shape}")
            return None
        return data


def _date_or_null(value: Any) -> tuple[bool, str | None]:
    if value is None:
        return True, None
    if isinstance(value, dt.date):
        return True, value.isoformat()
    if isinstance(value, str):
        try:
            return True, dt.date.fromisoformat(value).isoformat()
        except ValueError:
            return False, None
    return False, None


def _str_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return list(value)
    return None


# -- catalog ------------------------------------------------------------------------------

_CATALOG_FIELDS = ("title", "publisher", "url", "retrieved", "license", "last_reviewed")


def _read_catalog(reader: _Reader, path: Path) -> dict[str, dict[str, Any]] | None:
    """The catalog entries by source id, or None when the file itself could not be read."""
    data = reader.read_mapping(path, "sources", dict)
    if data is None:
        return None
    entries: dict[str, dict[str, Any]] = {}
    for source_id, entry in data["sources"].items():
        line = line_of(data["sources"], source_id)
        if not isinstance(entry, dict):
            reader.problem(path, line, f"source {source_id!r}: expected a mapping")
            continue
        unknown = sorted(set(entry) - set(_CATALOG_FIELDS))
        missing = [f for f in _CATALOG_FIELDS if f not in entry]
        if unknown:
            reader.problem(path, line, f"source {source_id!r}: unknown field(s) {unknown}")
        if missing:
            reader.problem(path, line, f"source {source_id!r}: missing field(s) {missing} "
                                       "(write null where the value is unknown)")
            continue
        if not isinstance(entry["title"], str) or not entry["title"].strip():
            reader.problem(path, line_of(entry, "title"),
                           f"source {source_id!r}: title must be text")
        for name in ("publisher", "url", "license"):
            if entry[name] is not None and not isinstance(entry[name], str):
                reader.problem(path, line_of(entry, name),
                               f"source {source_id!r}: {name} must be text or null")
        record = {name: entry[name] for name in ("title", "publisher", "url", "license")}
        for name in ("retrieved", "last_reviewed"):
            ok, value = _date_or_null(entry[name])
            if not ok:
                reader.problem(path, line_of(entry, name),
                               f"source {source_id!r}: {name} must be a date (YYYY-MM-DD) or null")
            record[name] = value
        record["line"] = line
        entries[str(source_id)] = record
    return entries


# -- conditions -----------------------------------------------------------------------------

def _read_conditions(reader: _Reader,
                     path: Path) -> tuple[list[Condition] | None, dict[str, Any]]:
    """The vocabulary (None when the file itself could not be read) and its metadata."""
    data = reader.read_mapping(path, "conditions", list)
    if data is None:
        return None, {}
    meta = {k: v for k, v in data.items() if k != "conditions"}
    if isinstance(meta.get("codes_last_checked"), dt.date):
        meta["codes_last_checked"] = meta["codes_last_checked"].isoformat()
    conditions: list[Condition] = []
    seen: dict[str, int | None] = {}
    for entry in data["conditions"]:
        line = line_of(entry)
        if not isinstance(entry, dict):
            reader.problem(path, line, "each condition must be a mapping")
            continue
        slug = entry.get("slug")
        if not isinstance(slug, str) or not _SLUG.match(slug):
            reader.problem(path, line_of(entry, "slug"),
                           f"condition slug {slug!r} must be lowercase words joined by '-'")
            continue
        if slug in seen:
            reader.problem(path, line, f"duplicate condition slug {slug!r} "
                                       f"(first defined on line {seen[slug]})")
            continue
        seen[slug] = line
        unknown = sorted(set(entry) - {"slug", "label", "terms", "abbreviations", "codes"})
        if unknown:
            reader.problem(path, line, f"condition {slug!r}: unknown field(s) {unknown}")
        label = entry.get("label")
        if not isinstance(label, str) or not label.strip():
            reader.problem(path, line, f"condition {slug!r}: label must be text")
            continue
        terms = _str_list(entry.get("terms"))
        abbreviations = _str_list(entry.get("abbreviations"))
        if terms is None or abbreviations is None:
            reader.problem(path, line, f"condition {slug!r}: terms and abbreviations must be "
                                       "lists of text")
            continue
        if not terms and not abbreviations:
            reader.problem(path, line, f"condition {slug!r}: needs at least one term")
            continue
        codes_in = entry.get("codes") or {}
        codes: dict[str, tuple[str, ...]] = {}
        if not isinstance(codes_in, dict):
            reader.problem(path, line_of(entry, "codes"), f"condition {slug!r}: codes must map a "
                                                        f"code system to a list of codes")
            continue
        for system, values in codes_in.items():
            if system not in CODE_SYSTEMS:
                reader.problem(path, line_of(codes_in, system),
                               f"condition {slug!r}: unknown code system {system!r} "
                               f"(expected one of {list(CODE_SYSTEMS)})")
                continue
            values = _str_list(values)
            if values is None:
                reader.problem(path, line_of(codes_in, system),
                               f"condition {slug!r}: {system} codes must be a list of quoted text")
                continue
            codes[system] = tuple(v.strip() for v in values)
        conditions.append(Condition(slug, label.strip(), tuple(terms), tuple(abbreviations),
                                    {s: codes.get(s, ()) for s in CODE_SYSTEMS}))
    return conditions, meta


# -- caveats --------------------------------------------------------------------------------

_CAVEAT_FIELDS = {"id", "kind", "severity", "scope", "text", "plain_text", "source",
                  "last_reviewed", "applies_to"}


def _read_caveats(reader: _Reader, path: Path, slugs: set[str] | None) -> list[Caveat]:
    """The catalogue; condition slugs are checked against `slugs` unless that is None (the
    vocabulary was unreadable, and its own error says so)."""
    data = reader.read_mapping(path, "caveats", list)
    if data is None:
        return []
    caveats: list[Caveat] = []
    seen: dict[str, int | None] = {}
    for entry in data["caveats"]:
        line = line_of(entry)
        if not isinstance(entry, dict):
            reader.problem(path, line, "each caveat must be a mapping")
            continue
        cid = entry.get("id")
        if not isinstance(cid, str) or not _SLUG.match(cid):
            reader.problem(path, line_of(entry, "id"),
                           f"caveat id {cid!r} must be lowercase words joined by '-'")
            continue
        if cid in seen:
            reader.problem(path, line, f"duplicate caveat id {cid!r} "
                                       f"(first defined on line {seen[cid]})")
            continue
        seen[cid] = line
        before = len(reader.problems)
        unknown = sorted(set(entry) - _CAVEAT_FIELDS)
        if unknown:
            reader.problem(path, line, f"caveat {cid!r}: unknown field(s) {unknown}")
        missing = sorted({"kind", "severity", "text", "source", "last_reviewed"} - set(entry))
        if missing:
            reader.problem(path, line, f"caveat {cid!r}: missing field(s) {missing}")
            continue
        if entry["kind"] not in CAVEAT_KINDS:
            reader.problem(path, line_of(entry, "kind"), f"caveat {cid!r}: kind {entry['kind']!r} "
                                                       f"is not one of {list(CAVEAT_KINDS)}")
        if entry["severity"] not in SEVERITIES:
            reader.problem(path, line_of(entry, "severity"),
                           f"caveat {cid!r}: severity {entry['severity']!r} is not one of "
                           f"{list(SEVERITIES)}")
        scope = entry.get("scope", "snippet")
        if scope not in ("snippet", "response"):
            reader.problem(path, line_of(entry, "scope"),
                           f"caveat {cid!r}: scope must be 'snippet' or 'response'")
        for name in ("text", "source"):
            if not isinstance(entry[name], str) or not entry[name].strip():
                reader.problem(path, line_of(entry, name), f"caveat {cid!r}: {name} must be text")
        plain = entry.get("plain_text")
        if plain is not None and (not isinstance(plain, str) or not plain.strip()):
            reader.problem(path, line_of(entry, "plain_text"),
                           f"caveat {cid!r}: plain_text must be text or absent")
        ok, reviewed = _date_or_null(entry["last_reviewed"])
        if not ok or reviewed is None:
            reader.problem(path, line_of(entry, "last_reviewed"),
                           f"caveat {cid!r}: last_reviewed must be a date (YYYY-MM-DD)")
        rules = entry.get("applies_to") or {}
        rule_line = line_of(entry, "applies_to")
        if not isinstance(rules, dict):
            reader.problem(path, rule_line, f"caveat {cid!r}: applies_to must be a mapping")
            continue
        unknown = sorted(set(rules) - set(RULE_KINDS))
        if unknown:
            reader.problem(path, rule_line, f"caveat {cid!r}: applies_to has unknown key(s) "
                                            f"{unknown}")
        parsed: list[Rule] = []
        for key, kind in RULE_KINDS.items():
            try:
                rule = kind.parse(rules.get(key))
            except ValidationError as exc:
                reader.problem(path, line_of(rules, key), f"caveat {cid!r}: {exc.messages[0]}")
                continue
            if rule.values:
                parsed.append(rule)
        for rule in parsed:
            for reason in rule.validate(slugs):
                reader.problem(path, line_of(rules, rule.key), f"caveat {cid!r}: {reason}")
        if scope == "snippet" and not parsed:
            reader.problem(path, line, f"caveat {cid!r}: a snippet caveat needs at least one "
                                       "applies_to rule (or scope: response)")
        if len(reader.problems) > before:
            continue
        caveats.append(Caveat(
            id=cid, kind=entry["kind"], severity=entry["severity"], scope=scope,
            text=" ".join(entry["text"].split()),
            plain_text=" ".join(plain.split()) if plain else None,
            source=" ".join(entry["source"].split()), last_reviewed=reviewed,
            rules=tuple(parsed), line=line,
        ))
    return caveats


# -- synonyms -------------------------------------------------------------------------------

def _read_synonyms(reader: _Reader, path: Path) -> list[list[str]]:
    """Curated expansion groups; the file is optional (the vocabulary expands on its own)."""
    if not path.exists():
        return []
    data = reader.read_mapping(path, "groups", list)
    if data is None:
        return []
    groups = []
    for number, group in enumerate(data["groups"], start=1):
        phrases = _str_list(group) if isinstance(group, list) else None
        if phrases is None or len(phrases) < 2:
            reader.problem(path, line_of(data, "groups"),
                           f"group {number}: needs a list of at least two phrases")
            continue
        groups.append([" ".join(p.split()) for p in phrases])
    return groups


# -- documents ------------------------------------------------------------------------------

def _check_document(reader: _Reader, path: Path | str, line: int | None, text: str) -> bool:
    if not text.strip():
        reader.problem(path, line, "document is empty")
        return False
    return True


def _read_articles(reader: _Reader, seeds_dir: Path, catalog: dict[str, dict[str, Any]] | None,
                   catalog_path: Path) -> list[Source]:
    """The articles, each joined with its catalog entry. With no readable catalog, articles are
    still checked (UTF-8, not empty) but not reported as missing from it: one error, not six."""
    sources: list[Source] = []
    files = sorted(seeds_dir.glob("*.txt"))
    if not files:
        reader.problem(seeds_dir, None, "no articles (*.txt) found")
    for path in files:
        source_id = path.stem
        if not _SOURCE_ID.match(source_id):
            reader.problem(path, None, f"file name {path.name!r} does not make a valid source id")
            continue
        text = reader.read_text(path)
        if text is None or not _check_document(reader, path, None, text):
            continue
        if catalog is None:
            continue
        meta = catalog.get(source_id)
        if meta is None:
            reader.problem(catalog_path, None, f"no entry for source {source_id!r} ({path.name})")
            continue
        sources.append(Source(source_id, meta["title"], meta["publisher"], meta["url"],
                              meta["retrieved"], meta["license"], meta["last_reviewed"], text,
                              str(path)))
    stems = {p.stem for p in files}
    for source_id, meta in (catalog or {}).items():
        if source_id not in stems:
            reader.problem(catalog_path, meta["line"],
                           f"source {source_id!r} has no article file {source_id}.txt")
    return sources


def read_pages(reader: _Reader, pages_path: Path, limit: int | None = None) -> list[Source]:
    """Read documents from a JSONL file with the fields id, title, url, publisher, license, text."""
    sources: list[Source] = []
    seen: dict[str, int] = {}
    try:
        handle = pages_path.open("rb")
    except OSError as exc:
        reader.problem(pages_path, None, f"cannot read file: {exc.strerror or exc}")
        return sources
    with handle:
        for number, raw in enumerate(handle, start=1):
            if limit is not None and len(sources) >= limit:
                break
            reader.digest.update(raw)
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                reader.problem(pages_path, number, "not valid UTF-8")
                continue
            except json.JSONDecodeError as exc:
                reader.problem(pages_path, number, f"invalid JSON: {exc.msg}")
                continue
            if not isinstance(record, dict):
                reader.problem(pages_path, number, "expected a JSON object")
                continue
            missing = [f for f in PAGE_FIELDS if f not in record]
            if missing:
                reader.problem(pages_path, number, f"missing field(s) {missing}")
                continue
            page_id, title, text = record["id"], record["title"], record["text"]
            if not isinstance(page_id, str) or not _SOURCE_ID.match(page_id):
                reader.problem(pages_path, number, f"id {page_id!r} is not a valid source id")
                continue
            if page_id in seen:
                reader.problem(pages_path, number, f"duplicate id {page_id!r} "
                                                   f"(first on line {seen[page_id]})")
                continue
            seen[page_id] = number
            if not isinstance(title, str) or not isinstance(text, str):
                reader.problem(pages_path, number, "title and text must be strings")
                continue
            if not _check_document(reader, pages_path, number, text):
                continue
            sources.append(Source(page_id, title.strip() or page_id, record.get("publisher"),
                                  record.get("url"), None, record.get("license"), None, text,
                                  f"{pages_path}:{number}"))
    return sources


def load(seeds_dir: Path | str, pages: Path | str | None = None,
         pages_limit: int | None = None) -> Seeds:
    """Read and validate the seeds; with `pages`, the documents come from that JSONL file.

    The vocabulary and caveat catalogue always come from `seeds_dir`.
    Raises SeedError listing every problem found.
    """
    seeds_dir = Path(seeds_dir)
    reader = _Reader()
    if not seeds_dir.is_dir():
        raise SeedError([SeedProblem(str(seeds_dir), None, "seeds directory not found")])
    conditions, meta = _read_conditions(reader, seeds_dir / "conditions.yaml")
    slugs = None if conditions is None else {c.slug for c in conditions}
    caveats = _read_caveats(reader, seeds_dir / "caveats.yaml", slugs)
    synonyms = _read_synonyms(reader, seeds_dir / "synonyms.yaml")
    if pages is None:
        catalog_path = seeds_dir / "catalog.yaml"
        catalog = _read_catalog(reader, catalog_path)
        sources = _read_articles(reader, seeds_dir, catalog, catalog_path)
    else:
        sources = read_pages(reader, Path(pages), pages_limit)
        if not sources and not reader.problems:
            reader.problem(pages, None, "no documents found")
    if reader.problems:
        raise SeedError(reader.problems)
    return Seeds(sources, conditions or [], caveats, meta, reader.digest.hexdigest(),
                 str(seeds_dir / "caveats.yaml"), synonyms)
