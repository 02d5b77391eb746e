"""The on-disk layout of one index generation: a Whoosh index, scoring arrays, JSON side files.

A generation directory holds the Whoosh segment files, the scoring arrays (index/arrays.py:
scoring.json, scoring.bin) and:
  manifest.json    version (hash of inputs), built_at, counts
  sources.json     source metadata with the ordered ids of each source's snippets
  conditions.json  the vocabulary with codes and snippet counts
  caveats.json     the caveat catalogue the snippets' caveat ids refer to
  synonyms.json    query expansion groups (curated synonyms, lay terms, the vocabulary's terms)
  english.bin      how common each English word is (index/english.py)
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
              "duplicates.json", "scoring.json", "scoring.bin", "english.bin")


def make_schema() -> Schema:
    # Whoosh is the store of record: each snippet's record, its id for lookups, and the words
    # spelling suggestions choose from; scores, filters, browsing and key terms use the
    # scoring arrays (index/arrays.py). The text field indexes nothing: it is there for its
    # analyzer, which queries are analysed by. Whoosh's writer looks up a field length for
    # every posting it writes, and for a field without lengths (not scorable) that is a
    # stat() of a file that is not there, so the indexed fields are scorable.
    return Schema(
        id=KEYWORD(unique=True, scorable=True),
        text=TEXT(analyzer=make_analyzer(), phrase=False),
        # Every distinct unstemmed word of the texts, once (at its first snippet).
        spell_text=KEYWORD(scorable=True),
        # The whole snippet record, as one stored value: Whoosh writes and reads stored
        # fields one by one, and one field costs less than nineteen at both ends.
        snippet=STORED,
    )


def encoded_lengths(directory: Path, lengths: set[int]) -> dict[int, float]:
    """What Whoosh's lossy one-byte encoding of each field length decodes to, as its BM25F
    sees it: from a throwaway Whoosh index in `directory` holding one document per length."""
    wanted = sorted(lengths)
    ix = whoosh_index.create_in(str(directory), Schema(n=TEXT(phrase=False)))
    try:
        with ix.writer() as writer:
            for length in wanted:
                # A list is indexed as it is: one term, `length` times.
                writer.add_document(n=["x"] * length if length else [])
        with ix.searcher() as searcher:
            reader = searcher.reader()
            return {length: float(reader.doc_field_length(docnum, "n", 0) or 0)
                    for docnum, length in enumerate(wanted)}
    finally:
        ix.close()


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
