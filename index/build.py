"""Build a new index generation from validated seeds, then switch CURRENT to it atomically.

Layout of an index directory:
  CURRENT            symlink to the generation in service (relative, swapped with os.replace)
  gen-<time>-<ver>/  complete generations; the newest three are kept
  .tmp-<...>/        a generation being written; never pointed at, removed if a build dies
  .build.lock        held (flock) by the one build allowed at a time
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import importlib.metadata
import os
import re
import resource
import shutil
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import english, store
from .arrays import ArraysDamaged, ArraysWriter, ScoringArrays
from .errors import BuildLockedError, IndexUnavailable, SeedError, SeedProblem
from .making import Progress, analysed_sources, make_snippets, snippet_id
from .seeds import Seeds, load

__all__ = ["BuildResult", "build", "check", "make_snippets", "snippet_id"]

# Bump when chunking, tagging, grading, the schema or the side files change: the version
# changes too, and a service refuses (503, "rebuild") a generation another pipeline wrote.
PIPELINE_VERSION = "12"
KEEP_GENERATIONS = 3
CURRENT = "CURRENT"
LOCK = ".build.lock"
GEN_PREFIX = "gen-"
TMP_PREFIX = ".tmp-"
WRITER_MEMORY_MB = 2048


@dataclass
class BuildResult:
    generation: Path
    manifest: dict[str, Any]
    snippets: list[dict]  # every snippet made, as indexed (benchmarks index the same ones)


def duplicate_key(text: str) -> str:
    """Texts that differ only in case, spacing or punctuation share a key."""
    words = " ".join(re.findall(r"[a-z0-9]+", text.lower()))
    return hashlib.sha1(words.encode()).hexdigest()[:16]


def duplicate_groups(snippets: list[dict]) -> dict[str, list[list]]:
    """The groups of snippets with the same `dup_key` and more than one member, as
    key -> [[snippet id, source id, paragraph], ...] in index order."""
    groups: dict[str, list[list]] = {}
    for snippet in snippets:
        snippet.setdefault("dup_key", duplicate_key(snippet["text"]))
        groups.setdefault(snippet["dup_key"], []).append(
            [snippet["id"], snippet["source_id"], snippet["paragraph"]])
    return {key: members for key, members in groups.items() if len(members) > 1}


def synonym_groups(seeds: Seeds) -> list[dict[str, Any]]:
    """Expansion groups: the vocabulary's label, terms and abbreviations per condition, then
    the curated synonyms, then the lay terms."""
    groups = [{"phrases": list(dict.fromkeys([c.label, *c.terms, *c.abbreviations])),
               "condition": c.slug} for c in seeds.conditions]
    groups += [{"phrases": phrases, "condition": None} for phrases in seeds.synonyms]
    # Lay wording works one way: only its lay phrases lead to the group.
    groups += [{"phrases": [*term["lay"], *term["clinical"]], "triggers": term["lay"],
                "condition": None} for term in seeds.lay_terms]
    return groups


def _check_caveat_targets(seeds: Seeds, snippets: list[dict], from_pages: bool) -> None:
    """A caveat aimed at a source or snippet of this build must find it (else the text changed).

    A pages build indexes other documents with the seeds' catalogue, so only targets inside
    the built sources are checked then.
    """
    built_sources = {s.id for s in seeds.sources}
    snippet_ids = {s["id"] for s in snippets}
    problems = []
    for caveat in seeds.caveats:
        for source_id in caveat.sources:
            if source_id not in built_sources and not from_pages:
                problems.append(SeedProblem(seeds.caveats_path, caveat.line,
                                            f"caveat {caveat.id!r}: unknown source {source_id!r}"))
        for sid in caveat.snippets:
            source_id = sid.rsplit("-", 1)[0]
            if (source_id in built_sources or not from_pages) and sid not in snippet_ids:
                problems.append(SeedProblem(
                    seeds.caveats_path, caveat.line,
                    f"caveat {caveat.id!r}: snippet {sid!r} does not exist (was its text "
                    "edited?); update the id or the rule"))
    if problems:
        raise SeedError(problems)


def _manifest(seeds: Seeds, snippets: list[dict], sources: list[dict],
              duplicates: dict[str, list[list]], now: dt.datetime) -> dict[str, Any]:
    """Version, generation name, build time and counts; `build_seconds` and `files` are filled
    in when the generation has been written."""
    per_condition = Counter(c for s in snippets for c in s["conditions"])
    per_caveat = Counter(c for s in snippets for c in s["caveats"])
    # The English word list is part of each generation, so its version is part of the index's.
    words = importlib.metadata.version("wordfreq")
    version = hashlib.sha256(
        f"{PIPELINE_VERSION}\0{seeds.input_digest}\0{words}".encode()).hexdigest()
    return {
        "version": version[:16],
        "pipeline_version": PIPELINE_VERSION,
        "generation": f"{GEN_PREFIX}{now:%Y%m%dT%H%M%S%fZ}-{version[:8]}",
        "built_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "build_seconds": None,
        "counts": {
            "sources": len(sources),
            "snippets": len(snippets),
            "per_source": {s["id"]: len(s["snippet_ids"]) for s in sources},
            "per_condition": {c.slug: per_condition.get(c.slug, 0) for c in seeds.conditions},
            "per_caveat": {c.id: per_caveat.get(c.id, 0) for c in seeds.caveats
                           if c.scope == "snippet"},
            "duplicate_groups": len(duplicates),
        },
    }


@contextmanager
def build_lock(index_dir: Path, wait_seconds: float = 0.0):
    """One writer at a time: a second build waits up to `wait_seconds`, then fails clearly."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK
    with path.open("a+") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuildLockedError(
                        f"another build is running in {index_dir} (it holds {path}); "
                        "wait for it to finish or pass --wait SECONDS") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def switch_current(index_dir: Path, generation: Path) -> None:
    """Point CURRENT at `generation` in one atomic rename; readers see old or new, never none."""
    tmp_link = index_dir / f"{CURRENT}.{uuid.uuid4().hex}"
    os.symlink(generation.name, tmp_link)
    os.replace(tmp_link, index_dir / CURRENT)
    _fsync_dir(index_dir)


def current_pointer(index_dir: Path | str) -> str:
    """The name CURRENT points at (one readlink, cheap enough for every request)."""
    pointer = os.path.join(index_dir, CURRENT)
    try:
        return os.readlink(pointer)
    except FileNotFoundError:
        raise IndexUnavailable(f"no index built yet: {pointer} does not exist "
                               "(run `snippets build`)") from None
    except OSError as exc:
        raise IndexUnavailable(f"cannot read {pointer}: {exc.strerror}") from None


def current_generation(index_dir: Path | str) -> Path:
    """The generation CURRENT points at. Raises IndexUnavailable with the reason."""
    target = Path(index_dir) / current_pointer(index_dir)
    if not (target / store.MANIFEST).is_file():
        raise IndexUnavailable(f"{Path(index_dir) / CURRENT} points at {target.name}, which is "
                               "missing or incomplete")
    return target


def generations(index_dir: Path) -> list[Path]:
    """Complete generations, oldest first (names start with the build time)."""
    return sorted(p for p in index_dir.glob(f"{GEN_PREFIX}*") if p.is_dir())


def _prune(index_dir: Path, keep: Path) -> None:
    for leftover in index_dir.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)  # from a build that was killed
    for link in index_dir.glob(f"{CURRENT}.*"):
        link.unlink(missing_ok=True)
    old = [g for g in generations(index_dir) if g != keep]
    for generation in old[: max(0, len(old) - (KEEP_GENERATIONS - 1))]:
        shutil.rmtree(generation, ignore_errors=True)


def _write_segment(tmp: Path, made, progress: Progress | None,
                   started: float) -> tuple[list[dict], list[dict]]:
    """The Whoosh segment and, from the same analysis, the scoring arrays, as the snippets
    are made. Whoosh is given the stems as lists, which it indexes as they are. Returns
    (snippets, source records)."""
    arrays = ArraysWriter()
    spelled: set[str] = set()
    snippets: list[dict] = []
    sources: list[dict] = []
    ix = store.create_whoosh(tmp)
    # A memory pool large enough that the writer never spills sorted runs to disk. The
    # segment stays separate files, not one compound file: Whoosh reads a compound file
    # through mmap and copies much of it into each worker's private memory.
    writer = ix.writer(limitmb=WRITER_MEMORY_MB, compound=False)
    try:
        for made_snippets, record, analysed in made:
            sources.append(record)
            for snippet, fields in zip(made_snippets, analysed, strict=True):
                snippet["dup_key"] = duplicate_key(snippet["text"])
                text = fields["text"]
                doc = store.to_document(snippet)
                doc.update(id=snippet["id"], spell_text=sorted(set(text.words) - spelled))
                spelled.update(text.words)
                writer.add_document(**doc)
                arrays.add(snippet["id"], fields,
                           {"conditions": snippet["conditions"],
                            "mentions": snippet["mentions"],
                            "focus": [snippet["focus"]] if snippet["focus"] else [],
                            "source_id": [snippet["source_id"]]},
                           snippet["dup_key"], snippet["position"],
                           round(snippet["reading_grade"] * 10))
            snippets += made_snippets
            if progress:
                progress(len(sources), len(snippets), time.monotonic() - started)
        writer.commit()
        lengths = Path(tempfile.mkdtemp(prefix=".lengths-", dir=tmp))
        try:
            arrays.write(tmp, store.encoded_lengths(lengths, arrays.distinct_lengths()))
        finally:
            shutil.rmtree(lengths, ignore_errors=True)
    except BaseException:
        if not writer.is_closed:
            writer.cancel()
        raise
    finally:
        ix.close()
    return snippets, sources


def _write_side_files(tmp: Path, seeds: Seeds, sources: list[dict],
                      duplicates: dict[str, list[list]], manifest: dict[str, Any],
                      started: float) -> None:
    per_condition = manifest["counts"]["per_condition"]
    store.write_json(tmp / "sources.json", sources)
    store.write_json(tmp / "conditions.json", {
        "meta": seeds.vocabulary_meta,
        "conditions": [{
            "slug": c.slug, "label": c.label, "terms": list(c.terms),
            "abbreviations": list(c.abbreviations),
            "codes": {system: list(codes) for system, codes in c.codes.items()},
            "snippet_count": per_condition.get(c.slug, 0),
        } for c in seeds.conditions],
    })
    store.write_json(tmp / "caveats.json", [c.public() for c in seeds.caveats])
    store.write_json(tmp / "synonyms.json", synonym_groups(seeds))
    store.write_json(tmp / "duplicates.json", duplicates)
    english.write(tmp / english.FILE)
    # The manifest goes last: a directory without one is never a complete generation. It
    # records every file's size and checksum, so damage is found on open and by `check`.
    manifest["files"] = store.file_checksums(tmp)
    manifest["build_seconds"] = round(time.monotonic() - started, 3)
    manifest["build_peak_rss_mb"] = peak_rss_mb()
    store.write_json(tmp / store.MANIFEST, manifest)
    _fsync_dir(tmp)


def peak_rss_mb() -> float:
    """Peak resident memory of this process plus that of its largest finished child (the
    build's worker processes), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round((own + children) / 1024, 1)


def build(seeds_dir: Path | str, index_dir: Path | str, pages: Path | str | None = None,
          pages_limit: int | None = None, progress: Progress | None = None,
          wait_seconds: float = 0.0, processes: int | None = None) -> BuildResult:
    """Validate inputs, write a new generation, switch CURRENT, prune old generations.

    On any failure CURRENT is untouched and no partial generation is left behind.
    """
    started = time.monotonic()
    index_dir = Path(index_dir)
    seeds = load(seeds_dir, pages, pages_limit)
    # The worker processes start before the lock is taken, so none of them holds it (a lock
    # held by an orphaned worker would outlive a killed build).
    with analysed_sources(seeds, processes) as made, build_lock(index_dir, wait_seconds):
        # Taken under the lock, so generation names sort in the order they were switched in.
        now = dt.datetime.now(dt.UTC)
        tmp = index_dir / f"{TMP_PREFIX}{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            snippets, sources = _write_segment(tmp, made, progress, started)
            _check_caveat_targets(seeds, snippets, from_pages=pages is not None)
            duplicates = duplicate_groups(snippets)
            manifest = _manifest(seeds, snippets, sources, duplicates, now)
            _write_side_files(tmp, seeds, sources, duplicates, manifest, started)
            final = index_dir / manifest["generation"]
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        switch_current(index_dir, final)
        _prune(index_dir, final)
    return BuildResult(final, manifest, snippets)


def check(index_dir: Path | str) -> tuple[dict[str, Any], list[str]]:
    """Open the current generation and compare it with its manifest.

    Returns (manifest, problems); no problems means the index is sound.
    """
    generation = current_generation(index_dir)
    manifest = store.read_json(generation / store.MANIFEST)
    problems = []
    expected = manifest.get("files", {})
    problems += [f"{name} is missing" for name in store.missing_files(generation, expected)]
    problems += [f"{name} is damaged: its size or checksum differs from the manifest"
                 for name in store.damaged_files(generation, expected)]
    if problems:
        return manifest, problems
    try:
        arrays = ScoringArrays(generation)
    except ArraysDamaged as exc:
        problems.append(f"the scoring arrays are damaged: {exc}")
        return manifest, problems
    try:
        ix = store.open_whoosh(generation)
        try:
            with ix.searcher() as searcher:
                total = searcher.doc_count()
                per_source = Counter(store.from_stored(f)["source_id"]
                                     for f in searcher.all_stored_fields())
        finally:
            ix.close()
    except Exception as exc:  # any Whoosh failure means the index is damaged
        problems.append(f"the Whoosh index does not open: {type(exc).__name__}: {exc}")
        return manifest, problems
    counts = manifest["counts"]
    if arrays.documents != total:
        problems.append(f"the scoring arrays hold {arrays.documents} snippets, the Whoosh index "
                        f"{total}")
    if total != counts["snippets"]:
        problems.append(f"index holds {total} snippets, manifest says {counts['snippets']}")
    if dict(per_source) != {k: v for k, v in counts["per_source"].items() if v}:
        problems.append("per-source snippet counts differ from the manifest")
    return manifest, problems
