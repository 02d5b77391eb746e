"""The on-disk layout of one index generation: a Whoosh index, scoring arrays, JSON side files.

A generation directory holds the Whoosh segment files, the scoring arrays (index/arrays.py:
scoring.json, scoring.bin) and:
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
import zlib
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh.fields import KEYWORD, STORED, TEXT, Schema

from .analysis import make_analyzer

MANIFEST = "manifest.json"
SIDE_FILES = ("sources.json", "conditions.json", "caveats.json", "synonyms.json",
              "duplicates.json", "scoring.json", "scoring.bin")


def make_schema() -> Schema:
    # The build gives text, title and section as lists of stems (index/analysis.py), which
    # Whoosh indexes as they are; the analyzer is what key terms are analysed by. Only what
    # Whoosh is asked about is indexed: the id (lookups), the text (key terms, and word
    # frequencies for spelling), the title and section (their lengths are BM25F's), and the
    # spelling words; scores, filters and browsing use the scoring arrays. Whoosh's writer
    # looks up a field length for every posting it writes, and for a field without lengths
    # (not scorable) that is a stat() of a file that is not there (a third of a build), so
    # the indexed fields are scorable.
    stemmed = make_analyzer()
    return Schema(
        id=KEYWORD(unique=True, scorable=True),
        # No positions: phrases are matched in the scoring arrays.
        text=TEXT(analyzer=stemmed, phrase=False),
        # Every distinct unstemmed word of the texts, once (at its first snippet): the words
        # spelling suggestions choose from (index/suggest.py).
        spell_text=KEYWORD(scorable=True),
        title=TEXT(analyzer=stemmed, phrase=False),
        section=TEXT(analyzer=stemmed, phrase=False),
        # The whole snippet record, as one stored value: Whoosh writes and reads stored
        # fields one by one, and one field costs less than nineteen at both ends.
        snippet=STORED,
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
    """A snippet record as Whoosh's stored value (the indexed fields are added by the build)."""
    return {"snippet": dict(snippet)}


def from_stored(fields: dict[str, Any]) -> dict[str, Any]:
    """Whoosh's stored fields of a snippet back to its record."""
    return dict(fields["snippet"])


def open_whoosh(generation: Path):
    return whoosh_index.open_dir(str(generation), readonly=True)


def create_whoosh(generation: Path):
    return whoosh_index.create_in(str(generation), make_schema())
