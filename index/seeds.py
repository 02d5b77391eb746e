"""Read and validate everything under seeds/ (or a pages JSONL file).

Nothing here writes anything. Every problem found is collected with its file, line and reason,
and raised together as one SeedError, so an editor sees all mistakes in one run. What each file
may hold is declared in seed_schemas; this module reads the files, names each entry in its
messages, and brings what one file says to another: the catalog to the articles, the
vocabulary's slugs to the caveats.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from marshmallow import ValidationError

from . import caveat_rules
from .caveat_rules import RULE_KINDS, Rule
from .errors import SeedError, SeedProblem
from .seed_lines import LineLoader, line_of, locate
from .seed_schemas import (
    DOCUMENT_EMPTY,
    SOURCE_ID,
    CaveatSchema,
    ConditionSchema,
    EntrySchema,
    LayTermSchema,
    PageSchema,
    SourceSchema,
    SynonymsSchema,
)


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
    lay_terms: list[dict[str, Any]] = field(default_factory=list)


class _Reader:
    """Collects problems, and the digest of every byte read, while reading one set of seeds."""

    def __init__(self) -> None:
        self.problems: list[SeedProblem] = []
        self.digest = hashlib.sha256()

    def problem(self, path: Path | str, line: int | None, reason: str) -> None:
        self.problems.append(SeedProblem(str(path), line, reason))

    def problems_of(self, path: Path | str, found: Iterable[tuple[int | None, str]],
                    prefix: str = "") -> None:
        for line, reason in found:
            self.problem(path, line, prefix + reason)

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

    def load_entries(self, path: Path, entries: list[Any], schema: EntrySchema,
                  noun: str) -> list[tuple[dict[str, Any], int | None]]:
        """The entries of a YAML list that load, each with its line. Messages name an entry
        by its identity, so an entry whose identity is wrong or taken is reported for that
        alone."""
        loaded = []
        seen: dict[Any, int | None] = {}
        for entry in entries:
            line = line_of(entry)
            if not isinstance(entry, dict):
                self.problem(path, line, f"each {noun} must be a mapping")
                continue
            try:
                name = schema.identify(entry)
            except ValidationError as exc:
                self.problems_of(path, locate({schema.identity: exc.messages}, entry, line))
                continue
            if name in seen:
                self.problem(path, line, f"duplicate {noun} {schema.identity} {name!r} "
                                         f"(first defined on line {seen[name]})")
                continue
            seen[name] = line
            record, problems = schema.check(entry, line)
            self.problems_of(path, problems, f"{noun} {name!r}: ")
            if record is not None:
                loaded.append((record, line))
        return loaded


class _Catalogued(NamedTuple):
    line: int | None
    record: dict[str, Any] | None  # None: the entry has every field but some are wrong


def _read_catalog(reader: _Reader, path: Path) -> dict[str, _Catalogued] | None:
    """The catalog's entries by source id, or None when the file itself could not be read. An
    entry lacking fields is left out: its articles are reported as having none."""
    data = reader.read_mapping(path, "sources", dict)
    if data is None:
        return None
    schema = SourceSchema()
    entries: dict[str, _Catalogued] = {}
    for source_id, entry in data["sources"].items():
        line = line_of(data["sources"], source_id)
        record, problems = schema.check(entry, line)
        reader.problems_of(path, problems, f"source {source_id!r}: ")
        if schema.complete(entry):
            entries[str(source_id)] = _Catalogued(line, record)
    return entries


def _read_conditions(reader: _Reader,
                     path: Path) -> tuple[list[Condition] | None, dict[str, Any]]:
    """The vocabulary (None when the file itself could not be read) and its metadata."""
    data = reader.read_mapping(path, "conditions", list)
    if data is None:
        return None, {}
    meta = {k: v for k, v in data.items() if k != "conditions"}
    if isinstance(meta.get("codes_last_checked"), dt.date):
        meta["codes_last_checked"] = meta["codes_last_checked"].isoformat()
    loaded = reader.load_entries(path, data["conditions"], ConditionSchema(), "condition")
    return [Condition(**record) for record, _ in loaded], meta


def _read_caveats(reader: _Reader, path: Path, slugs: set[str] | None) -> list[Caveat]:
    """The catalogue; condition slugs are checked against `slugs` unless that is None (the
    vocabulary was unreadable, and its own error says so)."""
    data = reader.read_mapping(path, "caveats", list)
    if data is None:
        return []
    loaded = reader.load_entries(path, data["caveats"], CaveatSchema(slugs), "caveat")
    return [Caveat(**record, line=line) for record, line in loaded]


def _read_synonyms(reader: _Reader, path: Path) -> list[list[str]]:
    """Curated expansion groups; the file is optional (the vocabulary expands on its own)."""
    if not path.exists():
        return []
    data = reader.read_mapping(path, "groups", list)
    if data is None:
        return []
    try:
        return SynonymsSchema().load(data)["groups"]
    except ValidationError as exc:
        for index, messages in exc.messages["groups"].items():
            for message in messages:
                reader.problem(path, line_of(data, "groups"), f"group {index + 1}: {message}")
    return []


def _read_lay_terms(reader: _Reader, path: Path) -> list[dict[str, Any]]:
    """Lay-to-clinical wording; the file is optional."""
    if not path.exists():
        return []
    data = reader.read_mapping(path, "terms", list)
    if data is None:
        return []
    return [record for record, _ in
            reader.load_entries(path, data["terms"], LayTermSchema(), "term")]


def _read_articles(reader: _Reader, seeds_dir: Path, catalog: dict[str, _Catalogued] | None,
                   catalog_path: Path) -> list[Source]:
    """The articles, each joined with its catalog entry. With no readable catalog, articles are
    still checked (UTF-8, not empty) but not reported as missing from it: one error, not six."""
    sources: list[Source] = []
    files = sorted(seeds_dir.glob("*.txt"))
    if not files:
        reader.problem(seeds_dir, None, "no articles (*.txt) found")
    for path in files:
        source_id = path.stem
        if not SOURCE_ID.match(source_id):
            reader.problem(path, None, f"file name {path.name!r} does not make a valid source id")
            continue
        text = reader.read_text(path)
        if text is None:
            continue
        if not text.strip():
            reader.problem(path, None, DOCUMENT_EMPTY)
            continue
        if catalog is None:
            continue
        entry = catalog.get(source_id)
        if entry is None:
            reader.problem(catalog_path, None, f"no entry for source {source_id!r} ({path.name})")
            continue
        if entry.record is not None:
            sources.append(Source(id=source_id, text=text, path=str(path), **entry.record))
    stems = {p.stem for p in files}
    for source_id, entry in (catalog or {}).items():
        if source_id not in stems:
            reader.problem(catalog_path, entry.line,
                           f"source {source_id!r} has no article file {source_id}.txt")
    return sources


def read_pages(reader: _Reader, pages_path: Path, limit: int | None = None) -> list[Source]:
    """Read documents from a JSONL file with the fields id, title, url, publisher, license, text."""
    sources: list[Source] = []
    seen: dict[str, int] = {}
    schema = PageSchema()
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
            page, problems = schema.check(record, number)
            # A page with all its fields and a good id takes that id, even if it is otherwise
            # wrong: a later page with the same id is reported as the duplicate.
            try:
                page_id = schema.identify(record) if schema.complete(record) else None
            except ValidationError:
                page_id = None
            if page_id is not None:
                if page_id in seen:
                    reader.problem(pages_path, number, f"duplicate id {page_id!r} "
                                                       f"(first on line {seen[page_id]})")
                    continue
                seen[page_id] = number
            reader.problems_of(pages_path, problems)
            if page is not None:
                sources.append(Source(page["id"], page["title"], page["publisher"], page["url"],
                                      None, page["license"], None, page["text"],
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
    lay_terms = _read_lay_terms(reader, seeds_dir / "lay_terms.yaml")
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
                 str(seeds_dir / "caveats.yaml"), synonyms, lay_terms)
