"""The index build: ids, tags, caveats and grades of snippets, generations, checks, the lock,
and builds from a pages file."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS, SEEDS

from index import store
from index.build import (
    build,
    build_lock,
    check,
    current_generation,
    generations,
    snippet_id,
)
from index.errors import BuildLockedError, IndexUnavailable, SeedError
from index.grading import reading_grade
from index.tagging import Tagger

SNIPPETS_PER_SEED = {"000": 8, "001": 13, "002": 9, "003": 7, "004": 8}
ALL_SEED_PARAGRAPHS = {prefix: list(range(1, n + 1)) for prefix, n in SNIPPETS_PER_SEED.items()}

# Where each snippet caveat of seeds/caveats.yaml attaches on the seeds: seed prefix -> paragraph
# numbers. Every entry was checked by reading the snippet against the caveat's rule and text.
SNIPPET_CAVEATS = {
    "source-unattributed": ALL_SEED_PARAGRAPHS,
    "investigational-fibromyalgia": {"000": [4], "001": [9], "002": [4],
                                     "003": [1, 2, 3, 4, 5, 6, 7]},
    "investigational-ptsd": {"002": [3], "004": [1, 2, 3, 4, 5, 6, 7, 8]},
    "investigational-anxiety": {"000": [5], "001": [6], "002": [2, 3], "004": [2]},
    "investigational-chronic-pain": {"000": [3, 4, 5, 7], "001": ALL_SEED_PARAGRAPHS["001"],
                                     "002": [4], "003": [3]},
    "investigational-hypertension": {"002": [5]},
    "investigational-ibs": {"002": [7]},
    "investigational-inflammation": {"002": [6], "003": [2]},
    "approval-depression-narrow": {"000": [5], "001": [6], "002": [2, 3], "004": [2]},
    "approval-migraine-noninvasive": {"000": [4], "001": [9], "002": [4]},
    "approval-cluster-headache-noninvasive": {},
    "evidence-unreferenced-studies": {"000": [2, 3, 4], "001": [9], "002": [2, 3, 4, 5],
                                      "003": [2, 3, 4], "004": [2, 6]},
    "evidence-preliminary": {"000": [4, 7], "001": [11], "002": [1, 4, 6], "003": [1, 6, 7],
                             "004": [1, 6, 8]},
    "evidence-anecdotal": {"001": [5, 10], "003": [3], "004": [5]},
    "wording-promotional": {"000": [2], "001": [2, 5, 9, 10, 12], "003": [7],
                            "004": [3, 5, 7, 8]},
    "wording-minimally-invasive": {"000": [6], "004": [4]},
    "safety-implanted-side-effects": {"000": [6], "001": [7], "004": [5]},
    "safety-noninvasive-exclusions": {"003": [5]},
    "conflict-voice-changes-rare": {"004": [5]},
    "conflict-non-invasive-option": {"001": [8]},
}

SLEEP_PARAGRAPH_OF_003 = "Moreover, VNS has been found to potentially improve sleep quality"
PTSD_FREE_PARAGRAPH_OF_004 = "VNS also offers a unique approach due to its minimally invasive"
IBS_PARAGRAPH_OF_002 = "In addition to these benefits, vagus nerve stimulation has been linked"
EDITED_PHRASE_OF_000 = "through this remarkable therapy."


def seed_prefix(source_id: str) -> str:
    return source_id.split("_", 1)[0]


def where(snippet: dict) -> tuple[str, int]:
    return seed_prefix(snippet["source_id"]), snippet["paragraph"]


def copy_index(source: Path, target: Path) -> Path:
    """A private copy of an index directory (CURRENT stays a relative symlink)."""
    shutil.copytree(source, target, symlinks=True)
    return target


def snippet_ids_by_source(index_dir: Path) -> dict[str, list[str]]:
    sources = store.read_json(current_generation(index_dir) / "sources.json")
    return {s["id"]: s["snippet_ids"] for s in sources}


def stored_records(generation: Path) -> list[dict]:
    ix = store.open_whoosh(generation)
    try:
        with ix.searcher() as searcher:
            return [store.from_stored(fields) for fields in searcher.all_stored_fields()]
    finally:
        ix.close()




def find_snippet(seed_snippets: list[dict], prefix: str, opening: str) -> dict:
    found = [s for s in seed_snippets
             if seed_prefix(s["source_id"]) == prefix and s["text"].startswith(opening)]
    assert len(found) == 1, (prefix, opening)
    return found[0]


# -- stable ids --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rebuilt_index(tmp_path_factory, seeds_dir) -> Path:
    """The same seeds, copied elsewhere, built into a second index directory."""
    base = tmp_path_factory.mktemp("rebuilt")
    shutil.copytree(seeds_dir, base / "seeds")
    build(base / "seeds", base / "index")
    return base / "index"


@pytest.fixture(scope="module")
def edited_index(tmp_path_factory, seeds_dir) -> Path:
    """The seeds with one word removed from seed 000's last paragraph, built."""
    base = tmp_path_factory.mktemp("edited")
    shutil.copytree(seeds_dir, base / "seeds")
    article = next((base / "seeds").glob("000_*.txt"))
    text = article.read_bytes().decode("utf-8")
    assert text.count(EDITED_PHRASE_OF_000) == 1
    article.write_bytes(text.replace(EDITED_PHRASE_OF_000, "through this therapy.").encode())
    build(base / "seeds", base / "index")
    return base / "index"


def test_two_builds_of_the_same_seeds_give_identical_snippet_ids(built_index, rebuilt_index):
    assert current_generation(built_index).name != current_generation(rebuilt_index).name
    first, second = snippet_ids_by_source(built_index), snippet_ids_by_source(rebuilt_index)
    assert first == second
    assert sum(len(ids) for ids in first.values()) == 45


def test_snippet_ids_are_source_id_and_twelve_hex_digits(built_index):
    all_ids = []
    for source_id, ids in snippet_ids_by_source(built_index).items():
        pattern = re.compile(rf"^{re.escape(source_id)}-[0-9a-f]{{12}}$")
        assert all(pattern.match(sid) for sid in ids), ids
        all_ids += ids
    assert len(set(all_ids)) == len(all_ids)


def test_repeated_text_in_one_source_gets_distinct_ids():
    first = snippet_id("src", "Same text.", 0)
    assert first == snippet_id("src", "Same text.", 0)
    assert first != snippet_id("src", "Same text.", 1)
    assert first != snippet_id("other", "Same text.", 0)


def test_editing_one_paragraph_changes_only_that_snippets_id(built_index, edited_index):
    before, after = snippet_ids_by_source(built_index), snippet_ids_by_source(edited_index)
    assert before.keys() == after.keys()
    changed = [(seed_prefix(source_id), position + 1)
               for source_id in before
               for position, (old, new) in enumerate(zip(before[source_id], after[source_id],
                                                         strict=True))
               if old != new]
    assert changed == [("000", 8)]


# -- tagging ------------------------------------------------------------------------------------


def test_fibromyalgia_sleep_paragraph_is_tagged_fibromyalgia_and_insomnia(seed_snippets):
    snippet = find_snippet(seed_snippets, "003", SLEEP_PARAGRAPH_OF_003)
    assert {"fibromyalgia", "insomnia"} <= set(snippet["mentions"])
    assert {"fibromyalgia", "insomnia"} <= set(snippet["conditions"])


def test_every_ptsd_article_snippet_carries_ptsd_from_the_title(seed_snippets):
    snippets = [s for s in seed_snippets if seed_prefix(s["source_id"]) == "004"]
    assert len(snippets) == 8
    assert all(s["focus"] == "ptsd" and "ptsd" in s["conditions"] for s in snippets)
    silent = find_snippet(seed_snippets, "004", PTSD_FREE_PARAGRAPH_OF_004)
    assert "PTSD" not in silent["text"]
    assert "ptsd" not in silent["mentions"]
    assert "ptsd" in silent["conditions"]


def test_gut_paragraph_is_tagged_ibs_and_dyspepsia(seed_snippets):
    snippet = find_snippet(seed_snippets, "002", IBS_PARAGRAPH_OF_002)
    assert {"ibs", "dyspepsia"} <= set(snippet["conditions"])


def test_article_focus_comes_from_a_title_naming_one_condition(seeds):
    tagger = Tagger(seeds.conditions)
    focus = {seed_prefix(s.id): tagger.focus(s.title) for s in seeds.sources}
    assert focus == {"000": None, "001": "chronic-pain", "002": None, "003": "fibromyalgia",
                     "004": "ptsd"}
    assert tagger.focus("Migraine and fibromyalgia") is None


@pytest.mark.parametrize(("text", "slug", "tagged"), [
    ("She has migraines.", "migraine", True),
    ("Two fibromyalgias were compared.", "fibromyalgia", True),
    ("Depressions differ.", "depression", True),
    ("Living with PTSD.", "ptsd", True),
    ("Two PTSDs.", "ptsd", True),
    ("the ptsd clinic", "ptsd", False),
    ("after post traumatic stress disorder", "ptsd", True),
    ("after Post-Traumatic Stress Disorder", "ptsd", True),
    ("Patients with GAD.", "anxiety", True),
    ("a gadget for the neck", "anxiety", False),
    ("a GADGET for the neck", "anxiety", False),
    ("the gad score", "anxiety", False),
    ("chronic painful joints", "chronic-pain", False),
    ("CHRONIC PAIN at night", "chronic-pain", True),
    ("an antidepressant", "depression", False),
    ("high  blood\npressure", "hypertension", True),
])
def test_tagger_matches_terms_on_word_boundaries(seeds, text, slug, tagged):
    assert (slug in Tagger(seeds.conditions).tag(text)) is tagged


# -- caveats ------------------------------------------------------------------------------------


def test_every_snippet_caveat_attaches_exactly_where_the_table_says(seeds, seed_snippets):
    catalogue = [c.id for c in seeds.caveats if c.scope == "snippet"]
    assert sorted(catalogue) == sorted(SNIPPET_CAVEATS), "update SNIPPET_CAVEATS"
    for caveat_id in catalogue:
        expected = {(prefix, paragraph)
                    for prefix, paragraphs in SNIPPET_CAVEATS[caveat_id].items()
                    for paragraph in paragraphs}
        attached = {where(s) for s in seed_snippets if caveat_id in s["caveats"]}
        assert attached == expected, caveat_id


def test_response_caveats_attach_to_no_snippet(seeds, seed_snippets):
    response = {c.id for c in seeds.caveats if c.scope == "response"}
    assert response == {"general-disclaimer"}
    assert not any(response & set(s["caveats"]) for s in seed_snippets)


def test_conflict_caveats_attach_only_to_the_conflicting_sentence(seed_snippets):
    non_invasive = [s["text"] for s in seed_snippets
                    if "conflict-non-invasive-option" in s["caveats"]]
    assert len(non_invasive) == 1 and non_invasive[0].startswith("Non-Invasive Option:")
    voice = [s["text"] for s in seed_snippets if "conflict-voice-changes-rare" in s["caveats"]]
    assert len(voice) == 1 and "voice changes being relatively rare" in voice[0]


def test_no_seed_mentions_cluster_headache(seed_snippets):
    assert not any("cluster-headache" in s["conditions"] for s in seed_snippets)
    assert not any("approval-cluster-headache-noninvasive" in s["caveats"]
                   for s in seed_snippets)


def test_built_index_ships_the_whole_caveat_catalogue(built_index, seeds):
    shipped = store.read_json(current_generation(built_index) / "caveats.json")
    assert [c["id"] for c in shipped] == [c.id for c in seeds.caveats]
    assert {c["id"]: c["scope"] for c in shipped}["general-disclaimer"] == "response"


# -- reading grades -----------------------------------------------------------------------------


def test_seed_reading_grades_are_plausible_floats(seed_snippets):
    for snippet in seed_snippets:
        grade = snippet["reading_grade"]
        assert isinstance(grade, float)
        assert 5 <= grade <= 25, (snippet["id"], grade)


def test_simple_sentence_grades_lower_than_technical_one():
    simple = reading_grade("The cat sat on the mat.")
    technical = reading_grade(
        "Neuromodulatory electrophysiological interventions targeting parasympathetic "
        "efferents demonstrate heterogeneous immunomodulatory consequences in "
        "treatment-refractory inflammatory conditions.")
    assert 0 <= simple < technical


# -- generations --------------------------------------------------------------------------------


def test_builds_switch_current_atomically_and_keep_newest_three(tmp_path, seeds_dir):
    index_dir = tmp_path / "index"
    names = []
    for number in range(1, 6):
        result = build(seeds_dir, index_dir)
        names.append(result.generation.name)
        pointer = index_dir / "CURRENT"
        assert pointer.is_symlink()
        assert os.readlink(pointer) == result.generation.name  # relative, not absolute
        assert current_generation(index_dir) == result.generation
        assert not list(index_dir.glob("CURRENT.*")), "temporary symlink left behind"
        assert not list(index_dir.glob(".tmp-*"))
        if number == 2:
            assert (index_dir / names[0]).is_dir(), "previous generation removed too early"
    assert len(set(names)) == 5
    assert names == sorted(names)
    assert [g.name for g in generations(index_dir)] == names[-3:]


def test_next_build_removes_leftovers_of_a_killed_build(tmp_path, built_index, seeds_dir):
    index_dir = copy_index(built_index, tmp_path / "index")
    leftover = index_dir / ".tmp-xyz"
    leftover.mkdir()
    (leftover / "half-written.seg").write_bytes(b"\0" * 100)
    leftover_link = index_dir / "CURRENT.0123abcd"
    os.symlink("gen-never-finished", leftover_link)
    result = build(seeds_dir, index_dir)
    assert not leftover.exists()
    assert not leftover_link.is_symlink()
    assert current_generation(index_dir) == result.generation


def test_build_failing_while_writing_leaves_current_and_no_tmp_dir(tmp_path, built_index,
                                                                 seeds_dir, monkeypatch):
    index_dir = copy_index(built_index, tmp_path / "index")
    before = os.readlink(index_dir / "CURRENT")

    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_json", disk_full)
    with pytest.raises(OSError, match="No space left"):
        build(seeds_dir, index_dir)
    assert os.readlink(index_dir / "CURRENT") == before
    assert [g.name for g in generations(index_dir)] == [before]
    assert not list(index_dir.glob(".tmp-*"))


# -- manifest and version -----------------------------------------------------------------------


def test_manifest_describes_the_generation_and_its_counts(built_index, seeds):
    generation = current_generation(built_index)
    manifest = store.read_json(generation / store.MANIFEST)
    assert re.fullmatch(r"[0-9a-f]{16}", manifest["version"])
    assert manifest["generation"] == generation.name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["built_at"])
    built_at = dt.datetime.fromisoformat(manifest["built_at"])
    assert abs(dt.datetime.now(dt.UTC) - built_at) < dt.timedelta(hours=1)
    counts = manifest["counts"]
    assert counts["sources"] == 5
    assert counts["snippets"] == 45
    assert {seed_prefix(k): v for k, v in counts["per_source"].items()} == SNIPPETS_PER_SEED

    records = stored_records(generation)
    per_condition = Counter(c for r in records for c in r["conditions"])
    assert counts["per_condition"] == {c.slug: per_condition[c.slug] for c in seeds.conditions}
    per_caveat = Counter(c for r in records for c in r["caveats"])
    assert counts["per_caveat"] == {c.id: per_caveat[c.id] for c in seeds.caveats
                                    if c.scope == "snippet"}
    assert counts["per_caveat"]["source-unattributed"] == 45


def test_same_inputs_give_same_version(built_index, rebuilt_index):
    first = store.read_json(current_generation(built_index) / store.MANIFEST)
    second = store.read_json(current_generation(rebuilt_index) / store.MANIFEST)
    assert first["version"] == second["version"]
    assert first["generation"] != second["generation"]


def test_changed_inputs_give_a_different_version(built_index, edited_index):
    first = store.read_json(current_generation(built_index) / store.MANIFEST)
    second = store.read_json(current_generation(edited_index) / store.MANIFEST)
    assert first["version"] != second["version"]


# -- check and current_generation ---------------------------------------------------------------


def test_check_finds_no_problem_in_a_good_index(built_index):
    manifest, problems = check(built_index)
    assert problems == []
    assert manifest == store.read_json(current_generation(built_index) / store.MANIFEST)


def test_check_reports_a_truncated_segment_file(tmp_path, built_index):
    index_dir = copy_index(built_index, tmp_path / "index")
    segment = next(current_generation(index_dir).glob("*.pst"))
    segment.write_bytes(segment.read_bytes()[: segment.stat().st_size // 2])
    _, problems = check(index_dir)
    # Found by the manifest's checksums, before Whoosh is asked to read the file.
    assert problems == [f"{segment.name} is damaged: its size or checksum differs from the "
                        "manifest"]


def test_check_reports_bytes_changed_inside_a_segment_file(tmp_path, built_index):
    index_dir = copy_index(built_index, tmp_path / "index")
    segment = next(current_generation(index_dir).glob("*.pst"))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one bit pattern different
    segment.write_bytes(bytes(data))
    _, problems = check(index_dir)
    assert problems == [f"{segment.name} is damaged: its size or checksum differs from the "
                        "manifest"]


def test_check_reports_a_manifest_count_that_disagrees_with_the_index(tmp_path, built_index):
    index_dir = copy_index(built_index, tmp_path / "index")
    manifest_path = current_generation(index_dir) / store.MANIFEST
    manifest = store.read_json(manifest_path)
    manifest["counts"]["snippets"] = 46
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    _, problems = check(index_dir)
    assert problems == ["index holds 45 snippets, manifest says 46"]


def test_check_reports_a_per_source_count_that_disagrees_with_the_index(tmp_path, built_index):
    index_dir = copy_index(built_index, tmp_path / "index")
    manifest_path = current_generation(index_dir) / store.MANIFEST
    manifest = store.read_json(manifest_path)
    first_source = next(iter(manifest["counts"]["per_source"]))
    manifest["counts"]["per_source"][first_source] += 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    _, problems = check(index_dir)
    assert problems == ["per-source snippet counts differ from the manifest"]


def test_check_reports_a_missing_side_file(tmp_path, built_index):
    index_dir = copy_index(built_index, tmp_path / "index")
    (current_generation(index_dir) / "conditions.json").unlink()
    _, problems = check(index_dir)
    assert problems == ["conditions.json is missing"]


def test_no_index_yet_is_unavailable_with_a_clear_message(tmp_path):
    with pytest.raises(IndexUnavailable, match="no index built yet"):
        current_generation(tmp_path)
    with pytest.raises(IndexUnavailable, match="no index built yet"):
        check(tmp_path)


def test_current_pointing_at_a_deleted_generation_is_unavailable(tmp_path, built_index):
    index_dir = copy_index(built_index, tmp_path / "index")
    generation = current_generation(index_dir)
    shutil.rmtree(generation)
    with pytest.raises(IndexUnavailable, match=rf"{generation.name}.*missing or incomplete"):
        current_generation(index_dir)


# -- one build at a time ------------------------------------------------------------------------


def test_build_refuses_while_another_build_holds_the_lock(tmp_path, seeds_dir):
    index_dir = tmp_path / "index"
    with build_lock(index_dir):
        with pytest.raises(BuildLockedError, match="another build"):
            build(seeds_dir, index_dir)
    assert not (index_dir / "CURRENT").exists()
    assert generations(index_dir) == []


def test_build_with_wait_proceeds_once_the_lock_is_released(tmp_path, seeds_dir):
    index_dir = tmp_path / "index"
    holding = threading.Event()
    released_at: list[float] = []

    def hold_lock_for_a_while() -> None:
        # The build takes the lock before it makes snippets (it writes them as they come),
        # so it is waiting for the lock while this holds it.
        with build_lock(index_dir):
            holding.set()
            time.sleep(0.5)
            released_at.append(time.monotonic())

    holder = threading.Thread(target=hold_lock_for_a_while)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        result = build(seeds_dir, index_dir, wait_seconds=10)
        finished_at = time.monotonic()
    finally:
        holder.join(timeout=10)
    assert released_at and finished_at > released_at[0]
    assert current_generation(index_dir) == result.generation
    assert result.manifest["counts"]["snippets"] == 45


# -- building from a pages file -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pages_slice(tmp_path_factory) -> Path:
    """The first 30 pages of the medquad corpus as a JSONL file."""
    if not CORPUS.exists():
        pytest.skip(f"corpus not found at {CORPUS}")
    path = tmp_path_factory.mktemp("pages") / "pages.jsonl"
    with CORPUS.open("rb") as corpus, path.open("wb") as out:
        for _ in range(30):
            out.write(corpus.readline())
    return path


@pytest.fixture(scope="module")
def pages_index(tmp_path_factory, seeds_dir, pages_slice) -> Path:
    index_dir = tmp_path_factory.mktemp("pages-index")
    build(seeds_dir, index_dir, pages=pages_slice)
    return index_dir


def read_pages(path: Path) -> dict[str, dict]:
    with path.open(encoding="utf-8") as handle:
        pages = [json.loads(line) for line in handle if line.strip()]
    return {page["id"]: page for page in pages}


def test_pages_build_indexes_every_page(pages_index):
    counts = store.read_json(current_generation(pages_index) / store.MANIFEST)["counts"]
    assert counts["sources"] == 30
    assert counts["snippets"] > 100
    assert check(pages_index)[1] == []


def test_pages_snippets_are_exact_spans_of_the_page_text(pages_index, pages_slice):
    pages = read_pages(pages_slice)
    records = stored_records(current_generation(pages_index))
    assert {r["source_id"] for r in records} == set(pages)
    for record in records:
        text = pages[record["source_id"]]["text"]
        assert text[record["char_start"]:record["char_end"]] == record["text"], record["id"]


def test_pages_sources_carry_page_metadata(pages_index, pages_slice):
    pages = read_pages(pages_slice)
    sources = store.read_json(current_generation(pages_index) / "sources.json")
    assert [s["id"] for s in sources] == list(pages)
    for source in sources:
        page = pages[source["id"]]
        assert (source["url"], source["publisher"], source["license"]) == (
            page["url"], page["publisher"], page["license"])
        assert source["retrieved"] is None


def test_pages_snippets_are_not_marked_unattributed(pages_index):
    records = stored_records(current_generation(pages_index))
    assert not any("source-unattributed" in r["caveats"] for r in records)


def test_caveats_about_vns_stay_off_pages_that_never_mention_it(pages_index, seeds):
    about_vns = {c.id for c in seeds.caveats if c.context_patterns}
    assert "investigational-fibromyalgia" in about_vns
    records = stored_records(current_generation(pages_index))
    for record in records:
        if not re.search(r"\b(?:vagus|VNS)\b", record["text"], re.IGNORECASE):
            assert not about_vns & set(record["caveats"]), record["id"]


GOOD_PAGE = {"id": "p1", "title": "Page one", "url": "https://example.org/1",
             "publisher": "Example", "license": "CC-BY-4.0", "text": "Page one\n\nSome text."}


@pytest.mark.parametrize(("third_line", "reason"), [
    ('{"id": "p3", "title": ', "invalid JSON"),
    (json.dumps(GOOD_PAGE), "duplicate id 'p1' (first on line 1)"),
    (json.dumps({k: v for k, v in GOOD_PAGE.items() if k != "url"} | {"id": "p3"}),
     "missing field(s) ['url']"),
], ids=["invalid-json", "duplicate-id", "missing-field"])
def test_bad_pages_file_names_file_and_line(tmp_path, seeds_dir, third_line, reason):
    pages = tmp_path / "pages.jsonl"
    second = GOOD_PAGE | {"id": "p2", "title": "Page two"}
    pages.write_text("\n".join([json.dumps(GOOD_PAGE), json.dumps(second), third_line]) + "\n",
                     encoding="utf-8")
    index_dir = tmp_path / "index"
    with pytest.raises(SeedError) as raised:
        build(seeds_dir, index_dir, pages=pages)
    [problem] = raised.value.problems
    assert (problem.path, problem.line) == (str(pages), 3)
    assert reason in problem.reason
    assert f"{pages}:3: " in str(raised.value)
    assert not index_dir.exists()


def test_a_build_with_worker_processes_writes_what_an_inline_build_writes(tmp_path):
    """Large builds make snippets in worker processes; the generation must not depend on it."""
    if not CORPUS.is_file():
        pytest.skip(f"{CORPUS} is not there")
    pages = tmp_path / "pages.jsonl"
    with CORPUS.open(encoding="utf-8") as corpus:
        pages.write_text("".join(line for _, line in zip(range(25), corpus, strict=False)),
                         encoding="utf-8")
    inline = build(SEEDS, tmp_path / "inline", pages=pages, processes=0)
    pooled = build(SEEDS, tmp_path / "pooled", pages=pages, processes=2)
    assert inline.manifest["version"] == pooled.manifest["version"]
    assert inline.manifest["counts"] == pooled.manifest["counts"]
    for name in ("scoring.bin", "scoring.json", "sources.json", "duplicates.json"):
        assert (inline.generation / name).read_bytes() == (pooled.generation / name).read_bytes()
    assert stored_records(inline.generation) == stored_records(pooled.generation)
