"""The on-disk layout of one index generation: a Whoosh index plus JSON side files.

A generation directory holds the Whoosh segment files and:
  manifest.json    version (hash of inputs), built_at, counts
  sources.json     source metadata with the ordered ids of each source's snippets
  conditions.json  the vocabulary with codes and snippet counts
  caveats.json     the caveat catalogue the snippets' caveat ids refer to
  synonyms.json    query expansion groups (curated synonyms and the vocabulary's terms)
  duplicates.json  groups of snippets whose text is the same, for collapsing results
Everything a request needs comes from one generation, so an answer never mixes two.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from array import array
from pathlib import Path
from typing import Any

from whoosh import columns
from whoosh import index as whoosh_index
from whoosh.analysis import StemmingAnalyzer
from whoosh.codec import whoosh3
from whoosh.fields import ID, KEYWORD, NUMERIC, STORED, TEXT, Schema
from whoosh.filedb.filestore import FileStorage

MANIFEST = "manifest.json"
SIDE_FILES = ("sources.json", "conditions.json", "caveats.json", "synonyms.json",
              "duplicates.json")


def _cached_reader(self, fieldname, column):
    # Whoosh 2.7.5 caches a length-column reader only when the column exists, so every posting
    # of a field without one costs a stat() of a file that is not there: 750,000 calls and about
    # a fifth of a 500-page build. Cache the absence too (pinned whoosh-reloaded==2.7.5).
    if fieldname not in self._readers:
        self._readers[fieldname] = (self.column_reader(fieldname, column)
                                    if self.has_column(fieldname) else None)
    return self._readers[fieldname]


whoosh3.W3PerDocReader._cached_reader = _cached_reader


def column_codes(reader, fieldname: str) -> list:
    """A sortable column's value for every document, read in one go: the numbers of a numeric
    column, and for an ID column a number per distinct value (equal numbers, equal values)."""
    return column_values(reader.column_reader(fieldname))


def column_values(column) -> list:
    """Every document's value of a column reader, from one read of the column's bytes (Whoosh's
    readers seek and read once per document: 200 ms for 55,000 snippets). A variable-bytes
    column gives a number per distinct value; any other kind is read Whoosh's way."""
    raw = getattr(column, "_reader", column)  # Whoosh wraps a field's column to translate it
    if isinstance(raw, columns.VarBytesColumn.Reader):
        data = bytes(raw._dbfile.get(raw._basepos, sum(raw._lengths)))
        distinct: dict[bytes, int] = {}
        return [distinct.setdefault(data[offset:offset + length], len(distinct))
                for offset, length in zip(raw._offsets, raw._lengths, strict=True)]
    if not (isinstance(raw, columns.NumericColumn.Reader)
            and array(raw._typecode).itemsize == raw._fixedlen):
        return list(column)
    values = array(raw._typecode, raw._dbfile.get(raw._basepos, raw._count * raw._fixedlen))
    if sys.byteorder == "little":  # Whoosh writes columns in network (big-endian) order
        values.byteswap()
    values.extend([raw._default] * (raw._doccount - raw._count))  # documents after the last
    if raw is not column:
        return [column._translate(value) for value in values]
    return values.tolist()


def make_schema() -> Schema:
    # minsize=1 keeps one-character tokens: "type 5", "Noonan syndrome 3" are told apart.
    stemmed = StemmingAnalyzer(minsize=1)
    return Schema(
        id=ID(stored=True, unique=True),
        source_id=ID(stored=True),
        # Stemmed, with positions for phrase queries, and an unstemmed copy for spelling.
        text=TEXT(stored=True, analyzer=stemmed, phrase=True, spelling=True),
        title=TEXT(stored=True, analyzer=stemmed, phrase=False),
        section=TEXT(stored=True, analyzer=stemmed, phrase=False),
        lead_in=STORED,
        # Only returned, never searched: stored without index terms (a NUMERIC field indexes
        # eight terms per value for range queries; those were a quarter of all postings).
        paragraph=STORED,
        # Listing sorts by it (a column); one exact term, no range terms.
        position=NUMERIC(stored=True, sortable=True, shift_step=0),
        char_start=STORED,
        char_end=STORED,
        text_sha256=STORED,
        conditions=KEYWORD(stored=True, commas=True, scorable=True),
        mentions=KEYWORD(stored=True, commas=True),
        focus=ID(stored=True),
        reading_grade=STORED,
        # Filtered by range as int tenths (Whoosh's float fields are awkward to range over);
        # a range enumerates the few hundred exact values, once per generation (cached).
        grade_tenths=NUMERIC(int, shift_step=0),
        caveats=STORED,  # comma-joined ids, returned only
        url=STORED,
        retrieved=STORED,
        # Same normalised text, same key: results collapse on it (see duplicates.json).
        dup_key=ID(stored=True, sortable=True),
    )


# Files a generation is made of that are not content (Whoosh's lock file is left behind empty).
_NOT_CONTENT = {MANIFEST, "MAIN_WRITELOCK"}


def _crc32(path: Path) -> str:
    crc = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def file_checksums(generation: Path) -> dict[str, dict[str, Any]]:
    """Size and CRC-32 of every content file of a generation, for the manifest. CRC-32 runs at
    memory speed, so verifying a full-corpus generation on open takes well under a second."""
    return {p.name: {"bytes": p.stat().st_size, "crc32": _crc32(p)}
            for p in sorted(generation.iterdir()) if p.is_file() and p.name not in _NOT_CONTENT}


def damaged_files(generation: Path, expected: dict[str, dict[str, Any]]) -> list[str]:
    """Names of present files whose size or checksum differ from the manifest."""
    damaged = []
    for name, want in expected.items():
        path = generation / name
        if not path.is_file():
            continue  # missing files are reported as missing
        if path.stat().st_size != want["bytes"] or _crc32(path) != want["crc32"]:
            damaged.append(name)
    return damaged


def missing_files(generation: Path, expected: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name in dict.fromkeys([*SIDE_FILES, *expected])
            if not (generation / name).is_file()]


def write_json(path: Path, data: Any) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=1, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def to_document(snippet: dict[str, Any]) -> dict[str, Any]:
    """A snippet record as Whoosh fields (lists become comma-joined keywords)."""
    doc = dict(snippet)
    doc["grade_tenths"] = round(snippet["reading_grade"] * 10)
    for name in ("conditions", "mentions", "caveats"):
        doc[name] = ",".join(snippet[name])
    for name in ("section", "focus"):
        if doc[name] is None:
            del doc[name]
    return doc


def from_stored(fields: dict[str, Any]) -> dict[str, Any]:
    """Stored Whoosh fields back to a snippet record."""
    record = dict(fields)
    for name in ("conditions", "mentions", "caveats"):
        value = record.get(name) or ""
        record[name] = [v for v in value.split(",") if v]
    # Whoosh does not store None, so optional fields come back missing: restore them.
    for name in ("section", "focus", "lead_in", "url", "retrieved"):
        record.setdefault(name, None)
    return record


def open_whoosh(generation: Path):
    # Ordinary file reads, not mmap. Measured on the full corpus (300-query mix, in process):
    # mmap made cold p50 9.0 ms instead of 11.9 ms, but a worker held 259 MB instead of 66 MB
    # (Whoosh copies much of a mapped index into private memory), over the 150 MB budget; and
    # a file truncated under a mapping kills the worker with SIGBUS instead of raising an error
    # we answer as a 503.
    return FileStorage(str(generation), supports_mmap=False, readonly=True).open_index()


def create_whoosh(generation: Path):
    return whoosh_index.create_in(str(generation), make_schema())
